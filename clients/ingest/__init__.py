"""The one import engine: validate a whole table, then upsert it set-based, or write nothing.

Used by the upload page (through clients.import_services), the `import_data` command and the
bulk API. Callers audit; this package only validates and writes.
"""

from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd
from django.db import transaction
from django.utils.translation import gettext as _

from core.errors import ApplicationError

from .readers import ALLOWED_EXTENSIONS, read_table
from .specs import SPECS, KindSpec, spec_for
from .validate import MAX_ERRORS, RowError, validate_frame
from .write import write_frame

__all__ = [
    "ALLOWED_EXTENSIONS",
    "MAX_ERRORS",
    "SPECS",
    "IngestRejected",
    "IngestResult",
    "KindSpec",
    "RowError",
    "ingest_frame",
    "ingest_records",
    "read_table",
    "spec_for",
]

# on_progress(phase, done, total); phase is "validating" or "writing".
ProgressCallback = Callable[[str, int, int], None]


class IngestRejected(ApplicationError):
    """The input had errors; nothing was written. `errors` holds at most MAX_ERRORS of them."""

    def __init__(self, errors: list[RowError], *, error_count: int | None = None):
        self.errors = errors
        self.error_count = error_count if error_count is not None else len(errors)
        super().__init__(
            _("%(count)d error(s) found; nothing was imported.") % {"count": self.error_count},
            code="rejected",
            fields={f"{e.row}:{e.column}": [e.message] for e in errors[:100]},
        )


@dataclass
class IngestResult:
    created: int
    updated: int
    rows: int
    deleted: int = 0  # holdings removed by holdings_replace


def ingest_frame(
    *,
    kind: str,
    frame: pd.DataFrame,
    actor=None,
    row_offset: int = 2,
    on_progress: ProgressCallback | None = None,
    holdings_replace: bool = False,
) -> IngestResult:
    """Validate the whole frame (strings); if all is well upsert it by key in one transaction.

    Raises IngestRejected with every error (capped at MAX_ERRORS) and writes nothing otherwise.
    `actor` is accepted for symmetry with other services; auditing is the caller's.
    """
    spec = spec_for(kind)
    report = on_progress or (lambda phase, done, total: None)
    report("validating", 0, len(frame))
    validated = validate_frame(
        spec,
        frame,
        row_offset=row_offset,
        on_progress=lambda done, total: report("validating", done, total),
    )
    if validated.error_count:
        raise IngestRejected(validated.errors, error_count=validated.error_count)
    report("writing", 0, len(frame))
    with transaction.atomic():
        created, updated, deleted = write_frame(
            spec,
            validated.clean,
            holdings_replace=holdings_replace,
            on_progress=lambda done, total: report("writing", done, total),
        )
    return IngestResult(created=created, updated=updated, rows=len(frame), deleted=deleted)


def _as_text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def records_to_frame(records: list[dict]) -> pd.DataFrame:
    columns: dict[str, None] = {}
    for record in records:
        columns.update(dict.fromkeys(record))
    return pd.DataFrame(
        {c: [_as_text(r.get(c)) for r in records] for c in columns},
        index=range(len(records)),
        dtype=str,
    )


def ingest_records(
    *, kind: str, records: list[dict], actor=None, holdings_replace: bool = False
) -> IngestResult:
    """For the API: rows as dicts with API.md field names; an error's `row` is the 0-based index.

    A field missing from a record counts as empty; a field unknown to the kind is a header error
    with row -1 (not a record).
    """
    frame = records_to_frame(records)
    spec = spec_for(kind)
    for name in spec.required:
        if name not in frame.columns:
            frame[name] = ""
    return ingest_frame(
        kind=kind, frame=frame, actor=actor, row_offset=0, holdings_replace=holdings_replace
    )
