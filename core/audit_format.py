"""How an audit row reads: translated object types and detail keys, values as plain text.

The audit log stores short codes (`object_type="edition"`, `detail={"rows": 12}`) so that rows
stay small and stable across releases; the page and the export show them through these tables,
in the reader's language. A code missing here still reads: an object type falls back to the
verbose name of the model of that name, a detail key to its words ("one_click" → "One click").
"""

from __future__ import annotations

import json

from django.apps import apps
from django.core.exceptions import FieldDoesNotExist
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, pgettext_lazy

from .models import AuditAction

OBJECT_TYPES = {
    "audit_log": gettext_lazy("Audit log"),
    "client": gettext_lazy("Client"),
    "clients.client": gettext_lazy("Client"),
    "edition": gettext_lazy("Edition"),
    "publication": gettext_lazy("Publication"),
    "publications": pgettext_lazy("audit detail", "Publications"),
    "recipients": pgettext_lazy("audit detail", "Recipients"),
    "forbidden_phrases": gettext_lazy("Forbidden phrases"),
    "import": gettext_lazy("Import"),
    "scoring": gettext_lazy("Value scoring"),
    "trading_day": pgettext_lazy("audit object", "Trading calendar day"),
    "scoring_run": gettext_lazy("Scoring run"),
    "scoring_scheme": gettext_lazy("Scoring scheme"),
    "segment": gettext_lazy("Segment"),
    "task": gettext_lazy("Task"),
    "transactions": gettext_lazy("Transactions"),
    "user": gettext_lazy("User"),
    "settings": gettext_lazy("Settings"),
}

DETAIL_KEYS = {
    "account": pgettext_lazy("login", "Account"),
    "action": gettext_lazy("Action"),
    "added": pgettext_lazy("audit detail", "Added"),
    "as_of": gettext_lazy("As of"),
    "at": pgettext_lazy("audit detail", "Scheduled for"),
    "attempted": gettext_lazy("Attempted"),
    "audience": gettext_lazy("Audience"),
    "changed": pgettext_lazy("audit detail", "What changed"),
    "code": gettext_lazy("Code"),
    "comment": gettext_lazy("Comment"),
    "control": pgettext_lazy("audit detail", "Sending"),
    "created": pgettext_lazy("rows", "Created"),
    "delivery": gettext_lazy("Delivery"),
    "edition": gettext_lazy("Edition"),
    "errors": gettext_lazy("Errors"),
    "excluded": pgettext_lazy("audit detail", "Clients excluded"),
    "failures": gettext_lazy("Failed attempts"),
    "fields": gettext_lazy("Fields"),
    "file": gettext_lazy("File"),
    "format": gettext_lazy("Format"),
    "how": pgettext_lazy("audit detail", "Consent given"),
    "from": pgettext_lazy("date range", "From"),
    "interaction": gettext_lazy("Interaction"),
    "ip_address": gettext_lazy("IP address"),
    "kind": gettext_lazy("Kind"),
    "masked": gettext_lazy("Masked"),
    "method": gettext_lazy("Method"),
    "minutes": gettext_lazy("Minutes"),
    "name": pgettext_lazy("audit detail", "Name"),
    "note": gettext_lazy("Note"),
    "trading_day": pgettext_lazy("audit detail", "Trading day"),
    "consent_phone": gettext_lazy("Phone marketing consent"),
    "source": pgettext_lazy("audit detail", "Source"),
    "object": gettext_lazy("Object"),
    "one_click": gettext_lazy("One click"),
    "outcome": gettext_lazy("Outcome"),
    "publication": gettext_lazy("Publication"),
    "publications": pgettext_lazy("audit detail", "Publications"),
    "recipients": pgettext_lazy("audit detail", "Recipients"),
    "refused": gettext_lazy("Refused"),
    "removed": pgettext_lazy("audit detail", "Removed"),
    "report": gettext_lazy("Report"),
    "role": gettext_lazy("Role"),
    "rows": gettext_lazy("Rows"),
    "rule": gettext_lazy("Rule"),
    "scheme": gettext_lazy("Scoring scheme"),
    "scope": gettext_lazy("Locked by"),
    "segment": gettext_lazy("Segment"),
    "status": gettext_lazy("Status"),
    "suppressions": pgettext_lazy("audit detail", "Unsubscribes lifted"),
    "title": gettext_lazy("Title"),
    "to": pgettext_lazy("date range", "To"),
    "trigger": gettext_lazy("Started from"),
    "updated": pgettext_lazy("rows", "Updated"),
    "username": gettext_lazy("Username"),
    "version": gettext_lazy("Version"),
    "was": pgettext_lazy("audit detail", "Status before"),
    "via": gettext_lazy("Via"),
    "who": gettext_lazy("User"),
}

