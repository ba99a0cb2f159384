"""Personalise and render an edition for one client, and build the email message.

Editors write Markdown, never template code: their text is converted to sanitised HTML
(newsletters.markdown) and handed to the product-owned templates in
templates/newsletters/email/ as *data*. It is never compiled as a template, so
`{{ settings.SECRET_KEY }}` written in a section shows up as exactly those characters.

`delivery_context` is the personal data snapshot stored in Delivery.context (JSON), so a
message can be shown again exactly as sent; `render_edition` turns edition + snapshot into
subject, HTML (CSS inlined by premailer) and plain text.
"""

from __future__ import annotations

import binascii
import functools
import logging
import random
import re
import secrets
from dataclasses import dataclass, field
from decimal import Decimal
from email.headerregistry import Address
from email.utils import formatdate
from html import unescape
from urllib.parse import urlsplit

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.core.mail.message import forbid_multi_line_headers, sanitize_address
from django.db.models import OuterRef, Subquery
from django.template import engines
from django.template.defaultfilters import floatformat
from django.template.loader import get_template, render_to_string
from django.utils import translation
from django.utils.html import escape
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _

from clients.models import ClientRiskLevel, Holding, Product, ProductType
from clients.suitability import suitable_products

from . import links
from .markdown import markdown_to_html
from .models import SectionKind, SenderMode
from .sections import TOP_N_DEFAULT as DEFAULT_TOP_N
from .sections import TOP_N_MAX as MAX_TOP_N
from .skeleton import SkeletonTemplate

logger = logging.getLogger(__name__)

# Bump when templates/newsletters/email/* change in a way a reader would see; archived.
TEMPLATE_VERSION = "email-2026.2"
NOT_FOUND = "not_found"
NOT_ON_SALE = "not_on_sale"

_HREF = re.compile(r'href="([^"]*)"')


def email_language() -> str:
    """Emails are written in the firm's language (LANGUAGE_CODE), not the language of the
    staff member who previews them: the preview must be the message the client gets."""
    return settings.LANGUAGE_CODE


@dataclass
class Rendered:
    subject: str
    html: str
    text: str
    headers: dict = field(default_factory=dict)


# --- personal data snapshot -------------------------------------------------------------

def _salutation(client) -> str:
    name = (client.name or "").strip()
    honorific = {"F": "女士", "M": "先生"}.get(client.gender or "")
    if name and honorific and all("\u4e00" <= ch <= "\u9fff" for ch in name):
        name = name[0] + honorific
    return name


def _rm_signature(rm) -> dict | None:
    if rm is None:
        return None
    return {
        "name": str(rm),
        "title": _("Relationship manager"),
        "phone": getattr(rm, "phone", "") or "",
        "email": rm.email or "",
        "username": rm.get_username(),
    }


def _money(value) -> str:
    return f"{Decimal(value or 0):,.2f}"


def _type_label(product_type: str) -> str:
    return _type_label_in(translation.get_language(), product_type)


@functools.lru_cache(maxsize=512)
def _type_label_in(_language: str | None, product_type: str) -> str:
    try:
        return str(ProductType(product_type).label)
    except ValueError:
        return product_type


def _pick_products(edition, codes: list[str]) -> dict:
    """Products named by a picks section, fetched once per edition instance (dispatch renders
    many clients from one instance)."""
    cache = edition.__dict__.setdefault("_nl_pick_products", {})
    missing = [c for c in codes if c not in cache]
    if missing:
        found = {p.product_code: p for p in Product.objects.filter(product_code__in=missing)}
        for code in missing:
            cache[code] = found.get(code)
    return cache


def _sections(edition) -> list:
    """The edition's sections, loaded once per edition instance and content version."""
    cached = edition.__dict__.get("_nl_sections")
    if cached is None or cached[0] != edition.content_version:
        cached = (edition.content_version, list(edition.sections.all()))
        edition.__dict__["_nl_sections"] = cached
        edition.__dict__.pop("_nl_pick_products", None)
        edition.__dict__.pop("_nl_static", None)
    return cached[1]


