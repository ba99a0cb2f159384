"""Personalise and render an edition for one client, and build the email message.

One path serves the preview, the test send and dispatch:

    content = EditionContent.of(edition)               # sections and picked products, once
    context = delivery_context(edition=..., client=...)  # the client's personal data (JSON)
    rendered = render_edition(edition=..., context=context, delivery=..., content=content)
    message = build_message(delivery=..., rendered=rendered)  # Django's EmailMultiAlternatives

The two templates in templates/newsletters/email/ are Jinja2, product-owned, compiled once per
process by a sandboxed environment with autoescaping (HTML) and StrictUndefined (a misspelt
variable is an error, not an empty place in a client's email). Their styles are written inline
in the template itself, so nothing inlines CSS per message. Editors write Markdown, never
template code: their text becomes sanitised, styled HTML (newsletters.markdown) that the
templates print as *data*, so `{{ settings.SECRET_KEY }}` written in a section shows up as
exactly those characters.

`delivery_context` is the personal data snapshot stored in Delivery.context (JSON), so a
message can be shown again exactly as sent.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from email.headerregistry import Address
from html import unescape
from urllib.parse import urlsplit

import jinja2
from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db.models import OuterRef, Subquery
from django.utils import translation
from django.utils.html import escape
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext as _
from jinja2.sandbox import ImmutableSandboxedEnvironment
from markupsafe import Markup

from clients.models import Holding, Product, ProductType
from clients.suitability import suitable_products
from outreach.email.smtp import wire_bytes

from . import links
from .markdown import markdown_to_html
from .models import SectionKind, SenderMode
from .sections import TOP_N_DEFAULT as DEFAULT_TOP_N
from .sections import TOP_N_MAX as MAX_TOP_N

# Bump when templates/newsletters/email/* change in a way a reader would see; archived.
TEMPLATE_VERSION = "email-2026.3"
NOT_FOUND = "not_found"
NOT_ON_SALE = "not_on_sale"
HTML_TEMPLATE = "edition.html"
TEXT_TEMPLATE = "edition.txt"
TEMPLATE_DIR = settings.BASE_DIR / "templates" / "newsletters" / "email"

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


@dataclass(frozen=True)
class EditionContent:
    """What every client's copy of one edition shares, read once: the sections in order and
    the products the picks sections name (None for a code that does not exist). Dispatch reads
    it once per run (the content cannot change while sending: any change withdraws approval);
    a preview reads it afresh."""

    sections: tuple
    products: dict

    @classmethod
    def of(cls, edition) -> EditionContent:
        sections = tuple(edition.sections.all())
        codes = {str(code) for s in sections if s.kind == SectionKind.PICKS
                 for code in (s.data or {}).get("product_codes") or []}
        found = ({p.product_code: p for p in Product.objects.filter(product_code__in=codes)}
                 if codes else {})
        return cls(sections=sections, products={code: found.get(code) for code in codes})


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
    try:
        return str(ProductType(product_type).label)
    except ValueError:
        return product_type


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


def delivery_contexts(*, edition, clients, content: EditionContent | None = None
                      ) -> dict[int, dict]:
    """delivery_context for many clients of one edition, keyed by client id, in a fixed number
    of queries (the holdings of every client at once; the RMs come with the clients, so load
    them with select_related("rm"))."""
    clients = list(clients)
    content = content or EditionContent.of(edition)
    holdings = (_latest_holdings([c.id for c in clients])
                if any(s.kind == SectionKind.HOLDINGS for s in content.sections) else {})
    with translation.override(email_language()):  # labels in the email's language, whoever asks
        return {client.id: _context_for(edition, client, content, holdings.get(client.id, []))
                for client in clients}


def delivery_context(*, edition, client, content: EditionContent | None = None) -> dict:
    """The personal data one client's copy of `edition` is rendered from (JSON-serialisable).

    Product picks pass clients.suitability.suitable_products; the ones held back are kept
    under "skipped_picks" with the reason, for the record only -- never shown to the client.
    """
    return delivery_contexts(edition=edition, clients=[client], content=content)[client.id]


def _context_for(edition, client, content: EditionContent, holdings) -> dict:
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
    for section in content.sections:
        data = section.data or {}
        if section.kind == SectionKind.HOLDINGS:
            context["positions"], context["holdings_as_of"] = _positions(holdings, data)
        elif section.kind == SectionKind.PICKS:
            codes = [str(c) for c in data.get("product_codes") or []]
            notes = data.get("notes") or {}
            candidates = []
            for code in codes:
                product = content.products.get(code)
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

@functools.cache
def _environment(auto_reload: bool) -> jinja2.Environment:
    """The email templates' environment: one per process, so each template is compiled once
    (with auto_reload, under DEBUG, recompiled when its file changes)."""
    env = ImmutableSandboxedEnvironment(
        loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html",),
                                            default_for_string=True, default=False),
        undefined=jinja2.StrictUndefined,
        auto_reload=auto_reload,
        keep_trailing_newline=True,
        extensions=["jinja2.ext.i18n"],
    )
    # Django's catalogue, in whatever language is active (render_edition sets the email's)
    env.install_gettext_callables(gettext=gettext, ngettext=ngettext, newstyle=False)
    return env


def email_template(name: str) -> jinja2.Template:
    return _environment(settings.DEBUG).get_template(name)


def _wrap_links(html: str, delivery) -> str:
    """Click-wrap http(s) links in sanitised HTML (only when tracking is on)."""
    if delivery is None or not delivery.edition.publication.tracking_enabled:
        return html

    def wrap(match):
        target = unescape(match.group(1))
        return f'href="{escape(links.click_url(delivery, target))}"'

    return _HREF.sub(wrap, html)


def _md(text: str, delivery) -> Markup:
    """An editor's Markdown as sanitised, styled HTML; links click-wrapped per delivery."""
    return Markup(_wrap_links(str(markdown_to_html(text)), delivery))  # noqa: S704


