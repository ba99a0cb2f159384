"""Edition sections: what each kind of section holds and the rules it must meet.

This is the one declaration of those rules. The editor page (newsletters.forms), the API
(newsletters.api, which documents it) and the services (which validate whatever any caller
sends, so no path can skip it) all go through `sections_validate` / `section_validate`.

A section is {"kind", "title", "body", "data"}; `data` holds the kind's settings (KINDS). The
stored format is exactly what the caller sent, type-checked: nothing is filled in or
truncated, so an over-long text is an error the author can fix, never silently cut.
Suitability of picks is not a section rule: it is applied per client when rendering.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from django.utils.translation import gettext as _

from clients.models import Product, ProductType
from core.errors import ApplicationError

from .links import is_trackable_target
from .models import SectionKind

MAX_SECTIONS = 30
TITLE_MAX = 200
BODY_MAX = 20_000  # any Markdown text of a section: body, summary, intro, notes
URL_MAX = 2_000
TOP_N_MIN = 1
TOP_N_MAX = 20
TOP_N_DEFAULT = 5

# Field types.
TEXT = "text"  # one line of text, at most `max_length`
MARKDOWN = "markdown"  # Markdown text, at most BODY_MAX
URL = "url"  # an http or https link
WHOLE = "whole"  # a whole number from `minimum` to `maximum`
CODES = "codes"  # a list of product codes, each once, each a product on sale
NOTES = "notes"  # an object mapping a key (see `keys`) to Markdown text

# What the keys of a NOTES field must be.
ANY_KEY = "any"
PRODUCT_KEY = "product"  # a known product code
TYPE_KEY = "product_type"  # a ProductType value
PICKED_KEY = "picked"  # one of the same section's product_codes


@dataclass(frozen=True)
class Field:
    name: str
    type: str
    required: bool = False
    max_length: int | None = None
    minimum: int | None = None
    maximum: int | None = None
    default: object = None
    keys: str = ANY_KEY
    note_required: bool = False  # NOTES: each note must say something


@dataclass(frozen=True)
class Kind:
    body_required: bool = False
    data: tuple[Field, ...] = ()

    @property
    def data_keys(self) -> set[str]:
        return {f.name for f in self.data}


KINDS: dict[str, Kind] = {
    SectionKind.EDITORIAL: Kind(body_required=True),
    SectionKind.RESEARCH: Kind(data=(
        Field("title", TEXT, required=True, max_length=TITLE_MAX),
        Field("summary", MARKDOWN),
        Field("url", URL),
    )),
    SectionKind.HOLDINGS: Kind(data=(
        Field("intro", MARKDOWN),
        Field("top_n", WHOLE, minimum=TOP_N_MIN, maximum=TOP_N_MAX, default=TOP_N_DEFAULT),
        Field("notes_by_product", NOTES, keys=PRODUCT_KEY, note_required=True),
        Field("notes_by_type", NOTES, keys=TYPE_KEY, note_required=True),
    )),
    SectionKind.PICKS: Kind(data=(
        Field("product_codes", CODES),  # may be empty: picks are filtered per client anyway
        Field("notes", NOTES, keys=PICKED_KEY),
    )),
    SectionKind.RM_NOTE: Kind(data=(
        Field("fallback", MARKDOWN),
        Field("by_rm", NOTES),  # RM username -> note
    )),
}


def kinds_described() -> str:
    """The settings of each kind, for API documentation."""
    parts = []
    for kind, spec in KINDS.items():
        fields = ", ".join(_describe(f) for f in spec.data) or "none"
        parts.append(f"{kind} {{{fields}}}")
    return "; ".join(parts)


def _describe(f: Field) -> str:
    if f.type == WHOLE:
        return f"{f.name}: integer {f.minimum}-{f.maximum}, default {f.default}"
    if f.type == CODES:
        return f"{f.name}: list of product codes, each once, each on sale"
    if f.type == NOTES:
        return f"{f.name}: {{{f.keys}: Markdown}}"
    limit = f.max_length or (URL_MAX if f.type == URL else BODY_MAX)
    return f"{f.name}: {f.type} ≤ {limit}{', required' if f.required else ''}"


class _Errors:
    def __init__(self):
        self.fields: dict[str, list[str]] = {}

    def add(self, path: str, message) -> None:
        self.fields.setdefault(path, []).append(str(message))


def _too_long(limit: int) -> str:
    return _("At most %(max)s characters.") % {"max": f"{limit:,}"}


def _product_codes_in(sections) -> set[str]:
    codes: set[str] = set()
    for section in sections:
        data = section.get("data") if isinstance(section, Mapping) else None
        if not isinstance(data, Mapping):
            continue
        listed = data.get("product_codes")
        if isinstance(listed, list):
            codes.update(c for c in listed if isinstance(c, str))
        notes = data.get("notes_by_product")
        if isinstance(notes, Mapping):
            codes.update(k for k in notes if isinstance(k, str))
    return codes


def _products(codes: set[str]) -> dict[str, bool]:
    """product code -> on sale, for the codes that exist."""
    if not codes:
        return {}
    return dict(Product.objects.filter(product_code__in=codes)
                .values_list("product_code", "is_active"))


def _check_field(f: Field, value, data: Mapping, products: dict[str, bool], errors: _Errors,
                 path: str) -> None:
    if f.type in (TEXT, MARKDOWN, URL):
        if not isinstance(value, str):
            errors.add(path, _("Must be text."))
            return
        limit = f.max_length or (URL_MAX if f.type == URL else BODY_MAX)
        if f.required and not value.strip():
            errors.add(path, _("Give the report's title.") if f.name == "title"
                       else _("This is required."))
        elif len(value) > limit:
            errors.add(path, _too_long(limit))
        elif f.type == URL and value and not is_trackable_target(value.strip()):
            errors.add(path, _("Enter a full http or https link, e.g. "
                               "https://research.example.com/r/1."))
    elif f.type == WHOLE:
        if isinstance(value, bool) or not isinstance(value, int) \
                or not f.minimum <= value <= f.maximum:
            errors.add(path, _("A whole number from %(min)d to %(max)d.")
                       % {"min": f.minimum, "max": f.maximum})
    elif f.type == CODES:
        if not isinstance(value, list) or not all(isinstance(c, str) and c for c in value):
            errors.add(path, _("Must be a list of product codes."))
            return
        if f.required and not value:
            errors.add(path, _("Choose at least one product."))
        seen: set[str] = set()
        for code in value:
            if code in seen:
                errors.add(path, _("%(code)s is picked twice.") % {"code": code})
            elif code not in products:
                errors.add(path, _("Unknown product code: %(code)s") % {"code": code})
            elif not products[code]:
                errors.add(path, _("%(code)s is not a product on sale.") % {"code": code})
            seen.add(code)
    elif f.type == NOTES:
        if not isinstance(value, Mapping) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
            errors.add(path, _("Must map names to Markdown text."))
            return
        picked = data.get("product_codes") if isinstance(data.get("product_codes"), list) else []
        for key, note in value.items():
            if f.keys == PRODUCT_KEY and key not in products:
                errors.add(path, _("Unknown product code: %(code)s") % {"code": key})
            elif f.keys == TYPE_KEY and key not in ProductType.values:
                errors.add(path, _("Unknown product type: %(type)s") % {"type": key})
            elif f.keys == PICKED_KEY and key not in picked:
                errors.add(path, _("A note for %(code)s, which is not picked.") % {"code": key})
            elif f.note_required and not note.strip():
                errors.add(path, _("Write a note for %(code)s or remove the row.")
                           % {"code": key})
            elif len(note) > BODY_MAX:
                errors.add(path, _too_long(BODY_MAX))


def _section_errors(kind, section, products: dict[str, bool]) -> tuple[dict, _Errors]:
    errors = _Errors()
    if not isinstance(section, Mapping):
        errors.add("section", _("Must be an object."))
        return {}, errors
    if kind not in KINDS:
        errors.add("kind", _("Unknown kind; one of %(kinds)s.")
                   % {"kinds": ", ".join(SectionKind.values)})
        return {}, errors
    spec = KINDS[kind]
    title, body, data = (section.get(key) for key in ("title", "body", "data"))
    title = "" if title is None else title
    body = "" if body is None else body
    data = {} if data is None else data
    if not isinstance(title, str):
        errors.add("title", _("Must be text."))
    elif len(title) > TITLE_MAX:
        errors.add("title", _too_long(TITLE_MAX))
    if not isinstance(body, str):
        errors.add("body", _("Must be text."))
    elif len(body) > BODY_MAX:
        errors.add("body", _too_long(BODY_MAX))
    elif spec.body_required and not body.strip():
        errors.add("body", _("Write the text of this section."))
    if not isinstance(data, Mapping):
        errors.add("data", _("Must be an object."))
        return {}, errors
    unknown = sorted(str(k) for k in set(data) - spec.data_keys)
    if unknown:
        errors.add("data", _("Unknown settings for this kind of section: %(keys)s.")
                   % {"keys": ", ".join(unknown)})
    for f in spec.data:
        value = data.get(f.name, f.default)
        if value is None:
            value = [] if f.type == CODES else {} if f.type == NOTES else ""
        _check_field(f, value, data, products, errors, f"data.{f.name}")
    return {"kind": kind, "title": title, "body": body, "data": dict(data)}, errors


def _raise(errors: dict[str, list[str]], *, index: int | None, kind) -> None:
    label = SectionKind(kind).label if kind in SectionKind.values else str(kind or "?")
    first = next(iter(errors.values()))[0]
    if index is None:
        raise ApplicationError(f"{label}: {first}", code="invalid_section", fields=errors)
    where = _("Section %(n)s (%(kind)s)") % {"n": index + 1, "kind": label}
    raise ApplicationError(f"{where}: {first}", code="invalid_section", fields=errors)


def section_validate(kind: str, section: Mapping) -> dict:
    """One section, cleaned ({"kind", "title", "body", "data"}), or ApplicationError whose
    `fields` name each problem by its path ("body", "data.top_n")."""
    products = _products(_product_codes_in([section]))
    cleaned, errors = _section_errors(kind, section, products)
    if errors.fields:
        _raise(errors.fields, index=None, kind=kind)
    return cleaned


def sections_validate(sections) -> list[dict]:
    """An edition's sections in order, cleaned and numbered from 1, or ApplicationError
    listing every problem of every section as "sections[<index from 0>].<path>"."""
    if not isinstance(sections, list):
        raise ApplicationError(_("Sections must be a list."), code="invalid_section",
                               fields={"sections": [_("Sections must be a list.")]})
    if len(sections) > MAX_SECTIONS:
        message = _("An edition has at most %(n)s sections.") % {"n": MAX_SECTIONS}
        raise ApplicationError(message, code="invalid_section", fields={"sections": [message]})
    products = _products(_product_codes_in(sections))
    cleaned, fields, first_bad = [], {}, None
    for i, section in enumerate(sections):
        kind = section.get("kind") if isinstance(section, Mapping) else None
        one, errors = _section_errors(kind, section, products)
        if errors.fields:
            first_bad = first_bad or (i, kind)
            fields.update({f"sections[{i}].{path}": msgs for path, msgs in errors.fields.items()})
        cleaned.append({"position": i + 1, **one})
    if fields:
        _raise(fields, index=first_bad[0], kind=first_bad[1])
    return cleaned