def _top_n(data: dict) -> int:
    try:
        top_n = int(data.get("top_n") or DEFAULT_TOP_N)
    except (TypeError, ValueError):
        top_n = DEFAULT_TOP_N
    return max(1, min(top_n, MAX_TOP_N))


def _latest_holdings(client_ids: list[int]) -> dict[int, list]:
    """Each client's holdings on their own latest as-of date, largest first: ONE query for
    any number of clients (clients.selectors.holdings_for_client, set-based)."""
    if not client_ids:
        return {}
    latest = (Holding.objects.filter(client_id=OuterRef("client_id")).order_by("-as_of")
              .values("as_of")[:1])
    rows = (Holding.objects.filter(client_id__in=client_ids, as_of=Subquery(latest))
            .select_related("product").order_by("client_id", "-market_value", "id"))
    out: dict[int, list] = {cid: [] for cid in client_ids}
    for holding in rows:
        out[holding.client_id].append(holding)
    return out


def _positions(holdings: list, data: dict) -> tuple[list[dict], str | None]:
    top_n = _top_n(data)
    total = sum((h.market_value for h in holdings), Decimal(0))
    notes_by_product = data.get("notes_by_product") or {}
    notes_by_type = data.get("notes_by_type") or {}
    positions, as_of = [], None
    for holding in holdings[:top_n]:
        product = holding.product
        as_of = holding.as_of.isoformat()
        weight = (holding.market_value / total * 100) if total else Decimal(0)
        note = notes_by_product.get(product.product_code)
        if note is None:
            note = notes_by_type.get(product.product_type, "")
        positions.append({
            "product_code": product.product_code,
            "name": product.name,
            "product_type": product.product_type,
            "product_type_label": _type_label(product.product_type),
            "market_value": _money(holding.market_value),
            "weight": round(float(weight), 2),
            "note": note or "",
        })
    return positions, as_of


def delivery_contexts(*, edition, clients) -> dict[int, dict]:
    """delivery_context for many clients of one edition, keyed by client id, in a fixed number
    of queries (the holdings of every client at once; the RMs come with the clients, so load
    them with select_related("rm"))."""
    clients = list(clients)
    sections = _sections(edition)
    holdings = (_latest_holdings([c.id for c in clients])
                if any(s.kind == SectionKind.HOLDINGS for s in sections) else {})
    with translation.override(email_language()):  # labels in the email's language, whoever asks
        return {client.id: _context_for(edition, client, sections, holdings.get(client.id, []))
                for client in clients}


def delivery_context(*, edition, client) -> dict:
    """The personal data one client's copy of `edition` is rendered from (JSON-serialisable).

    Product picks pass clients.suitability.suitable_products; the ones held back are kept
    under "skipped_picks" with the reason, for the record only -- never shown to the client.
    """
    return delivery_contexts(edition=edition, clients=[client])[client.id]


def _context_for(edition, client, sections, holdings) -> dict:
    publication = edition.publication
    rm = client.rm if client.rm_id else None
    context = {
        "client": {"client_no": client.client_no, "name": client.name,
                   "salutation": _salutation(client),
                   "risk_level": client.risk_level or "",
                   "investor_type": client.investor_type},
        "sender_mode": publication.sender_mode,
        "rm": _rm_signature(rm),
        "positions": [], "holdings_as_of": None,
        "picks": [], "skipped_picks": [],
        "rm_note": "",
    }
    for section in sections:
        data = section.data or {}
        if section.kind == SectionKind.HOLDINGS:
            context["positions"], context["holdings_as_of"] = _positions(holdings, data)
        elif section.kind == SectionKind.PICKS:
            codes = [str(c) for c in data.get("product_codes") or []]
            products = _pick_products(edition, codes)
            notes = data.get("notes") or {}
            candidates = []
            for code in codes:
                product = products.get(code)
                if product is None:
                    context["skipped_picks"].append(
                        {"product_code": code, "risk_level": "", "reason": NOT_FOUND})
                elif not product.is_active:
                    context["skipped_picks"].append(
                        {"product_code": code, "risk_level": product.risk_level,
                         "reason": NOT_ON_SALE})
                else:
                    candidates.append(product)
            allowed, skipped = suitable_products(client=client, products=candidates)
            context["picks"] += [
                {"product_code": p.product_code, "name": p.name,
                 "product_type": p.product_type,
                 "product_type_label": _type_label(p.product_type),
                 "risk_level": p.risk_level, "note": notes.get(p.product_code, "")}
                for p in allowed]
            context["skipped_picks"] += [
                {"product_code": p.product_code, "risk_level": p.risk_level, "reason": reason}
                for p, reason in skipped]
        elif section.kind == SectionKind.RM_NOTE:
            by_rm = data.get("by_rm") or {}
            note = by_rm.get(rm.get_username()) if rm is not None else None
            context["rm_note"] = note or data.get("fallback") or section.body or ""
    return context


