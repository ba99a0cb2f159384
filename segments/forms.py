"""Forms of the segment pages, the rule builder's field catalogue and readable rules.

The builder offers, per field, only the operators the rule language accepts for it
(segments.rules is the authority: `builder_fields` narrows to its whitelist when it publishes
one) and an input of the right type. `rule_text` renders a rule as a sentence in the current
language, e.g. "Age between 60 and 69 AND Risk level is one of C1 conservative, C2 cautious".
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path

from django import forms
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from clients.models import (
    ClientRiskLevel,
    ClientStatus,
    Gender,
    Industry,
    InvestorType,
    Occupation,
    ProductType,
    ServiceLevel,
)
from clients.scoring.models import Tier
from core.parsers import JSONInputError
from core.parsers import loads as json_loads

from . import rules
from .models import Segment, SegmentKind

MAX_CLIENT_NOS = 100_000
MAX_UPLOAD_BYTES = 10 * 1024 * 1024
_CODE = re.compile(r"^[a-z0-9][a-z0-9_-]{1,63}$")
_SPLIT = re.compile(r"[\s,;，；]+")

# Operators by kind of input. The rule engine has the final word (see builder_fields).
NUMBER_OPS = ["eq", "ne", "lt", "lte", "gt", "gte", "between", "in", "not_in", "is_null"]
DATE_OPS = ["eq", "ne", "lt", "lte", "gt", "gte", "between", "is_null"]
CHOICE_OPS = ["eq", "ne", "in", "not_in", "is_null"]
BOOLEAN_OPS = ["eq", "is_null"]
TEXT_OPS = ["eq", "ne", "in", "not_in", "contains", "is_null"]
MEMBER_OPS = ["eq", "ne", "in", "not_in"]


def op_labels() -> dict[str, str]:
    return {"eq": _("is"), "ne": _("is not"), "lt": _("less than"), "lte": _("at most"),
            "gt": _("greater than"), "gte": _("at least"), "between": _("between"),
            "in": _("is one of"), "not_in": _("is none of"), "is_null": _("is empty"),
            "contains": _("contains")}


@dataclass(frozen=True)
class FieldSpec:
    key: str
    label: object  # lazy translation
    kind: str  # number, date, choice, boolean, text, segment, product_type, branch, rm
    ops: tuple[str, ...]
    choices: object = None  # a TextChoices class, or None (filled from the database)


FIELD_SPECS = [
    FieldSpec("age", gettext_lazy("Age"), "number", tuple(NUMBER_OPS[:-1])),
    FieldSpec("birth_year", gettext_lazy("Birth year"), "number", tuple(NUMBER_OPS[:-1])),
    FieldSpec("gender", gettext_lazy("Gender"), "choice", tuple(CHOICE_OPS), Gender),
    FieldSpec("occupation", gettext_lazy("Occupation"), "choice", tuple(CHOICE_OPS), Occupation),
    FieldSpec("industry", gettext_lazy("Industry"), "choice", tuple(CHOICE_OPS), Industry),
    FieldSpec("has_children", gettext_lazy("Has children"), "boolean", tuple(BOOLEAN_OPS)),
    FieldSpec("city", gettext_lazy("City"), "text", tuple(TEXT_OPS)),
    FieldSpec("branch", gettext_lazy("Branch"), "branch", tuple(CHOICE_OPS)),
    FieldSpec("rm", gettext_lazy("Relationship manager"), "rm", tuple(CHOICE_OPS)),
    FieldSpec("risk_level", gettext_lazy("Risk level"), "choice", tuple(CHOICE_OPS),
              ClientRiskLevel),
    FieldSpec("investor_type", gettext_lazy("Investor type"), "choice", tuple(CHOICE_OPS[:-1]),
              InvestorType),
    FieldSpec("status", gettext_lazy("Account status"), "choice", tuple(CHOICE_OPS[:-1]),
              ClientStatus),
    FieldSpec("opened_on", gettext_lazy("Account opened on"), "date", tuple(DATE_OPS)),
    FieldSpec("aum", gettext_lazy("AUM (CNY)"), "number", tuple(NUMBER_OPS[:-1])),
    FieldSpec("service_level", gettext_lazy("Service level"), "choice",
              ("eq", "ne", "in", "not_in"), ServiceLevel),
    FieldSpec("tier", gettext_lazy("Value tier"), "choice", tuple(CHOICE_OPS), Tier),
    FieldSpec("total_score", gettext_lazy("Total score"), "number", tuple(NUMBER_OPS)),
    FieldSpec("amount_score", gettext_lazy("Amount score"), "number", tuple(NUMBER_OPS)),
    FieldSpec("frequency_score", gettext_lazy("Frequency score"), "number", tuple(NUMBER_OPS)),
    FieldSpec("benefit_score", gettext_lazy("Benefit score"), "number", tuple(NUMBER_OPS)),
    FieldSpec("holds_product_type", gettext_lazy("Holds product type"), "product_type",
              ("eq", "ne", "in", "not_in"), ProductType),
    FieldSpec("holds_product", gettext_lazy("Holds product (code)"), "text",
              ("eq", "ne", "in", "not_in")),
    FieldSpec("days_since_last_purchase", gettext_lazy("Days since last purchase"), "number",
              tuple(NUMBER_OPS)),
    FieldSpec("segment", gettext_lazy("Member of segment"), "segment", tuple(MEMBER_OPS)),
    FieldSpec("consent_email", gettext_lazy("Email marketing consent"), "boolean", ("eq",)),
    FieldSpec("days_since_opened", gettext_lazy("Days since the account was opened"), "number",
              tuple(NUMBER_OPS)),
    FieldSpec("funded", gettext_lazy("Funded (has made a deposit)"), "boolean", ("eq",)),
    FieldSpec("days_to_risk_expiry", gettext_lazy("Days to the risk assessment's expiry"),
              "number", tuple(NUMBER_OPS)),
    FieldSpec("days_to_birthday", gettext_lazy("Days to the birthday"), "number",
              tuple(NUMBER_OPS[:-1])),
    FieldSpec("inflow_5d", gettext_lazy("Deposits in the last 5 trading days (CNY)"), "number",
              ("lt", "lte", "gt", "gte", "between")),
    FieldSpec("inflow_5d_pct_aum",
              gettext_lazy("Deposits in the last 5 trading days (percentage of AUM)"),
              "number", ("gt", "gte")),
    FieldSpec("days_to_maturity", gettext_lazy("Trading days to the nearest maturity"), "number",
              ("eq", "ne", "lt", "lte", "gt", "gte", "between", "is_null")),
    FieldSpec("purchases_total", gettext_lazy("Number of purchases (all time)"), "number",
              ("eq", "ne", "lt", "lte", "gt", "gte", "between")),
]
SPECS_BY_KEY = {f.key: f for f in FIELD_SPECS}


def _engine_ops() -> dict[str, set[str]] | None:
    """The engine's whitelist {field: {ops}} when segments.rules publishes one."""
    for name in ("FIELD_OPS", "FIELD_OPERATORS", "OPERATORS_BY_FIELD"):
        table = getattr(rules, name, None)
        if isinstance(table, dict):
            return {k: set(v) for k, v in table.items()}
    fields = getattr(rules, "FIELDS", None)
    if isinstance(fields, dict):
        out = {}
        for key, spec in fields.items():
            ops = getattr(spec, "ops", None) or (spec.get("ops") if isinstance(spec, dict)
                                                 else None)
            if ops:
                out[key] = set(ops)
        return out or None
    return None


