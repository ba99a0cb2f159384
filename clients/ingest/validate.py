"""Vectorised validation: every check runs on whole columns; only failing rows become Python."""

import re
from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import pandas as pd
from django.conf import settings
from django.db import connection
from django.utils.translation import gettext as _

from ..validators import (
    DATE_MAX,
    DATE_MIN,
    DATETIME_MAX,
    PLAIN_NUMBER,
    date_range_message,
    plain_number_message,
)
from .specs import BOOL, CHOICE, DATE, DATETIME, DECIMAL, REF, TEXT, Column, KindSpec

MAX_ERRORS = 10_000

BOOL_WORDS = {
    "true": True,
    "false": False,
    "1": True,
    "0": False,
    "yes": True,
    "no": False,
    "是": True,
    "否": False,
    "y": True,
    "n": False,
    "t": True,
    "f": False,
}
DATE_FORMATS = ("%Y-%m-%d", "%Y/%m/%d", "%Y%m%d")
# Spreadsheets hand dates over as midnight datetimes.
DATE_AT_MIDNIGHT_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y/%m/%d %H:%M:%S")
DATETIME_FORMATS = (
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d %H:%M:%S.%f",
    "%Y-%m-%dT%H:%M:%S.%f",
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d %H:%M",
    *DATE_FORMATS,
)
_AWARE = re.compile(r"(?:Z|[+-]\d{2}:?\d{2})$")
_EMAIL = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"


class RowError(NamedTuple):
    """row: 1-based line in the file (header = 1) or, for API records, the 0-based index."""

    row: int
    column: str
    value: str
    message: str


class Validated(NamedTuple):
    clean: pd.DataFrame  # one column per database column (attname), typed for writing
    errors: list[RowError]  # sorted by row, at most MAX_ERRORS
    error_count: int  # all errors, also those beyond MAX_ERRORS


class _Collector:
    def __init__(self, frame: pd.DataFrame, row_offset: int):
        self.frame = frame
        self.row_offset = row_offset
        self.found: list[tuple[np.ndarray, str, str]] = []
        self.header: list[RowError] = []
        self.failed: dict[str, np.ndarray] = {}  # column -> rows with an error in it

    def add(self, mask, column: str, message: str) -> None:
        mask = np.asarray(mask, dtype=bool)
        rows = np.flatnonzero(mask)
        if len(rows):
            self.found.append((rows, column, message))
            self.failed[column] = self.failed.get(column, np.zeros(len(mask), bool)) | mask

    def ok(self, column: str, n: int) -> np.ndarray:
        return ~self.failed.get(column, np.zeros(n, bool))

    @property
    def count(self) -> int:
        return len(self.header) + sum(len(rows) for rows, _, _ in self.found)

    def errors(self) -> list[RowError]:
        if not self.found:
            return self.header[:MAX_ERRORS]
        rows = np.concatenate([r for r, _, _ in self.found])
        which = np.concatenate([np.full(len(r), i) for i, (r, _, _) in enumerate(self.found)])
        order = np.lexsort((which, rows))[: MAX_ERRORS - len(self.header)]
        out = list(self.header)
        for pos in order:
            row, (_, column, message) = int(rows[pos]), self.found[which[pos]]
            value = self.frame[column].iat[row] if column in self.frame.columns else ""
            out.append(RowError(row + self.row_offset, column, str(value), message))
        return out


def _default(column: Column):
    """What an empty cell stores: the field's default ("" for text, None where nullable)."""
    return column.field.get_default()


def _parse_datetimes(values: pd.Series, formats: tuple[str, ...]) -> pd.Series:
    """Try each format on what is still unparsed; a cascade keeps the common case fast."""
    result = pd.Series(pd.NaT, index=values.index, dtype="datetime64[us]")
    todo = (values != "").to_numpy()
    for fmt in formats:
        if not todo.any():
            break
        sub = values[todo]
        parsed = pd.to_datetime(sub, format=fmt, errors="coerce").astype("datetime64[us]")
        result[todo] = parsed.to_numpy()
        todo = todo & result.isna().to_numpy()
    return result


def _lookup_ids(model, key: str, values: np.ndarray) -> pd.Series:
    """key value -> id for the values that exist, queried set-based."""
    found: dict[str, int] = {}
    if connection.vendor == "postgresql":
        table, column = model._meta.db_table, model._meta.get_field(key).column
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT {connection.ops.quote_name(column)}, id FROM "
                           f"{connection.ops.quote_name(table)} WHERE "
                           f"{connection.ops.quote_name(column)} = ANY(%s)", [list(values)])
            found.update(cursor.fetchall())
        return pd.Series(found, dtype="Int64")
    chunk = min(connection.features.max_query_params or 10_000, 10_000) - 10
    for start in range(0, len(values), chunk):
        part = list(values[start:start + chunk])
        found.update(model._default_manager.filter(**{f"{key}__in": part})
                     .values_list(key, "pk"))
    return pd.Series(found, dtype="Int64")


