"""Files in, a frame of strings out: CSV in UTF-8, UTF-8 with BOM or GB18030, or XLSX.

Every file is held to the import limits (settings.IMPORT_MAX_ROWS, IMPORT_MAX_COLUMNS and, for
XLSX, IMPORT_XLSX_MAX_UNCOMPRESSED_BYTES / IMPORT_XLSX_MAX_ENTRIES) before a parser builds
anything that could outgrow them: a sheet padded to column XFD, a zip bomb or a CSV line of a
million commas is refused in seconds with a message that says which limit, never parsed.
"""

import csv
import io
import warnings
import zipfile
from pathlib import Path
from typing import IO
from xml.parsers import expat

import pandas as pd
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.utils.translation import gettext as _
from openpyxl.reader.excel import ExcelReader
from openpyxl.utils.cell import COORD_RE, column_index_from_string

from core.errors import ApplicationError

CSV_EXTENSIONS = (".csv",)
XLSX_EXTENSIONS = (".xlsx",)
ALLOWED_EXTENSIONS = CSV_EXTENSIONS + XLSX_EXTENSIONS
_BOM = b"\xef\xbb\xbf"
# Excel's own limit for one cell; longer values are refused rather than validated and echoed.
MAX_CELL_CHARS = 32_767


def detect_encoding(data: bytes) -> str:
    """UTF-8 with BOM, UTF-8, else GB18030 (what Excel in China saves as "CSV")."""
    if data.startswith(_BOM):
        return "utf-8-sig"
    for encoding in ("utf-8", "gb18030"):
        try:
            data.decode(encoding)
        except UnicodeDecodeError:
            continue
        return encoding
    raise ApplicationError(_("The file is neither UTF-8 nor GB18030 text."), code="encoding")


def _read_bytes(path_or_file) -> bytes:
    if isinstance(path_or_file, str | Path):
        return Path(path_or_file).read_bytes()
    if hasattr(path_or_file, "seek"):
        path_or_file.seek(0)
    data = path_or_file.read()
    return data.encode("utf-8") if isinstance(data, str) else data


# limits -------------------------------------------------------------------------------------

def _too_many_rows() -> ApplicationError:
    return ApplicationError(
        _("The file has more than %(limit)s rows; at most %(limit)s can be imported at once. "
          "Split it into several files.") % {"limit": f"{settings.IMPORT_MAX_ROWS:,}"},
        code="too_many_rows")


def _too_many_columns(row: int, columns: int) -> ApplicationError:
    return ApplicationError(
        _("Row %(row)s has %(columns)s columns; at most %(limit)d can be imported. Delete the "
          "empty columns on the right (or save the data as CSV) and upload it again.")
        % {"row": f"{row:,}", "columns": f"{columns:,}", "limit": settings.IMPORT_MAX_COLUMNS},
        code="too_many_columns")


def _check_frame(frame: pd.DataFrame) -> None:
    """What every reader hands over: within the row and column limits, no absurd cell."""
    if len(frame) > settings.IMPORT_MAX_ROWS:
        raise _too_many_rows()
    if len(frame.columns) > settings.IMPORT_MAX_COLUMNS:
        raise _too_many_columns(1, len(frame.columns))
    for position, name in enumerate(frame.columns):
        lengths = frame.iloc[:, position].str.len()
        longest = len(str(name)) if lengths.empty else max(len(str(name)), lengths.max())
        if longest > MAX_CELL_CHARS:
            over = lengths.to_numpy() > MAX_CELL_CHARS
            row = int(over.argmax()) + 2 if over.any() else 1
            raise ApplicationError(
                _("Row %(row)s, column %(column)s holds %(length)s characters; at most "
                  "%(limit)s fit in one cell.")
                % {"row": f"{row:,}", "column": str(name).strip()[:40] or position + 1,
                   "length": f"{longest:,}",
                   "limit": f"{MAX_CELL_CHARS:,}"},
                code="cell_too_long")


# CSV ----------------------------------------------------------------------------------------

_ARROW_MAX_COLUMNS = 512
# The header and the first data row are read from this much of the file (see _check_csv_width).
_CSV_PROBE_BYTES = 4 * 1024 * 1024


