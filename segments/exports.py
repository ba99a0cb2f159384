"""Export of a segment's members to CSV or XLSX: scoped, masked per row, audited.

The rows are the members the user may see (clients.selectors.client_queryset_for). Phone and
email are in full only where core.access.can_see_pii says so (the client's own RM), masked
everywhere else. Text cells go through core.spreadsheet, which disarms spreadsheet formulas.
CSV is streamed in chunks, so a segment of a million clients never sits in memory; XLSX is
written by openpyxl in write-only mode. Every export is an AuditAction.EXPORT row.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import pgettext

from clients.models import Client, ServiceLevel, service_level_for
from clients.scoring.models import Tier
from clients.selectors import client_queryset_for
from core.access import can_see_pii
from core.errors import ApplicationError
from core.masking import mask_email, mask_phone
from core.models import AuditAction
from core.services import audit_record
from core.spreadsheet import csv_lines, xlsx_bytes

from .models import Segment

FORMATS = ("csv", "xlsx")
CHUNK_SIZE = 2000
XLSX_MAX_ROWS = 1_048_575  # the sheet's limit, less the header
CONTENT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


@dataclass
class SegmentExport:
    filename: str
    content_type: str
    content: bytes | Iterator[bytes]  # an iterator for CSV (stream it), bytes for XLSX
    rows: int

    @property
    def streaming(self) -> bool:
        return not isinstance(self.content, bytes | bytearray)


def segment_members_for_export(*, segment: Segment, user):
    """The members `user` may see, in client number order, with what a row needs."""
    return (client_queryset_for(user).filter(segment_memberships__segment=segment)
            .select_related("rm", "branch", "current_score")
            .only("client_no", "name", "phone", "email", "city", "risk_level", "aum", "rm_id",
                  "branch_id", "rm__username", "rm__display_name", "branch__name",
                  "current_score__tier")
            .order_by("client_no"))


def _header() -> list[str]:
    return [_("Client no."), pgettext("person", "Name"), pgettext("phone number", "Phone"),
            _("Email"), _("City"), _("Risk level"),
            _("AUM (CNY)"), _("Service level"), _("Value tier"), _("RM"), _("Branch")]


def _rows(queryset, user, *, numbers_as_text: bool) -> Iterator[list]:
    # Labels are read now, in the request's language: a streamed body is written later.
    levels = {value: str(label) for value, label in ServiceLevel.choices}
    tiers = {value: str(label) for value, label in Tier.choices}
    for client in queryset.iterator(chunk_size=CHUNK_SIZE):
        full = can_see_pii(user, client)
        score = getattr(client, "current_score", None)
        aum = client.aum
        yield [
            client.client_no,
            client.name,
            client.phone if full else mask_phone(client.phone),
            client.email if full else mask_email(client.email),
            client.city,
            client.risk_level,
            f"{aum:.2f}" if numbers_as_text else float(aum),
            levels.get(service_level_for(aum), ""),
            tiers.get(score.tier, "") if score is not None else "",
            str(client.rm) if client.rm_id else "",
            client.branch.name if client.branch_id else "",
        ]


def _lazy_rows(header: list[str], queryset, user, *, numbers_as_text: bool) -> Iterator[list]:
    yield header
    yield from _rows(queryset, user, numbers_as_text=numbers_as_text)


def segment_export(*, segment: Segment, user, fmt: str) -> SegmentExport:
    """The export file of `segment` for `user`; recorded in the audit log before it is sent."""
    if fmt not in FORMATS:
        raise ApplicationError(_("Unknown export format."), fields={"format": [fmt]})
    queryset = segment_members_for_export(segment=segment, user=user)
    count = queryset.count()
    if fmt == "xlsx" and count > XLSX_MAX_ROWS:
        raise ApplicationError(_("Too many rows for an XLSX sheet: export CSV instead."),
                               fields={"format": [fmt]})
    audit_record(action=AuditAction.EXPORT, actor=user, object_type="segment",
                 object_id=segment.code,
                 detail={"segment": segment.code, "format": fmt, "rows": count,
                         "masked": not _any_in_full(user)})
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    filename = f"segment-{segment.code}-{stamp}.{fmt}"
    header = _header()
    if fmt == "csv":
        content = csv_lines(_lazy_rows(header, queryset, user, numbers_as_text=True))
    else:
        content = xlsx_bytes(_lazy_rows(header, queryset, user, numbers_as_text=False),
                             title=segment.code)
    return SegmentExport(filename=filename, content_type=CONTENT_TYPES[fmt], content=content,
                         rows=count)


def _any_in_full(user) -> bool:
    """Whether some rows may carry full personal data (only an RM's own clients do)."""
    return can_see_pii(user, Client(rm_id=getattr(user, "pk", None)))