def builder_fields(*, branches, rms, segments) -> list[dict]:
    """What the builder's JS needs: fields with translated labels, operators and choices.

    `branches`, `rms` and `segments` are lists of (value, label) read once by the view.
    """
    engine = _engine_ops()
    dynamic = {"branch": branches, "rm": rms, "segment": segments}
    out = []
    for spec in FIELD_SPECS:
        if engine is not None and spec.key not in engine:
            continue
        ops = [op for op in op_labels() if op in engine[spec.key]] if engine else list(spec.ops)
        if spec.choices is not None:
            choices = [[value, str(label)] for value, label in spec.choices.choices]
        else:
            choices = dynamic.get(spec.kind)
        out.append({"key": spec.key, "label": str(spec.label), "kind": spec.kind, "ops": ops,
                    "choices": [list(c) for c in choices] if choices is not None else None})
    return out


# --- readable rules ----------------------------------------------------------------------------
def _value_text(spec: FieldSpec | None, value, names: dict[str, str]) -> str:
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    if spec is not None and spec.choices is not None:
        labels = dict(spec.choices.choices)
        return str(labels.get(value, value))
    if spec is not None and spec.kind == "segment":
        return names.get(str(value), str(value))
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int) and spec is not None and spec.key == "aum":
        return f"{value:,}"
    return str(value)