def _check_csv_width(data: bytes, encoding: str) -> None:
    """The header and the first data row within IMPORT_MAX_COLUMNS, counted with the csv
    module's quoting rules before pyarrow or pandas see the file: both take the header's width
    for the table's, and pandas turns extra fields of the first data row into index levels —
    a line of a million commas would take minutes and gigabytes. Any later row with more
    fields than the header is a parse error in both readers."""
    text = data[:_CSV_PROBE_BYTES].decode(encoding, errors="ignore")
    records = (record for record in csv.reader(io.StringIO(text, newline="")) if record)
    try:
        for number, record in zip((1, 2), records, strict=False):
            if len(record) > settings.IMPORT_MAX_COLUMNS:
                raise _too_many_columns(number, len(record))
    except csv.Error:  # e.g. a field over csv's own size limit: the readers give the verdict
        return


def _read_csv_arrow(data: bytes, encoding: str) -> pd.DataFrame | None:
    """The fast path for well-formed UTF-8 CSV: pyarrow's multithreaded reader, every cell a
    string, nothing turned into NA. None where the pandas C reader must decide instead (other
    encodings, ragged rows, blank or duplicate header names, any parse error), so what the user
    sees — values, columns, error messages — is the C reader's in every case but the fast one."""
    if encoding not in ("utf-8", "utf-8-sig"):
        return None
    try:
        import pyarrow as pa
        from pyarrow import csv as pa_csv
    except ImportError:  # pragma: no cover - pyarrow is in requirements.txt
        return None
    body = data[len(_BOM):] if data.startswith(_BOM) else data
    try:
        table = pa_csv.read_csv(
            pa.py_buffer(body),
            read_options=pa_csv.ReadOptions(autogenerate_column_names=True),
            parse_options=pa_csv.ParseOptions(newlines_in_values=True),
            convert_options=pa_csv.ConvertOptions(
                column_types={f"f{i}": pa.string() for i in range(_ARROW_MAX_COLUMNS)},
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
                null_values=[],
            ),
        )
    except SoftTimeLimitExceeded:
        raise
    except Exception:  # noqa: BLE001 - the C reader gives the user-facing verdict
        return None
    if table.num_rows == 0 or table.num_columns >= _ARROW_MAX_COLUMNS:
        return None
    header = [table.column(i)[0].as_py() for i in range(table.num_columns)]
    if any(not h for h in header) or len(set(header)) != len(header):
        return None
    frame = table.slice(1).to_pandas()
    frame.columns = header
    return frame


def _read_csv(data: bytes) -> pd.DataFrame:
    if not data.strip():
        raise ApplicationError(_("The file is empty."), code="empty")
    encoding = detect_encoding(data)
    _check_csv_width(data, encoding)
    frame = _read_csv_arrow(data, encoding)
    if frame is not None:
        return frame
    with warnings.catch_warnings():
        # A data row wider than the header (typically a comma at the end of every line) would
        # otherwise become an index and shift every value one column left, silently.
        warnings.simplefilter("error", pd.errors.ParserWarning)
        try:
            return pd.read_csv(
                io.BytesIO(data),
                dtype=str,
                encoding=encoding,
                keep_default_na=False,
                na_filter=False,
                engine="c",
                skipinitialspace=False,
                index_col=False,
            )
        except pd.errors.ParserWarning as exc:
            raise ApplicationError(
                _("Some rows have more values than the header has columns (often a comma at "
                  "the end of each line); nothing was imported. Remove the extra values or add "
                  "their column names to the header."),
                code="ragged",
            ) from exc


# XLSX ---------------------------------------------------------------------------------------

_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_ROW, _DIMENSION = f"{_MAIN} row", f"{_MAIN} dimension"
# Elements inside one row (cells and what they hold: values, formulas, rich-text runs) per
# allowed column, and elements outside the rows beyond one per row: openpyxl keeps a row's
# whole subtree, and everything outside the rows, in memory while it reads.
_ELEMENTS_PER_COLUMN = 1_000
_OTHER_ELEMENTS = 10_000