# --- rendering --------------------------------------------------------------------------

def _wrap_links(html: str, delivery) -> str:
    """Click-wrap http(s) links in sanitised HTML (only when tracking is on)."""
    if delivery is None or not delivery.edition.publication.tracking_enabled:
        return html

    def wrap(match):
        target = unescape(match.group(1))
        return f'href="{escape(links.click_url(delivery, target))}"'

    return _HREF.sub(wrap, html)


HTML_TEMPLATE = "newsletters/email/edition.html"
TEXT_TEMPLATE = "newsletters/email/edition.txt"

# --- CSS inlined once: the product's template source, and each editor fragment in its place ---
#
# premailer (cssutils + lxml) costs ~20 ms per 20 KB message. The stylesheet and the markup
# around every value are the product's own template, identical for every client, so the CSS is
# inlined ONCE per process into the template *source*: every template tag ({% %}, {{ }}, {# #})
# is masked by an inert token, premailer styles the document, the tokens are put back and the
# result is compiled as an ordinary Django template (autoescaping on). Per client only that
# pre-styled template is rendered. Editor HTML (sanitised Markdown) is data: each distinct
# fragment is inlined once, inside the chain of ancestors its variable has in the template (so
# descendant selectors such as ".positions td" apply exactly as on a whole message), memoised.

_TEMPLATE_TAG = re.compile(r"\{%.*?%\}|\{\{.*?\}\}|\{#.*?#\}", re.S)
_MASK = "nlTMPL{:05d}x"
_MASK_RE = re.compile(r"nlTMPL(\d{5})x")
_FRAGMENT_START, _FRAGMENT_END = "nlFRAGMENTstart", "nlFRAGMENTend"
_STYLE_BLOCK = re.compile(r"<style[^>]*>(.*?)</style>", re.S | re.I)


@dataclass(frozen=True)
class _InlinedTemplate:
    template: object  # django.template.backends.django.Template
    css: str
    slots: dict  # "{{ var }}" of an *_html variable -> ((tag, class), ...) from <body> down
    skeleton: SkeletonTemplate  # renders `template` per client by joining pieces


def _premailer(html: str) -> str:
    from premailer import Premailer

    return Premailer(html, keep_style_tags=True, remove_classes=False, strip_important=False,
                     disable_validation=True, allow_network=False,
                     allow_loading_external_files=False,
                     cssutils_logging_level=logging.CRITICAL).transform()


def _slot_chains(document: str, tokens: list[str]) -> dict:
    """Where each HTML-valued variable ({{ s.html }}, {{ p.note_html }}, ...) sits: the tags
    and classes of its ancestors, outermost first."""
    import lxml.html

    root = lxml.html.document_fromstring(document)
    slots: dict = {}

    def record(text, parent):
        for index in _MASK_RE.findall(text or ""):
            token = tokens[int(index)]
            if not token.startswith("{{"):
                continue
            var = token[2:-2].split("|")[0].strip()
            if not var.endswith("html"):
                continue
            chain = tuple((el.tag, el.get("class") or "")
                          for el in [*reversed(list(parent.iterancestors())), parent]
                          if el.tag not in ("html", "body"))
            slots.setdefault(var, chain)

    for element in root.iter():
        if not isinstance(element.tag, str):
            continue
        record(element.text, element)
        if element.getparent() is not None:
            record(element.tail, element.getparent())
    return slots