def _condition_text(node: dict, names: dict[str, str]) -> str:
    spec = SPECS_BY_KEY.get(node.get("field"))
    field = str(spec.label) if spec else str(node.get("field"))
    op, value = node.get("op"), node.get("value")
    if op == "is_null":
        return (_("%(field)s is empty") if value in (True, None, "true")
                else _("%(field)s is not empty")) % {"field": field}
    if op == "between" and isinstance(value, list | tuple) and len(value) == 2:
        return _("%(field)s between %(low)s and %(high)s") % {
            "field": field, "low": _value_text(spec, value[0], names),
            "high": _value_text(spec, value[1], names)}
    if isinstance(value, list | tuple):
        shown = _(", ").join(_value_text(spec, v, names) for v in value)
    else:
        shown = _value_text(spec, value, names)
    return f"{field} {op_labels().get(op, op)} {shown}"


def rule_text(rule, *, segment_names: dict[str, str] | None = None, _nested: bool = False) -> str:
    """The rule as a sentence in the current language; "" for no rule."""
    names = segment_names or {}
    if not isinstance(rule, dict) or not rule:
        return ""
    if "all" in rule or "any" in rule:
        key = "all" if "all" in rule else "any"
        joiner = _(" AND ") if key == "all" else _(" OR ")
        parts = [rule_text(child, segment_names=names, _nested=True)
                 for child in rule.get(key) or []]
        text = joiner.join(p for p in parts if p)
        return f"({text})" if _nested and len(parts) > 1 else text
    if "not" in rule:
        return _("NOT (%(rule)s)") % {"rule": rule_text(rule["not"], segment_names=names)}
    return _condition_text(rule, names)


def rule_segment_codes(rule) -> set[str]:
    """Codes of the segments a rule refers to (to name them in `rule_text`)."""
    found: set[str] = set()
    if isinstance(rule, dict):
        if rule.get("field") == "segment":
            value = rule.get("value")
            found.update(str(v) for v in (value if isinstance(value, list) else [value]))
        for key in ("all", "any"):
            for child in rule.get(key) or []:
                found |= rule_segment_codes(child)
        if "not" in rule:
            found |= rule_segment_codes(rule["not"])
    return found


# --- forms -------------------------------------------------------------------------------------
class SegmentNamesForm(forms.Form):
    name_zh = forms.CharField(label=gettext_lazy("Name (Chinese)"), max_length=100, required=False)
    name_en = forms.CharField(label=gettext_lazy("Name (English)"), max_length=100, required=False)
    description_zh = forms.CharField(label=gettext_lazy("Description (Chinese)"), required=False,
                                     max_length=2000, widget=forms.Textarea(attrs={"rows": 2}))
    description_en = forms.CharField(label=gettext_lazy("Description (English)"), required=False,
                                     max_length=2000, widget=forms.Textarea(attrs={"rows": 2}))

    def clean(self):
        data = super().clean()
        if not data.get("name_zh") and not data.get("name_en"):
            raise forms.ValidationError(_("Give the segment a name in at least one language."))
        return data


class _CodeMixin:
    def clean_code(self):
        code = (self.cleaned_data.get("code") or "").strip().lower()
        if not _CODE.match(code):
            raise forms.ValidationError(_(
                "2–64 characters: lower-case letters, digits, underscores and hyphens."))
        if code in {"new", "personas", "preview", "static"}:
            raise forms.ValidationError(_("This code is reserved."))
        if Segment.objects.filter(code=code).exists():
            raise forms.ValidationError(_("A segment with this code already exists."))
        return code


