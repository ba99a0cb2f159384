"""Files in, a frame of strings out: CSV in UTF-8, UTF-8 with BOM or GB18030, or XLSX."""

import io
from pathlib import Path
from typing import IO

import pandas as pd
from django.utils.translation import gettext as _

from core.errors import ApplicationError

CSV_EXTENSIONS = (".csv",)
XLSX_EXTENSIONS = (".xlsx",)
ALLOWED_EXTENSIONS = CSV_EXTENSIONS + XLSX_EXTENSIONS
_BOM = b"\xef\xbb\xbf"


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


_ARROW_MAX_COLUMNS = 512


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


def read_table(*, path_or_file: str | Path | IO, filename: str) -> pd.DataFrame:
    """The file as a DataFrame of strings (empty cells are ""), headers stripped and lowercase."""
    suffix = Path(filename).suffix.lower()
    if suffix not in ALLOWED_EXTENSIONS:
        raise ApplicationError(_("Only .csv and .xlsx files can be imported."), code="extension")
    data = _read_bytes(path_or_file)
    try:
        if suffix in XLSX_EXTENSIONS:
            frame = pd.read_excel(
                io.BytesIO(data),
                dtype=str,
                engine="openpyxl",
                keep_default_na=False,
                na_filter=False,
            )
            frame = frame.fillna("")
        else:
            if not data.strip():
                raise ApplicationError(_("The file is empty."), code="empty")
            encoding = detect_encoding(data)
            frame = _read_csv_arrow(data, encoding)
            if frame is not None:
                frame.columns = [str(c).strip().lower() for c in frame.columns]
                return frame
            frame = pd.read_csv(
                io.BytesIO(data),
                dtype=str,
                encoding=encoding,
                keep_default_na=False,
                na_filter=False,
                engine="c",
                skipinitialspace=False,
            )
    except ApplicationError:
        raise
    except Exception as exc:  # a corrupt file is the user's to fix, not a 500
        raise ApplicationError(
            _("The file could not be read: %(reason)s") % {"reason": exc}, code="unreadable"
        ) from exc
    frame.columns = [str(c).strip().lower() for c in frame.columns]
    return frame