def validate_frame(
    spec: KindSpec,
    frame: pd.DataFrame,
    *,
    row_offset: int = 2,
    on_progress: Callable[[int, int], None] | None = None,
) -> Validated:
    progress = on_progress or (lambda done, total: None)
    n = len(frame)
    errors = _Collector(frame, row_offset)

    unknown = [c for c in frame.columns if c not in spec.names]
    missing = [c for c in spec.required if c not in frame.columns]
    for name in unknown:
        errors.header.append(
            RowError(
                row_offset - 1,
                name,
                name,
                _("Unknown column; expected some of: %s") % ", ".join(spec.names),
            )
        )
    for name in missing:
        errors.header.append(RowError(row_offset - 1, name, "", _("Required column is missing.")))
    if len(set(frame.columns)) != len(frame.columns):
        dupes = frame.columns[frame.columns.duplicated()].unique()
        for name in dupes:
            errors.header.append(
                RowError(row_offset - 1, name, name, _("Column appears more than once."))
            )
    if errors.header:
        return Validated(pd.DataFrame(), errors.errors(), errors.count)

    present = [c for c in spec.columns if c.name in frame.columns]
    clean: dict[str, pd.Series | np.ndarray] = {}
    stripped: dict[str, pd.Series] = {}
    empties: dict[str, np.ndarray] = {}
    for i, column in enumerate(present):
        s = frame[column.name].astype(str).str.strip()
        stripped[column.name] = s
        empty = empties[column.name] = (s == "").to_numpy()
        if column.required:
            errors.add(empty, column.name, _("A value is required."))
        clean[column.attname] = _check_column(column, s, empty, errors)
        progress(n * (i + 1) // (len(present) + 1), n)
    if spec.checks:
        values = {c.name: pd.Series(clean[c.attname], index=frame.index) for c in present}
        usable = {c.name: errors.ok(c.name, n) & ~empties[c.name] for c in present}
        for check in spec.checks:
            for mask, name, message in check(values, usable):
                errors.add(mask, name, message)

    keys = list(spec.keys)
    key_frame = pd.DataFrame(
        {
            k: (
                clean[spec.column(k).attname]
                if spec.column(k).type in (DATE, DATETIME)
                else stripped[k]
            )
            for k in keys
        }
    )
    complete = key_frame.notna().all(axis=1) & (key_frame != "").all(axis=1)
    duplicated = key_frame.duplicated(keep=False) & complete
    for k in keys:
        errors.add(
            duplicated,
            k,
            _("Duplicate key: this %(key)s appears more than once in the file.")
            % {"key": " + ".join(keys)},
        )
    progress(n, n)

    out = pd.DataFrame(clean, index=frame.index)
    if spec.model._meta.model_name == "client" and "phone" in out.columns:
        out["phone_tail"] = out["phone"].str.replace(r"\D", "", regex=True).str[-4:]
    return Validated(out.reset_index(drop=True), errors.errors(), errors.count)


def _check_column(column: Column, s: pd.Series, empty: np.ndarray, errors: _Collector):
    name, default = column.name, _default(column)
    if column.type in (TEXT, CHOICE):
        if column.max_length:
            errors.add(
                s.str.len().to_numpy() > column.max_length,
                name,
                _("Too long: at most %d characters.") % column.max_length,
            )
        if column.type == CHOICE:
            bad = ~s.isin(column.choices).to_numpy() & ~empty
            errors.add(bad, name, _("Unknown value; one of: %s") % ", ".join(column.choices))
        elif column.field.get_internal_type() == "EmailField" or name == "email":
            errors.add(~s.str.match(_EMAIL).to_numpy() & ~empty, name, _("Not an email address."))
        if default not in ("", None) and empty.any():
            return s.where(~empty, default)
        return s
    if column.type == DATE:
        parsed = _parse_datetimes(s, DATE_FORMATS + DATE_AT_MIDNIGHT_FORMATS)
        bad = parsed.isna().to_numpy() & ~empty
        bad = bad | ((parsed != parsed.dt.normalize()).to_numpy() & ~bad & ~empty)
        errors.add(bad, name, _("Not a date; use YYYY-MM-DD, YYYY/MM/DD or YYYYMMDD."))
        _check_range(parsed, bad | empty, name, errors)
        return parsed
    if column.type == DATETIME:
        return _check_datetime(column, s, empty, errors)
    if column.type == DECIMAL:
        numbers = pd.to_numeric(s.where(~empty, None), errors="coerce").to_numpy(dtype=float)
        # One rule with the API (clients.validators): digits 0-9 only, no "1_000" or "١٠٠٠".
        plain = s.str.fullmatch(PLAIN_NUMBER).fillna(False).to_numpy(dtype=bool) | empty
        with np.errstate(invalid="ignore"):
            not_number = (~np.isfinite(numbers) & ~empty) | ~plain
            negative = (numbers < 0) & ~not_number & (not column.signed)
            limit = 10.0 ** (column.field.max_digits - column.field.decimal_places)
            too_big = (np.abs(numbers) >= limit) & ~not_number & ~negative
        errors.add(not_number, name, plain_number_message())
        errors.add(negative, name, _("Must not be negative."))
        errors.add(too_big, name, _("Too large."))
        if default is not None and empty.any():
            return s.where(~empty, str(default))
        return s.where(~empty, None)
    if column.type == BOOL:
        mapped = s.str.lower().map(BOOL_WORDS)
        errors.add(
            mapped.isna().to_numpy() & ~empty,
            name,
            _("Not a yes/no value; use true/false, 1/0, yes/no, 是/否 or Y/N."),
        )
        return mapped.astype(object).where(~empty, default)
    if column.type == REF:
        ref = column.reference
        wanted = _distinct(s[~empty])
        known = _lookup_ids(ref.model, ref.key, wanted)
        if len(known):
            position = _positions(known.index, s)
            ids = pd.array(known.to_numpy(dtype="int64")[np.maximum(position, 0)], dtype="Int64")
        else:
            position = np.full(len(s), -1)
            ids = pd.array(np.zeros(len(s), dtype="int64"), dtype="Int64")
        ids[position < 0] = pd.NA
        unknown = (position < 0) & ~empty
        errors.add(
            unknown,
            name,
            _("Unknown %(what)s: no %(model)s with this %(key)s exists.")
            % {"what": name, "model": ref.model._meta.verbose_name, "key": ref.key},
        )
        return pd.Series(ids, index=s.index)
    raise AssertionError(column.type)


def _distinct(s: pd.Series) -> np.ndarray:
    """The distinct values of a column of strings (order irrelevant): pyarrow's hash when the
    column is arrow-backed, else pandas'."""
    try:
        import pyarrow as pa
        import pyarrow.compute as pc

        return pc.unique(pa.array(s)).to_numpy(zero_copy_only=False)
    except Exception:  # noqa: BLE001 - same answer, slower
        return pd.unique(s.to_numpy())


def _positions(index: pd.Index, s: pd.Series) -> np.ndarray:
    """For each value of `s`, its position in `index` (unique strings), -1 where absent."""
    try:
        import pyarrow as pa
        import pyarrow.compute as pc

        values = pa.array(s)
        found = pc.index_in(values, value_set=pa.array(index.to_numpy(), type=values.type))
        return found.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.intp)
    except Exception:  # noqa: BLE001 - same answer, slower
        return index.get_indexer(s.to_numpy())


