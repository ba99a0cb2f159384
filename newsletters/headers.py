"""The one rule for values that become email header lines: the edition's subject and the
publication's sender name, sender address and reply-to.

A header value is a single line. A line break of any kind (CR, LF, and every other character
Python's str.splitlines() breaks on: VT, FF, FS/GS/RS, NEL U+0085, LINE and PARAGRAPH
SEPARATOR U+2028/U+2029), NUL or any other control character (Unicode category Cc; a tab is
allowed) would either inject a header or make every delivery fail at send time. The forms, the
API serializers and the admin refuse such a value at input (`validate_header_value`); sending,
scheduling and approving refuse an edition stored with one from before this rule
(`check_edition_headers`), so nothing is queued that could only fail.
"""

from __future__ import annotations

import unicodedata

from django.core.exceptions import ValidationError
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from core.errors import ApplicationError

UNSAFE_HEADER_MESSAGE = _("Use a single line: no line breaks or control characters.")
ALLOWED_CONTROLS = frozenset("\t")


def header_is_safe(value) -> bool:
    """True when `value` can be one header line (no line break, NUL or control character)."""
    return not any(
        (unicodedata.category(ch) in ("Cc", "Zl", "Zp")) and ch not in ALLOWED_CONTROLS
        for ch in str(value or ""))


def validate_header_value(value) -> None:
    """A Django validator (forms, model forms in the admin, DRF serializer fields)."""
    if not header_is_safe(value):
        raise ValidationError(UNSAFE_HEADER_MESSAGE, code="unsafe_header")


# The header fields of a publication, in the order a page shows them.
PUBLICATION_HEADER_FIELDS = ("from_name", "from_email", "reply_to")


def edition_header_errors(edition) -> dict[str, list[str]]:
    """{field: [message]} for each header value of `edition` (and its publication) that is not
    a single line; empty when the edition can be sent."""
    publication = edition.publication
    values = {"subject": edition.subject,
              **{name: getattr(publication, name) for name in PUBLICATION_HEADER_FIELDS}}
    return {name: [str(UNSAFE_HEADER_MESSAGE)] for name, value in values.items()
            if not header_is_safe(value)}


def check_edition_headers(edition) -> None:
    """ApplicationError "unsafe_header" (409) when a stored header value of `edition` has a line
    break or control character: the edition cannot go out until it is fixed."""
    fields = edition_header_errors(edition)
    if fields:
        raise ApplicationError(
            gettext("This edition cannot be sent: a line break or control character in its "
                    "subject or in its publication's sender would break the email. Correct the "
                    "field named below and have the edition approved again."),
            code="unsafe_header", status=409, fields=fields)