@functools.lru_cache(maxsize=8)
def _inlined_template(source: str) -> _InlinedTemplate:
    tokens: list[str] = []

    def mask(match):
        tokens.append(match.group(0))
        return _MASK.format(len(tokens) - 1)

    masked = _TEMPLATE_TAG.sub(mask, source)
    lowered = masked.lower()
    at = lowered.find("<!doctype")
    at = lowered.find("<html") if at < 0 else at
    prefix, document = masked[:at], masked[at:]
    inlined = prefix + _premailer(document)
    if [int(i) for i in _MASK_RE.findall(inlined)] != list(range(len(tokens))):
        # premailer moved, dropped or duplicated template code: never send from such a template
        raise RuntimeError(f"{HTML_TEMPLATE}: CSS inlining did not keep the template tags "
                           "in place; keep template tags out of places HTML parsers move")
    restored = _MASK_RE.sub(lambda m: tokens[int(m.group(1))], inlined)
    css = "\n".join(_STYLE_BLOCK.findall(source))
    template = engines["django"].from_string(restored)
    return _InlinedTemplate(template=template, css=css, slots=_slot_chains(document, tokens),
                            skeleton=SkeletonTemplate(template))


@functools.lru_cache(maxsize=8)
def _skeleton_from_source(source: str) -> SkeletonTemplate:
    return SkeletonTemplate(engines["django"].from_string(source))


_compiled: dict = {}  # per process, unless DEBUG (where a template file may change under us)


def _text_skeleton() -> SkeletonTemplate:
    """The plain-text template as a skeleton (per template source)."""
    found = _compiled.get(TEXT_TEMPLATE)
    if found is None:
        found = _skeleton_from_source(get_template(TEXT_TEMPLATE).template.source)
        if not settings.DEBUG:
            _compiled[TEXT_TEMPLATE] = found
    return found


def _html_template() -> _InlinedTemplate:
    found = _compiled.get(HTML_TEMPLATE)
    if found is None:
        found = _inlined_template(get_template(HTML_TEMPLATE).template.source)
        if not settings.DEBUG:
            _compiled[HTML_TEMPLATE] = found
    return found


@functools.lru_cache(maxsize=4096)
def _inline_fragment(css: str, chain: tuple, html: str) -> str:
    opening = "".join(f'<{tag} class="{escape(cls)}">' if cls else f"<{tag}>"
                      for tag, cls in chain)
    closing = "".join(f"</{tag}>" for tag, _cls in reversed(chain))
    document = (f'<html><head><style type="text/css">{css}</style></head><body>{opening}'
                f"{_FRAGMENT_START}{html}{_FRAGMENT_END}{closing}</body></html>")
    out = _premailer(document)
    head, found, rest = out.partition(_FRAGMENT_START)
    body, found_end, _tail = rest.partition(_FRAGMENT_END)
    if not (found and found_end):
        raise RuntimeError("CSS inlining lost an editor fragment")
    return body


def inlined_markdown(text: str, slot: str) -> str:
    """Sanitised HTML of the Markdown `text`, CSS inlined for the template variable `slot`
    (e.g. "s.html", "p.note_html"); memoised per distinct text."""
    html = markdown_to_html(text)
    if not html:
        return html
    template = _html_template()
    return mark_safe(_inline_fragment(template.css, template.slots.get(slot, ()),  # noqa: S308
                                      str(html)))


def _md(text: str, delivery, slot: str) -> str:
    return mark_safe(_wrap_links(inlined_markdown(text, slot), delivery))  # noqa: S308