def _check_datetime(column: Column, s: pd.Series, empty: np.ndarray, errors: _Collector):
    """Naive values are in settings.TIME_ZONE; the result is naive UTC."""
    local = _parse_datetimes(s, DATETIME_FORMATS)
    result = (
        local.dt.tz_localize(settings.TIME_ZONE, ambiguous="NaT", nonexistent="NaT")
        .dt.tz_convert("UTC")
        .dt.tz_localize(None)
    )
    todo = result.isna().to_numpy() & ~empty
    if todo.any():
        sub = s[todo]
        aware = sub[sub.str.contains(_AWARE)]
        if len(aware):
            parsed = pd.to_datetime(aware, format="ISO8601", utc=True, errors="coerce")
            result.loc[aware.index] = parsed.dt.tz_localize(None).astype("datetime64[us]")
    bad = result.isna().to_numpy() & ~empty
    errors.add(
        bad,
        column.name,
        _("Not a date and time; use YYYY-MM-DD HH:MM:SS (Beijing time) or a date."),
    )
    _check_range(result, bad | empty, column.name, errors, with_time=True)
    return result


def _check_range(parsed: pd.Series, skip: np.ndarray, name: str, errors: _Collector, *,
                 with_time: bool = False) -> None:
    """Year 1 or -1 parses, but overflows when moved between UTC and Beijing time or read back
    into Python: dates (and times) outside DATE_MIN..DATE_MAX (DATETIME_MAX) are a row error."""
    low = np.datetime64(DATE_MIN, "us")
    high = np.datetime64(DATETIME_MAX if with_time else DATE_MAX, "us") + np.timedelta64(1, "D")
    values = parsed.to_numpy(dtype="datetime64[us]")
    with np.errstate(invalid="ignore"):
        outside = ~((values >= low) & (values < high))
    errors.add(outside & ~skip & ~np.isnat(values), name,
               date_range_message(with_time=with_time))
