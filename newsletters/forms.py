"""Forms of the newsletter pages: publications, the edition editor, actions and phrases.

The edition editor posts the whole edition at once: the subject and preheader, then each
section as `s-<i>-<field>` (in page order) with its repeating rows as `s-<i>-<table>-<j>-<col>`.
The add / remove / up / down buttons post the same form with an `op`, so reordering never loses
what was typed and works without JavaScript; nothing is saved until "Save".
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from django import forms
from django.utils.translation import gettext_lazy as _

from core.errors import ApplicationError
from segments.models import Segment

from .headers import (
    PUBLICATION_HEADER_FIELDS,
    UNSAFE_HEADER_MESSAGE,
    header_is_safe,
    validate_header_value,
)
from .models import Edition, Publication, SectionKind
from .sections import MAX_SECTIONS, TOP_N_DEFAULT, TOP_N_MAX, TOP_N_MIN, sections_validate

DEFAULT_AUDIENCE = "high_net_worth"
MAX_ROWS = 50
BLANK_ROWS = 2
HEADER_MAX = 1000

# Where the editor shows an error on a section's data (newsletters.sections paths).
FIELD_FOR_PATH = {
    "title": "title", "body": "body", "data.title": "report_title", "data.summary": "summary",
    "data.url": "url", "data.intro": "intro", "data.top_n": "top_n",
    "data.notes_by_product": "products", "data.notes_by_type": "types",
    "data.product_codes": "picks", "data.notes": "picks", "data.fallback": "fallback",
}

# Which repeating tables each kind has, and their columns.
ROW_TABLES = {
    SectionKind.HOLDINGS: {"products": ("code", "note"), "types": ("type", "note")},
    SectionKind.PICKS: {"picks": ("code", "note")},
}


class HeaderFieldsChecked:
    """Mixin for a Publication model form (the page's and the admin's): the sender name and
    addresses become header lines, so each must be a single line (newsletters.headers)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in PUBLICATION_HEADER_FIELDS:
            if name in self.fields:
                self.fields[name].validators.append(validate_header_value)


class PublicationForm(HeaderFieldsChecked, forms.ModelForm):
    audience = forms.ModelChoiceField(queryset=Segment.objects.none(), label=_("audience segment"),
                                      empty_label=None)

    class Meta:
        model = Publication
        fields = ["name", "slug", "description", "audience", "sender_mode", "from_name",
                  "from_email", "reply_to", "cadence", "tracking_enabled"]
        widgets = {"description": forms.Textarea(attrs={"rows": 2})}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        segments = Segment.objects.filter(is_active=True).order_by("kind", "code")
        self.fields["audience"].queryset = segments
        if not self.is_bound and self.instance.pk is None:
            default = segments.filter(code=DEFAULT_AUDIENCE).first()
            if default is not None:
                self.initial.setdefault("audience", default.pk)
        self.fields["slug"].help_text = _("Letters, digits, - and _; used in links.")
        for name, f in self.fields.items():
            css = "form-check-input" if name == "tracking_enabled" else (
                "form-select" if isinstance(f.widget, forms.Select) else "form-control")
            f.widget.attrs.setdefault("class", css)


class ScheduleForm(forms.Form):
    at = forms.DateTimeField(label=_("Send at"), input_formats=["%Y-%m-%dT%H:%M"],
                             widget=forms.DateTimeInput(attrs={"type": "datetime-local"},
                                                        format="%Y-%m-%dT%H:%M"))


class RejectForm(forms.Form):
    comment = forms.CharField(label=_("Reason for rejection"), max_length=4000,
                              widget=forms.Textarea(attrs={"rows": 3}),
                              error_messages={"required": _("Say what needs to change.")})


class ApproveForm(forms.Form):
    comment = forms.CharField(label=_("Comment (optional)"), max_length=4000, required=False)
    content_version = forms.IntegerField(required=False, min_value=1)


class PhraseForm(forms.Form):
    phrase = forms.CharField(label=_("Phrase"), max_length=100)


class PreviewClientForm(forms.Form):
    q = forms.CharField(max_length=50, required=False)
    client = forms.CharField(max_length=32, required=False)