# Codes that appear as the values of some detail keys and read better as words.
VALUES = {
    "scope": {"account": gettext_lazy("account"), "address": gettext_lazy("address")},
    "refused": {"locked_out": gettext_lazy("account or address locked out")},
    "via": {"admin": gettext_lazy("Django admin")},
    "source": {"do_not_call": gettext_lazy("the client asked not to be called (call outcome)")},
    "trigger": {"page": pgettext_lazy("started from", "the page"),
                "api": pgettext_lazy("started from", "the API"),
                "command": pgettext_lazy("started from", "a command"),
                "beat": pgettext_lazy("started from", "the schedule")},
    "fields": {"phone": gettext_lazy("phone"), "email": gettext_lazy("email"),
               "id_number": gettext_lazy("ID number"), "to_email": gettext_lazy("email")},
}

# Detail keys whose values are the codes of a model field's choices, read through the app
# registry (core imports no app above it): the label of the first field that knows the code.
CHOICE_FIELDS = {
    "kind": [("clients.Interaction", "kind"), ("segments.Segment", "kind"),
             ("clients.ImportJob", "kind")],
    "outcome": [("clients.Interaction", "outcome")],
    "status": [("clients.ImportJob", "status"), ("newsletters.Edition", "status")],
    "was": [("newsletters.Edition", "status")],
    "how": [("newsletters.Suppression", "lifted_how")],
}
CONTROL = {"pause": pgettext_lazy("sending", "Paused"),
           "resume": pgettext_lazy("sending", "Resumed"),
           "cancel": pgettext_lazy("sending", "Cancelled")}


def _choice_label(key: str, code: str) -> str | None:
    for model, field in CHOICE_FIELDS.get(key, ()):
        try:
            choices = dict(apps.get_model(model)._meta.get_field(field).flatchoices)
        except (LookupError, ValueError, FieldDoesNotExist):
            continue
        if code in choices:
            return str(choices[code])
    return None


_MODEL_NAMES: dict[str, str] | None = None


def _model_label(code: str) -> str | None:
    global _MODEL_NAMES
    if "." in code:
        try:
            return str(apps.get_model(code)._meta.verbose_name)
        except (LookupError, ValueError):
            return None
    if _MODEL_NAMES is None:
        _MODEL_NAMES = {m._meta.model_name: m._meta.label_lower for m in apps.get_models()}
    label = _MODEL_NAMES.get(code)
    return str(apps.get_model(label)._meta.verbose_name) if label else None


def object_type_label(code: str) -> str:
    if not code:
        return ""
    if code in OBJECT_TYPES:
        return str(OBJECT_TYPES[code])
    found = _model_label(code)
    return found[:1].upper() + found[1:] if found else code


def detail_key_label(key: str) -> str:
    if key in DETAIL_KEYS:
        return str(DETAIL_KEYS[key])
    words = str(key).replace("_", " ").strip()
    return words[:1].upper() + words[1:]


def detail_value_text(value, key: str = "") -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return _("Yes") if value else _("No")
    if isinstance(value, str):
        if key == "action" and value in AuditAction.values:
            return str(AuditAction(value).label)
        if key == "control" and value in CONTROL:
            return str(CONTROL[value])
        if value in VALUES.get(key, {}):
            return str(VALUES[key][value])
        return _choice_label(key, value) or value
    if isinstance(value, list | tuple) and all(not isinstance(v, dict | list) for v in value):
        return ", ".join(detail_value_text(v, key) for v in value)
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))
    return str(value)


# Keys shown first; the rest follow alphabetically (PostgreSQL's jsonb keeps no key order).
LEADING_KEYS = ("username", "account", "title", "code", "name", "version")


def _key_order(key: str) -> tuple[int, str]:
    return (LEADING_KEYS.index(key) if key in LEADING_KEYS else len(LEADING_KEYS), key)


def detail_lines(detail) -> list[tuple[str, str]]:
    """(label, text) per key of an audit row's detail, in a stable order."""
    if not isinstance(detail, dict):
        return [("", detail_value_text(detail))] if detail else []
    return [(detail_key_label(key), detail_value_text(detail[key], key))
            for key in sorted(detail, key=lambda k: _key_order(str(k)))]


def detail_text(detail) -> str:
    """The detail on one line, for an export cell: "Rows: 12; Format: csv"."""
    return "; ".join(f"{label}: {text}" if label else text for label, text in detail_lines(detail))