def _weight(value) -> str:
    """{{ weight|floatformat:1 }}, memoised per language (weights repeat across clients)."""
    return _weight_in(translation.get_language(), value)


@functools.lru_cache(maxsize=4096)
def _weight_in(_language: str | None, value) -> str:
    return str(floatformat(value, 1))


def _safe_url(url: str) -> str:
    return url if links.is_trackable_target(url) else ""


# Sections whose output is the same for every client (when links are not per delivery).
_EDITION_CONSTANT_KINDS = (SectionKind.EDITORIAL, SectionKind.RESEARCH)


def _links_are_constant(edition, delivery) -> bool:
    return delivery is None or not edition.publication.tracking_enabled


def _section_block(section, delivery) -> dict:
    """The template data of an editorial or research section (no personal data)."""
    data = section.data or {}
    block = {"kind": section.kind, "title": section.title, "body_md": section.body,
             "html": _md(section.body, delivery, "s.html")}
    if section.kind == SectionKind.RESEARCH:
        url = _safe_url(str(data.get("url") or ""))
        block.update(report_title=str(data.get("title") or ""),
                     summary_md=str(data.get("summary") or ""),
                     summary_html=_md(str(data.get("summary") or ""), delivery,
                                      "s.summary_html"),
                     url=url,
                     href=(links.click_url(delivery, url) if delivery and url else url))
    return block


def _section_blocks(edition, context: dict, delivery) -> list[dict]:
    blocks = []
    for section in _sections(edition):
        data = section.data or {}
        if section.kind in _EDITION_CONSTANT_KINDS and _links_are_constant(edition, delivery):
            # the same for every client: rendered once per edition (render_edition)
            blocks.append({"kind": section.kind, "static_key": (section.pk, section.position)})
            continue
        if section.kind not in (SectionKind.HOLDINGS, SectionKind.PICKS, SectionKind.RM_NOTE):
            blocks.append(_section_block(section, delivery))
            continue
        block = {"kind": section.kind, "title": section.title, "body_md": section.body,
                 "html": _md(section.body, delivery, "s.html")}
        if section.kind == SectionKind.HOLDINGS:
            positions = context.get("positions") or []
            if not positions:
                continue
            block.update(intro_md=str(data.get("intro") or ""),
                         intro_html=_md(str(data.get("intro") or ""), delivery,
                                        "s.intro_html"),
                         as_of=context.get("holdings_as_of"),
                         positions=[{**p, "note_html": _md(p.get("note", ""), delivery,
                                                           "p.note_html"),
                                     "weight_display": _weight(p.get("weight"))}
                                    for p in positions])
        elif section.kind == SectionKind.PICKS:
            picks = context.get("picks") or []
            if not picks:
                continue
            block["picks"] = [{**p, "note_html": _md(p.get("note", ""), delivery,
                                                     "p.note_html")}
                              for p in picks]
        elif section.kind == SectionKind.RM_NOTE:
            note = context.get("rm_note") or ""
            if not note.strip():
                continue
            block.update(note_md=note, note_html=_md(note, delivery, "s.note_html"),
                         rm=context.get("rm"))
        blocks.append(block)
    return blocks


_SECTION_MARK = f"nlSECTION{secrets.token_hex(8)}x"  # per process: no editor can type it


def _fill_constant_sections(edition, template_context: dict) -> None:
    """Give each edition-constant section its HTML and text, rendered once per edition
    instance and content version with the very templates a whole message uses: the section
    is rendered between two marks and cut out (the same bytes a full render produces)."""
    cache = edition.__dict__.setdefault("_nl_static", {})
    by_key = {s.pk: s for s in _sections(edition)}
    for index, block in enumerate(template_context["sections"]):
        key = block.get("static_key")
        if key is None:
            continue
        if key not in cache:
            full = {**_section_block(by_key[key[0]], None), "mark": _SECTION_MARK}
            one = {**template_context, "sections": [full]}
            html = _html_template().template.render(one)
            text = render_to_string(TEXT_TEMPLATE, one)
            cache[key] = (mark_safe(html.split(_SECTION_MARK)[1]),  # noqa: S308
                          text.split(_SECTION_MARK)[1])
        html, text = cache[key]
        template_context["sections"][index] = {"kind": block["kind"], "static": True,
                                               "static_html": html, "static_text": text}