# --- the edition editor --------------------------------------------------------------------
@dataclass
class SectionBlock:
    """One section as the editor holds it: raw values, repeating rows and errors."""

    kind: str
    values: dict = field(default_factory=dict)
    rows: dict = field(default_factory=dict)  # table -> [{"code": .., "note": ..}]
    errors: dict = field(default_factory=dict)  # field (or "table") -> [messages]
    index: int = 0

    @property
    def kind_label(self) -> str:
        return SectionKind(self.kind).label

    @property
    def has_errors(self) -> bool:
        return bool(self.errors)

    def padded_rows(self, table: str) -> list[dict]:
        rows = list(self.rows.get(table, []))
        cols = ROW_TABLES[self.kind][table]
        return rows + [dict.fromkeys(cols, "") for _ in range(BLANK_ROWS)]

    # Views in templates need attribute access for each table.
    @property
    def product_rows(self):
        return self.padded_rows("products")

    @property
    def type_rows(self):
        return self.padded_rows("types")

    @property
    def pick_rows(self):
        return self.padded_rows("picks")

    def error(self, msg, name: str = "section") -> None:
        self.errors.setdefault(name, []).append(str(msg))

    @classmethod
    def from_section(cls, section) -> SectionBlock:
        data = section.data or {}
        values = {"title": section.title, "body": section.body}
        rows = {}
        if section.kind == SectionKind.RESEARCH:
            values.update(report_title=data.get("title", ""), summary=data.get("summary", ""),
                          url=data.get("url", ""))
        elif section.kind == SectionKind.HOLDINGS:
            values.update(intro=data.get("intro", ""),
                          top_n=str(data.get("top_n", TOP_N_DEFAULT)))
            rows["products"] = [{"code": k, "note": v}
                                for k, v in (data.get("notes_by_product") or {}).items()]
            rows["types"] = [{"type": k, "note": v}
                             for k, v in (data.get("notes_by_type") or {}).items()]
        elif section.kind == SectionKind.PICKS:
            notes = data.get("notes") or {}
            rows["picks"] = [{"code": c, "note": notes.get(c, "")}
                             for c in data.get("product_codes") or []]
        elif section.kind == SectionKind.RM_NOTE:
            values["fallback"] = data.get("fallback", "")
        return cls(kind=section.kind, values=values, rows=rows)

    @classmethod
    def blank(cls, kind: str) -> SectionBlock:
        values = {"title": "", "body": ""}
        if kind == SectionKind.HOLDINGS:
            values["top_n"] = str(TOP_N_DEFAULT)
        return cls(kind=kind, values=values)


def _text(post, key: str, limit: int | None = None) -> str:
    # Section texts are kept whole: a text over its limit is an error the author sees next to
    # what they typed (newsletters.sections), never cut short here.
    text = (post.get(key) or "").replace("\r\n", "\n")
    return text if limit is None else text[:limit]


def _whole_number(raw: str):
    """The editor's top_n as the number it spells, else as typed (the schema refuses it)."""
    raw = (raw or "").strip()
    return int(raw) if raw.isascii() and raw.isdigit() and len(raw) < 10 else raw


def _bounded_int(raw, upper: int) -> int:
    try:
        return max(0, min(int(raw), upper))
    except (TypeError, ValueError):
        return 0