def _check_xlsx_archive(data: bytes) -> None:
    """Refuse a zip bomb from the zip's directory alone, before anything is decompressed.

    zipfile never yields more than an entry's declared size (more is a CRC error), so the sum
    of the declared sizes bounds what openpyxl can unpack, shared strings and styles included.
    """
    entries = zipfile.ZipFile(io.BytesIO(data)).infolist()
    if len(entries) > settings.IMPORT_XLSX_MAX_ENTRIES:
        raise ApplicationError(
            _("The .xlsx file holds %(count)s parts; at most %(limit)s are allowed. Save the "
              "data as CSV and upload that.")
            % {"count": f"{len(entries):,}", "limit": f"{settings.IMPORT_XLSX_MAX_ENTRIES:,}"},
            code="too_many_parts")
    unpacked = sum(entry.file_size for entry in entries)
    limit = settings.IMPORT_XLSX_MAX_UNCOMPRESSED_BYTES
    if unpacked > limit:
        raise ApplicationError(
            _("The .xlsx file unpacks to %(size)s MB; at most %(limit)s MB can be imported. "
              "Delete the empty rows and columns, split the file, or save the data as CSV.")
            % {"size": f"{-(-unpacked // 2**20):,}", "limit": f"{limit // 2**20:,}"},
            code="too_large")


def _cell_column(ref: str | None, previous: int) -> int:
    """A cell's column as openpyxl reads it: from its "r" ("B7", "$B$7"), else the one after
    the previous cell's. (An "r" openpyxl cannot read fails the file there anyway.)"""
    try:
        return column_index_from_string(ref.rstrip("0123456789").replace("$", ""))
    except (AttributeError, ValueError):  # no "r", or not a cell reference
        return previous + 1


def _unexpected_xml() -> ApplicationError:
    return ApplicationError(
        _("The sheet's XML is not what a spreadsheet program writes (far too many elements); "
          "save the data as CSV and upload that."), code="unreadable")


def _check_dimension(ref: str, max_rows: int, max_columns: int) -> None:
    corner = COORD_RE.match(ref.rpartition(":")[2])  # "A1:XFD1048576" -> XFD1048576
    if corner is None:
        return
    columns, rows = column_index_from_string(corner.group(1)), int(corner.group(2))
    if columns > max_columns or rows > max_rows:
        raise ApplicationError(
            _("Its declared range %(range)s spans %(columns)s columns and %(rows)s rows; at "
              "most %(max_columns)s columns and %(max_rows)s rows can be imported. Delete the "
              "empty rows and columns (or save the data as CSV) and upload it again.")
            % {"range": ref[:40], "columns": f"{columns:,}", "rows": f"{rows:,}",
               "max_columns": f"{max_columns:,}", "max_rows": f"{settings.IMPORT_MAX_ROWS:,}"},
            code="too_large")


def _row_number(ref: str | None, previous: int) -> int:
    """A <row>'s number as openpyxl reads it: its "r" (an integer, or a float that is one),
    else the one after the previous row's."""
    if ref:
        for parse in (int, float):
            try:
                return int(parse(ref))
            except (ValueError, OverflowError):
                continue
    return previous + 1