class RuleSegmentForm(_CodeMixin, SegmentNamesForm):
    code = forms.CharField(label=gettext_lazy("Code"), max_length=64)
    rule = forms.CharField(label=gettext_lazy("Rule (JSON)"), required=False,
                           widget=forms.Textarea(attrs={"rows": 3}))
    field_order = ["code", "name_zh", "name_en", "description_zh", "description_en", "rule"]

    def __init__(self, *args, segment: Segment | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.segment = segment
        if segment is not None:
            del self.fields["code"]

    def clean_rule(self):
        raw = self.cleaned_data.get("rule") or ""
        try:
            rule = json_loads(raw) if raw.strip() else None
        except JSONInputError as exc:  # also too deep, NUL, lone surrogates
            raise forms.ValidationError(_("The rule is not valid JSON: %(error)s")
                                        % {"error": exc}) from None
        if not isinstance(rule, dict) or not rule:
            raise forms.ValidationError(_("Add at least one condition."))
        return rule


def parse_rule(raw: str) -> tuple[dict | None, str]:
    """(the rule JSON posted by the builder, "") or (None, why it is not a JSON object)."""
    try:
        rule = json_loads(raw or "")
    except JSONInputError as exc:  # also too deep, NUL, lone surrogates
        return None, _("The rule is not valid JSON: %(error)s") % {"error": exc}
    if not isinstance(rule, dict):
        return None, _("The rule is not valid JSON.")
    return rule, ""


def _client_nos_from_file(upload) -> list[str]:
    suffix = Path(upload.name or "").suffix.lower()
    if suffix == ".xlsx":
        from openpyxl import load_workbook  # heavy; only for an uploaded workbook

        try:
            workbook = load_workbook(upload, read_only=True, data_only=True)
        except Exception as exc:  # a corrupt or renamed file: a form error, not a 500
            raise forms.ValidationError(_("The file could not be read as .xlsx.")) from exc
        values = []
        for row in workbook.active.iter_rows(values_only=True):
            if row and row[0] not in (None, ""):
                value = row[0]
                values.append(str(int(value)) if isinstance(value, float)
                              and value.is_integer() else str(value))
        workbook.close()
        return values
    try:
        text = upload.read().decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            upload.seek(0)
            text = upload.read().decode("gb18030")
        except UnicodeDecodeError as exc:
            raise forms.ValidationError(_("The file is not UTF-8 or GBK text.")) from exc
    return [row[0] for row in csv.reader(io.StringIO(text)) if row and row[0].strip()]


def client_nos_clean(values) -> list[str]:
    """Unique client numbers in their order, without blanks and a header row."""
    seen: dict[str, None] = {}
    for value in values:
        value = str(value).strip().strip("'\"")
        if value and value.lower() not in {"client_no", "client number", "客户号", "客户编号"}:
            seen.setdefault(value, None)
    return list(seen)


class StaticListForm(_CodeMixin, SegmentNamesForm):
    code = forms.CharField(label=gettext_lazy("Code"), max_length=64)
    file = forms.FileField(label=gettext_lazy("File of client numbers (.csv or .xlsx)"),
                           required=False,
                           help_text=gettext_lazy("Client numbers in the first column."))
    client_nos = forms.CharField(label=gettext_lazy("Or paste client numbers"), required=False,
                                 widget=forms.Textarea(attrs={"rows": 5}),
                                 help_text=gettext_lazy(
                                     "Separated by new lines, spaces or commas."))
    field_order = ["code", "name_zh", "name_en", "description_zh", "description_en", "file",
                   "client_nos"]

    def clean_file(self):
        upload = self.cleaned_data.get("file")
        if upload is None:
            return None
        if Path(upload.name or "").suffix.lower() not in {".csv", ".xlsx", ".txt"}:
            raise forms.ValidationError(_("Upload a .csv or .xlsx file."))
        if upload.size > MAX_UPLOAD_BYTES:
            raise forms.ValidationError(_("The file is larger than %(mb)d MB.")
                                        % {"mb": MAX_UPLOAD_BYTES // (1024 * 1024)})
        return _client_nos_from_file(upload)

    def clean(self):
        data = super().clean()
        values = list(data.get("file") or []) + _SPLIT.split(data.get("client_nos") or "")
        nos = client_nos_clean(values)
        if not nos and not self.has_error("file"):
            raise forms.ValidationError(_("Upload a file or paste at least one client number."))
        if len(nos) > MAX_CLIENT_NOS:
            raise forms.ValidationError(_("At most %(n)d client numbers per list.")
                                        % {"n": MAX_CLIENT_NOS})
        data["numbers"] = nos
        return data


class AddToStaticListForm(forms.Form):
    """From the client list: add the ticked clients to a static list, new or existing."""

    client_no = forms.MultipleChoiceField(required=False)  # choices are checked against scope
    segment = forms.ModelChoiceField(label=gettext_lazy("Static list"), required=False,
                                     queryset=Segment.objects.filter(kind=SegmentKind.STATIC))
    new_name = forms.CharField(label=gettext_lazy("or a new list named"), max_length=100,
                               required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["client_no"].choices = [
            (v, v) for v in (self.data.getlist("client_no") if hasattr(self.data, "getlist")
                             else [])]

    def clean(self):
        data = super().clean()
        if not data.get("client_no"):
            raise forms.ValidationError(_("Tick at least one client."))
        if not data.get("segment") and not (data.get("new_name") or "").strip():
            raise forms.ValidationError(_("Choose a static list or name a new one."))
        return data