class EditionEditor:
    """The subject, preheader and ordered sections of an edition being edited."""

    VALUE_FIELDS = ("title", "body", "report_title", "summary", "url", "intro", "top_n",
                    "fallback")
    TOP_N_MIN, TOP_N_MAX = TOP_N_MIN, TOP_N_MAX

    def __init__(self, *, subject: str = "", preheader: str = "", blocks=None):
        self.subject = subject
        self.preheader = preheader
        self.blocks: list[SectionBlock] = list(blocks or [])
        self.errors: dict[str, list[str]] = {}
        self.non_field_errors: list[str] = []
        self._renumber()

    def _renumber(self) -> None:
        for i, block in enumerate(self.blocks):
            block.index = i

    @classmethod
    def for_edition(cls, edition: Edition) -> EditionEditor:
        return cls(subject=edition.subject, preheader=edition.preheader,
                   blocks=[SectionBlock.from_section(s)
                           for s in edition.sections.all().order_by("position")])

    @classmethod
    def new(cls) -> EditionEditor:
        return cls(blocks=[SectionBlock.blank(SectionKind.EDITORIAL)])

    @classmethod
    def from_post(cls, post) -> EditionEditor:
        count = _bounded_int(post.get("sections-count"), MAX_SECTIONS)
        blocks = []
        for i in range(count):
            kind = post.get(f"s-{i}-kind", "")
            if kind not in SectionKind.values:
                continue
            values = {name: _text(post, f"s-{i}-{name}") for name in cls.VALUE_FIELDS}
            rows = {}
            for table, cols in ROW_TABLES.get(kind, {}).items():
                n = _bounded_int(post.get(f"s-{i}-{table}-count"), MAX_ROWS + BLANK_ROWS)
                found = []
                for j in range(n):
                    row = {c: _text(post, f"s-{i}-{table}-{j}-{c}").strip() for c in cols}
                    if any(row.values()):
                        found.append(row)
                rows[table] = found[:MAX_ROWS]
            blocks.append(SectionBlock(kind=kind, values=values, rows=rows))
        return cls(subject=_text(post, "subject", HEADER_MAX),
                   preheader=_text(post, "preheader", HEADER_MAX),
                   blocks=blocks)

    # -- add / remove / reorder ---------------------------------------------------------------
    def apply(self, op: str) -> bool:
        """Apply an editor button ("add:picks", "up:2", "down:0", "remove:1"); False if unknown."""
        verb, _sep, arg = (op or "").partition(":")
        if verb == "add" and arg in SectionKind.values:
            if len(self.blocks) >= MAX_SECTIONS:
                self.non_field_errors.append(
                    str(_("An edition has at most %(n)d sections.") % {"n": MAX_SECTIONS}))
            else:
                self.blocks.append(SectionBlock.blank(arg))
            self._renumber()
            return True
        try:
            i = int(arg)
        except ValueError:
            return False
        if not 0 <= i < len(self.blocks):
            return False
        if verb == "remove":
            del self.blocks[i]
        elif verb == "up" and i > 0:
            self.blocks[i - 1], self.blocks[i] = self.blocks[i], self.blocks[i - 1]
        elif verb == "down" and i < len(self.blocks) - 1:
            self.blocks[i + 1], self.blocks[i] = self.blocks[i], self.blocks[i + 1]
        elif verb not in ("up", "down"):
            return False
        self._renumber()
        return True

    # -- validation -------------------------------------------------------------------------
    def is_valid(self) -> bool:
        self.errors, self.non_field_errors = {}, []
        subject = self.subject.strip()
        if not subject:
            self.errors["subject"] = [str(_("Give the edition a subject."))]
        elif len(subject) > 200:
            self.errors["subject"] = [str(_("At most 200 characters."))]
        elif not header_is_safe(subject):
            self.errors["subject"] = [str(UNSAFE_HEADER_MESSAGE)]
        if len(self.preheader.strip()) > 200:
            self.errors["preheader"] = [str(_("At most 200 characters."))]
        if not self.blocks:
            self.non_field_errors.append(str(_("Add at least one section.")))
        for block in self.blocks:
            block.errors = {}
            self._check_rows(block)
        try:
            sections_validate(self.sections())
        except ApplicationError as exc:
            self.add_service_errors(exc)
        return not (self.errors or self.non_field_errors
                    or any(b.errors for b in self.blocks))

    @staticmethod
    def _check_rows(block: SectionBlock) -> None:
        """The rules of the editor's note tables themselves; what the rows say is checked by
        newsletters.sections like any other caller's data."""
        seen = set()
        for row in block.rows.get("types", []):
            if not row["type"]:
                block.error(_("Choose a product type for each note."), "types")
            elif row["type"] in seen:
                block.error(_("One note per product type."), "types")
            seen.add(row["type"])
        for table in ("products", "picks"):
            if any(not row["code"] for row in block.rows.get(table, [])):
                block.error(_("Choose a product for each note."), table)

    # -- what the services take ---------------------------------------------------------------
    def sections(self) -> list[dict]:
        out = []
        for i, block in enumerate(self.blocks):
            v = block.values
            data: dict = {}
            body = v.get("body", "").strip()
            if block.kind == SectionKind.RESEARCH:
                data = {"title": v.get("report_title", "").strip(),
                        "summary": v.get("summary", "").strip(), "url": v.get("url", "").strip()}
            elif block.kind == SectionKind.HOLDINGS:
                data = {"intro": v.get("intro", "").strip(),
                        "top_n": _whole_number(v.get("top_n", "")),
                        "notes_by_product": {r["code"]: r["note"]
                                             for r in block.rows.get("products", [])
                                             if r["code"]},
                        "notes_by_type": {r["type"]: r["note"]
                                          for r in block.rows.get("types", []) if r["type"]}}
            elif block.kind == SectionKind.PICKS:
                picks = [r for r in block.rows.get("picks", []) if r["code"]]
                data = {"product_codes": [r["code"] for r in picks],
                        "notes": {r["code"]: r["note"] for r in picks if r["note"]}}
            elif block.kind == SectionKind.RM_NOTE:
                data = {"fallback": v.get("fallback", "").strip()}
            out.append({"position": i + 1, "kind": block.kind,
                        "title": v.get("title", "").strip(), "body": body, "data": data})
        return out

    def add_service_errors(self, exc) -> None:
        """Put an ApplicationError's messages next to the field or section they name."""
        placed = False
        for key, messages in (exc.fields or {}).items():
            msgs = messages if isinstance(messages, list | tuple) else [messages]
            key = str(key)
            if key in ("subject", "preheader"):
                self.errors.setdefault(key, []).extend(str(m) for m in msgs)
                placed = True
                continue
            block = self._block_for_key(key)
            if block is not None:
                for m in msgs:
                    block.error(m, self._field_for_key(key))
                placed = True
        if not placed or not exc.fields:
            self.non_field_errors.append(exc.message)

    @staticmethod
    def _field_for_key(key: str) -> str:
        path = re.sub(r"^sections\[\d+\]\.?", "", key)
        for prefix, name in FIELD_FOR_PATH.items():
            if path == prefix or path.startswith((f"{prefix}.", f"{prefix}[")):
                return name
        return "section"

    def _block_for_key(self, key: str) -> SectionBlock | None:
        # The services name a section by its index from 0: "sections[2].data.url".
        m = re.match(r"^sections\[(\d+)\]", key)
        if not m:
            return None
        i = int(m.group(1))
        return self.blocks[i] if 0 <= i < len(self.blocks) else None
