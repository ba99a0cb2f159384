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
            frame = pd.read_csv(
                io.BytesIO(data),
                dtype=str,
                encoding=detect_encoding(data),
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