def _weight(value) -> str:
    return str(Decimal(str(value or 0)).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))


def _safe_url(url: str) -> str:
    return url if links.is_trackable_target(url) else ""


def _block(section, delivery, **values) -> dict:
    """One section as template data: every key the templates read, so StrictUndefined only
    ever catches a template mistake."""
    block = {"kind": section.kind, "title": section.title, "body_md": section.body,
             "html": _md(section.body, delivery), "report_title": "", "summary_md": "",
             "summary_html": "", "url": "", "href": "", "intro_md": "", "intro_html": "",
             "positions": [], "as_of": None, "picks": [], "note_md": "", "note_html": "",
             "rm": None}
    block.update(values)
    return block


def _section_blocks(content: EditionContent, context: dict, delivery) -> list[dict]:
    blocks = []
    for section in content.sections:
        data = section.data or {}
        if section.kind == SectionKind.RESEARCH:
            url = _safe_url(str(data.get("url") or ""))
            summary = str(data.get("summary") or "")
            blocks.append(_block(
                section, delivery, report_title=str(data.get("title") or ""),
                summary_md=summary, summary_html=_md(summary, delivery), url=url,
                href=links.click_url(delivery, url) if delivery and url else url))
        elif section.kind == SectionKind.HOLDINGS:
            positions = context.get("positions") or []
            if positions:
                intro = str(data.get("intro") or "")
                blocks.append(_block(
                    section, delivery, intro_md=intro, intro_html=_md(intro, delivery),
                    as_of=context.get("holdings_as_of"),
                    positions=[{**p, "note_html": _md(p.get("note", ""), delivery),
                                "weight_display": _weight(p.get("weight"))}
                               for p in positions]))
        elif section.kind == SectionKind.PICKS:
            picks = context.get("picks") or []
            if picks:
                blocks.append(_block(section, delivery, picks=[
                    {**p, "note_html": _md(p.get("note", ""), delivery)} for p in picks]))
        elif section.kind == SectionKind.RM_NOTE:
            note = context.get("rm_note") or ""
            if note.strip():
                blocks.append(_block(section, delivery, note_md=note,
                                     note_html=_md(note, delivery), rm=context.get("rm")))
        else:
            blocks.append(_block(section, delivery))
    return blocks