def _links_for(delivery) -> dict:
    if delivery is None:
        return {"unsubscribe": links.PREVIEW_URL, "feedback": links.PREVIEW_URL,
                "ratings": [(n, links.PREVIEW_URL) for n in range(1, 6)], "pixel": None}
    feedback = links.feedback_url(delivery)  # signed once; each rating adds its query
    return {"unsubscribe": links.unsubscribe_url(delivery),
            "feedback": feedback,
            "ratings": [(n, links.with_rating(feedback, n)) for n in range(1, 6)],
            "pixel": links.open_pixel_url(delivery)}


def _inline_css(html: str) -> str:
    """premailer on a whole document (kept for callers outside dispatch; the email itself uses
    the pre-inlined template)."""
    return _premailer(html)


def list_id(publication) -> str:
    host = urlsplit(settings.SITE_URL).hostname or "localhost"
    return f"<{publication.slug}.{host}>"


def _headers(edition, delivery) -> dict:
    headers = {"List-Id": list_id(edition.publication)}
    if delivery is not None:
        headers["List-Unsubscribe"] = f"<{links.unsubscribe_post_url(delivery)}>"
        headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    return headers


def render_edition(*, edition, context: dict, delivery=None) -> Rendered:
    """Subject, HTML (CSS inlined), plain text and list headers for one client's copy."""
    with translation.override(email_language()):
        template_context = {
            "edition": {"subject": edition.subject, "preheader": edition.preheader,
                        "number": edition.number},
            "publication": {"name": edition.publication.name,
                            "from_name": edition.publication.from_name},
            "personal": context,
            "sections": _section_blocks(edition, context, delivery),
            "links": _links_for(delivery),
            "is_preview": delivery is None,
            "SectionKind": {k.name: k.value for k in SectionKind},
            "risk_labels": dict(ClientRiskLevel.choices),
        }
        _fill_constant_sections(edition, template_context)
        html = _html_template().skeleton.render(template_context)
        text = _text_skeleton().render(template_context)
    return Rendered(subject=edition.subject, html=html, text=text.strip() + "\n",
                    headers=_headers(edition, delivery))


def render_preview(*, edition, client) -> Rendered:
    """The edition as `client` would get it; links go to a harmless placeholder."""
    return render_edition(edition=edition, context=delivery_context(edition=edition,
                                                                     client=client))


def message_id_header(value: str) -> str:
    value = (value or "").strip()
    return value if value.startswith("<") else f"<{value}>"


def sender_address(publication, rm=None) -> str:
    """The firm's address; in RM mode with the RM's name on it (never the RM's own mailbox,
    which the firm's mail domain could not sign for)."""
    name = publication.from_name
    if publication.sender_mode == SenderMode.RM and rm is not None:
        name = str(rm)
    user, _at, domain = publication.from_email.rpartition("@")
    return str(Address(display_name=name, username=user, domain=domain))


def build_message(*, delivery, rendered: Rendered, to: str | None = None,
                  connection=None) -> EmailMultiAlternatives:
    """The email for `delivery`: From (firm or RM name), Reply-To, the stable Message-ID,
    List-Unsubscribe (+ one-click Post, RFC 8058), List-Id; HTML with a text alternative."""
    edition = delivery.edition
    publication = edition.publication
    client = delivery.client
    headers = dict(rendered.headers)
    headers["Message-ID"] = message_id_header(delivery.message_id)
    message = EmailMultiAlternatives(
        subject=rendered.subject,
        body=rendered.text,
        from_email=sender_address(publication, client.rm if client.rm_id else None),
        to=[to or delivery.to_email or client.email],
        reply_to=[publication.reply_to] if publication.reply_to else None,
        headers=headers,
        connection=connection,
    )
    message.attach_alternative(rendered.html, "text/html")
    return message


