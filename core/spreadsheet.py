"""Files people open in a spreadsheet: CSV (UTF-8 with BOM) and XLSX, safe against formulas.

Excel and WPS run a cell that starts with = + - @ (or a tab / carriage return) as a formula,
so a client named "=cmd|' /C calc'!A0" could execute on an ops desk (CSV/formula injection).
`neutralise` prefixes such text with an apostrophe; every writer here applies it to text cells.
Excel in China opens CSV as GBK unless the file starts with a UTF-8 BOM, so CSVs carry one.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Sequence

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
BOM = "\ufeff"


def neutralise(value):
    """The value, with text that a spreadsheet would run as a formula turned into plain text."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def _safe_row(row: Sequence) -> list:
    return [neutralise("" if v is None else v) for v in row]


class _Line:
    """A file-like sink for csv.writer that hands back each written line."""

    def __init__(self):
        self.value = ""

    def write(self, text: str) -> None:
        self.value = text


def csv_lines(rows: Iterable[Sequence]) -> Iterator[bytes]:
    """UTF-8 encoded CSV, one row at a time, the BOM first: for StreamingHttpResponse."""
    sink = _Line()
    writer = csv.writer(sink)
    yield BOM.encode("utf-8")
    for row in rows:
        writer.writerow(_safe_row(row))
        yield sink.value.encode("utf-8")


def csv_bytes(rows: Iterable[Sequence]) -> bytes:
    return b"".join(csv_lines(rows))


def xlsx_bytes(rows: Iterable[Sequence], *, title: str = "Sheet1") -> bytes:
    """An XLSX workbook with one sheet, written in openpyxl's constant-memory mode."""
    from openpyxl import Workbook

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(title=title[:31] or "Sheet1")
    for row in rows:
        sheet.append(_safe_row(row))
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()