def _links_for(delivery) -> dict:
    if delivery is None:
        return {"unsubscribe": links.PREVIEW_URL, "feedback": links.PREVIEW_URL,
                "ratings": [(n, links.PREVIEW_URL) for n in range(1, 6)], "pixel": None}
    feedback = links.feedback_url(delivery)  # signed once; each rating adds its query
    return {"unsubscribe": links.unsubscribe_url(delivery),
            "feedback": feedback,
            "ratings": [(n, links.with_rating(feedback, n)) for n in range(1, 6)],
            "pixel": links.open_pixel_url(delivery)}


def list_id(publication) -> str:
    host = urlsplit(settings.SITE_URL).hostname or "localhost"
    return f"<{publication.slug}.{host}>"


def _headers(edition, delivery) -> dict:
    headers = {"List-Id": list_id(edition.publication)}
    if delivery is not None:
        headers["List-Unsubscribe"] = f"<{links.unsubscribe_post_url(delivery)}>"
        headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    return headers


def render_edition(*, edition, context: dict, delivery=None,
                   content: EditionContent | None = None) -> Rendered:
    """Subject, HTML, plain text and list headers for one client's copy. Without a delivery
    (a preview, a test) every link goes to a harmless placeholder."""
    content = content or EditionContent.of(edition)
    with translation.override(email_language()):
        data = {
            "language": email_language(),
            "edition": {"subject": edition.subject, "preheader": edition.preheader,
                        "number": edition.number},
            "publication": {"name": edition.publication.name},
            "personal": context,
            "sections": _section_blocks(content, context, delivery),
            "links": _links_for(delivery),
        }
        html = email_template(HTML_TEMPLATE).render(data)
        text = email_template(TEXT_TEMPLATE).render(data)
    return Rendered(subject=edition.subject, html=html, text=text.strip() + "\n",
                    headers=_headers(edition, delivery))


def render_preview(*, edition, client) -> Rendered:
    """The edition as `client` would get it; links go to a harmless placeholder."""
    return render_edition(edition=edition, context=delivery_context(edition=edition,
                                                                     client=client))


# --- the message ------------------------------------------------------------------------

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


def email_message(*, edition, client, rendered: Rendered, to: str, message_id: str = "",
                  subject_prefix: str = "") -> EmailMultiAlternatives:
    """The email of `rendered` for `client`: From (firm or RM name), Reply-To, the list headers
    of `rendered`, the Message-ID if given; HTML with a plain-text alternative."""
    publication = edition.publication
    headers = dict(rendered.headers)
    if message_id:
        headers["Message-ID"] = message_id_header(message_id)
    message = EmailMultiAlternatives(
        subject=subject_prefix + rendered.subject,
        body=rendered.text,
        from_email=sender_address(publication, client.rm if client.rm_id else None),
        to=[to],
        reply_to=[publication.reply_to] if publication.reply_to else None,
        headers=headers,
    )
    message.attach_alternative(rendered.html, "text/html")
    return message


def build_message(*, delivery, rendered: Rendered, to: str | None = None
                  ) -> EmailMultiAlternatives:
    """The email for `delivery`, with its stable Message-ID and List-Unsubscribe (+ one-click
    Post, RFC 8058) and List-Id."""
    client = delivery.client
    return email_message(edition=delivery.edition, client=client, rendered=rendered,
                         to=to or delivery.to_email or client.email,
                         message_id=delivery.message_id)


def message_bytes(*, delivery, rendered: Rendered, to: str | None = None
                  ) -> tuple[str, list[str], bytes]:
    """(envelope sender, recipients, bytes) of build_message(...), exactly as Django's SMTP
    backend puts them on the wire (EmailBackend._send), for a sender that sends the message
    in two halves (newsletters.dispatch.smtp)."""
    return wire_bytes(build_message(delivery=delivery, rendered=rendered, to=to))