def _check_sheet(source: IO[bytes]) -> None:
    """One pass over a sheet's XML with expat, no tree built, stopping at the first sign the
    sheet outgrows the limits: a declared <dimension> past them; a row number or row count past
    IMPORT_MAX_ROWS plus the header; a cell past column IMPORT_MAX_COLUMNS, or more cells in a
    row than that; far more elements than a spreadsheet has. It counts what openpyxl's
    read-only reader will read: rows at any depth; a row's cells are its child elements; a
    cell's column is its "r", else the one after the previous cell's."""
    max_rows, max_columns = settings.IMPORT_MAX_ROWS + 1, settings.IMPORT_MAX_COLUMNS
    max_in_row = max_columns * _ELEMENTS_PER_COLUMN
    depth = rows = row_number = outside = 0
    # The innermost open row: its depth (-1: none), number, cells, last column, elements.
    row_depth, number, cells, column, elements = -1, 0, 0, 0, 0
    enclosing: list[tuple[int, int, int, int, int]] = []

    def start(name: str, attrs: dict) -> None:
        nonlocal depth, rows, row_number, outside, row_depth, number, cells, column, elements
        depth += 1
        if row_depth >= 0:
            elements += 1
            if elements > max_in_row:
                raise _unexpected_xml()
            if depth == row_depth + 1:  # a child of the row: openpyxl reads it as a cell
                cells += 1
                column = _cell_column(attrs.get("r"), column)
                if cells > max_columns or column > max_columns:
                    raise _too_many_columns(number, max(cells, column))
        elif name == _DIMENSION:
            _check_dimension(attrs.get("ref", ""), max_rows, max_columns)
        elif name != _ROW:
            outside += 1
            if outside > max_rows + _OTHER_ELEMENTS:
                raise _unexpected_xml()
        if name == _ROW:
            rows += 1
            row_number = _row_number(attrs.get("r"), row_number)
            if rows > max_rows or row_number > max_rows:
                raise _too_many_rows()
            enclosing.append((row_depth, number, cells, column, elements))
            row_depth, number, cells, column, elements = depth, row_number, 0, 0, 0

    def end(name: str) -> None:
        nonlocal depth, row_depth, number, cells, column, elements
        if depth == row_depth:
            row_depth, number, cells, column, elements = enclosing.pop()
        depth -= 1

    parser = expat.ParserCreate(namespace_separator=" ")
    parser.StartElementHandler, parser.EndElementHandler = start, end
    parser.ParseFile(source)  # an ExpatError is read_table's "could not be read"


class _CheckedReader(ExcelReader):
    """openpyxl's workbook reader (what load_workbook runs), each worksheet held to the limits
    by _check_sheet before openpyxl opens it: a read-only worksheet without a <dimension> is
    parsed to its end just to size it."""

    def read_worksheets(self):
        for sheet, rel in self.parser.find_sheets():
            if rel.target not in self.valid_files or "chartsheet" in rel.Type:
                continue
            try:
                with self.archive.open(rel.target) as source:
                    _check_sheet(source)
            except ApplicationError as exc:
                raise ApplicationError(_("Sheet “%(sheet)s”: %(problem)s") % {
                    "sheet": sheet.name[:40], "problem": exc.message}, code=exc.code) from exc
        super().read_worksheets()


def _read_xlsx(data: bytes) -> pd.DataFrame:
    """The first sheet, as pandas reads it, once the archive and the sheets' XML are known to
    be within the limits (so pandas' rows, each as wide as its last cell, stay bounded)."""
    _check_xlsx_archive(data)
    reader = _CheckedReader(io.BytesIO(data), read_only=True, data_only=True, keep_links=False)
    reader.read()
    book = reader.wb
    try:
        if not book.worksheets:
            raise ApplicationError(_("The file has no worksheet."), code="empty")
        frame = pd.read_excel(book, sheet_name=0, dtype=str, engine="openpyxl",
                              keep_default_na=False, na_filter=False)
    finally:
        book.close()
    return frame.fillna("")


def read_table(*, path_or_file: str | Path | IO, filename: str) -> pd.DataFrame:
    """The file as a DataFrame of strings (empty cells are ""), headers stripped and lowercase.

    Raises ApplicationError for a file that cannot be read or is past the import limits.
    """
    suffix = Path(filename).suffix.lower()
    if suffix not in ALLOWED_EXTENSIONS:
        raise ApplicationError(_("Only .csv and .xlsx files can be imported."), code="extension")
    data = _read_bytes(path_or_file)
    try:
        frame = _read_xlsx(data) if suffix in XLSX_EXTENSIONS else _read_csv(data)
    except (ApplicationError, SoftTimeLimitExceeded):
        raise
    except Exception as exc:  # a corrupt file is the user's to fix, not a 500
        raise ApplicationError(
            _("The file could not be read: %(reason)s") % {"reason": exc}, code="unreadable"
        ) from exc
    _check_frame(frame)
    frame.columns = [str(c).strip().lower() for c in frame.columns]
    return frame