# --- the wire format, cheaply --------------------------------------------------------------
#
# EmailMultiAlternatives.message() + as_bytes() costs ~3.5 ms per 20 KB message (the email
# package's generator). Dispatch over SMTP builds the same message directly: the headers that
# are the same for every client of an edition (Subject, From per sender, Reply-To, List-Id)
# are encoded once with Django's own header functions (forbid_multi_line_headers /
# sanitize_address: no header injection, RFC 2047 for non-ASCII); the two text parts are utf-8,
# 8bit when every line fits RFC 5322's 998 octets, else quoted-printable -- as Django does.
# tests/newsletters/test_content.py checks it parses to the same message as build_message.

_MAX_LINE = 998
_ENCODING = "utf-8"


def _header(name: str, value: str) -> bytes:
    name, value = forbid_multi_line_headers(name, str(value), _ENCODING)
    value = str(value).replace("\r\n", "\n").replace("\n", "\r\n")
    return f"{name}: {value}\r\n".encode("ascii")


def _mime_text(content: str, subtype: str) -> bytes:
    data = content.replace("\r\n", "\n").encode(_ENCODING)
    if max(map(len, data.split(b"\n"))) <= _MAX_LINE:
        body, encoding = data.replace(b"\n", b"\r\n"), b"8bit"
    else:
        body = binascii.b2a_qp(data, istext=True).replace(b"\n", b"\r\n")
        encoding = b"quoted-printable"
    return (b"Content-Type: text/" + subtype + b'; charset="utf-8"\r\n'
            b"MIME-Version: 1.0\r\nContent-Transfer-Encoding: " + encoding + b"\r\n\r\n"
            + body)


def _constant_headers(edition, rendered: Rendered, rm) -> tuple[str, bytes]:
    """(envelope sender, encoded constant header lines) per edition instance and sender."""
    publication = edition.publication
    rm_key = rm.pk if (rm is not None and publication.sender_mode == SenderMode.RM) else None
    cache = edition.__dict__.setdefault("_nl_wire_headers", {})
    key = (edition.content_version, rendered.subject, rm_key)
    if key not in cache:
        from_email = sender_address(publication, rm)
        lines = [_header("Subject", rendered.subject), _header("From", from_email)]
        if publication.reply_to:
            lines.append(_header("Reply-To", publication.reply_to))
        cache[key] = (sanitize_address(from_email, _ENCODING), b"".join(lines))
    return cache[key]


def message_bytes(*, delivery, rendered: Rendered, to: str | None = None
                  ) -> tuple[str, list[str], bytes]:
    """(envelope sender, recipients, message bytes with CRLF) for `delivery`: the same headers
    and parts as build_message(...).message(), built without the email package's generator."""
    edition = delivery.edition
    client = delivery.client
    rm = client.rm if client.rm_id else None
    envelope_from, constant = _constant_headers(edition, rendered, rm)
    recipient = to or delivery.to_email or client.email
    boundary = f"===============nl{random.getrandbits(96):024x}=="  # as email.generator does
    headers = [
        b'Content-Type: multipart/alternative;\r\n boundary="' + boundary.encode() + b'"\r\n',
        b"MIME-Version: 1.0\r\n",
        constant,
        _header("To", recipient),
        _header("Date", formatdate(localtime=settings.EMAIL_USE_LOCALTIME)),
        _header("Message-ID", message_id_header(delivery.message_id)),
    ]
    headers += [_header(name, value) for name, value in rendered.headers.items()
                if name.lower() not in ("from", "message-id")]
    separator = b"--" + boundary.encode()
    raw = b"".join([
        *headers, b"\r\n",
        separator, b"\r\n", _mime_text(rendered.text, b"plain"), b"\r\n",
        separator, b"\r\n", _mime_text(rendered.html, b"html"), b"\r\n",
        separator, b"--\r\n",
    ])
    return envelope_from, [sanitize_address(recipient, _ENCODING)], raw
