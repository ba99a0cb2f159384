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

import logging
import re
from dataclasses import dataclass, field
from decimal import Decimal
from email.headerregistry import Address
from html import unescape
from urllib.parse import urlsplit

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db.models import Sum
from django.template.loader import render_to_string
from django.utils import translation
from django.utils.html import escape
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _

from clients.models import ClientRiskLevel, Product, ProductType
from clients.selectors import holdings_for_client
from clients.suitability import suitable_products

from . import links
from .markdown import markdown_to_html
from .models import SectionKind, SenderMode

logger = logging.getLogger(__name__)

# Bump when templates/newsletters/email/* change in a way a reader would see; archived.
TEMPLATE_VERSION = "email-2026.1"
DEFAULT_TOP_N = 5
MAX_TOP_N = 20
NOT_FOUND = "not_found"
NOT_ON_SALE = "not_on_sale"

_HREF = re.compile(r'href="([^"]*)"')


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
    return list(edition.sections.all())


def _positions(client, data: dict) -> tuple[list[dict], str | None]:
    try:
        top_n = int(data.get("top_n") or DEFAULT_TOP_N)
    except (TypeError, ValueError):
        top_n = DEFAULT_TOP_N
    top_n = max(1, min(top_n, MAX_TOP_N))
    holdings = holdings_for_client(client=client)
    total = holdings.aggregate(total=Sum("market_value"))["total"] or Decimal(0)
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


def delivery_context(*, edition, client) -> dict:
    """The personal data one client's copy of `edition` is rendered from (JSON-serialisable).

    Product picks pass clients.suitability.suitable_products; the ones held back are kept
    under "skipped_picks" with the reason, for the record only -- never shown to the client.
    """
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
    for section in _sections(edition):
        data = section.data or {}
        if section.kind == SectionKind.HOLDINGS:
            context["positions"], context["holdings_as_of"] = _positions(client, data)
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


def _md(text: str, delivery) -> str:
    return mark_safe(_wrap_links(markdown_to_html(text), delivery))  # noqa: S308


def _safe_url(url: str) -> str:
    return url if links.is_trackable_target(url) else ""


def _section_blocks(edition, context: dict, delivery) -> list[dict]:
    blocks = []
    for section in _sections(edition):
        data = section.data or {}
        block = {"kind": section.kind, "title": section.title, "body_md": section.body,
                 "html": _md(section.body, delivery)}
        if section.kind == SectionKind.RESEARCH:
            url = _safe_url(str(data.get("url") or ""))
            block.update(report_title=str(data.get("title") or ""),
                         summary_md=str(data.get("summary") or ""),
                         summary_html=_md(str(data.get("summary") or ""), delivery),
                         url=url,
                         href=(links.click_url(delivery, url) if delivery and url else url))
        elif section.kind == SectionKind.HOLDINGS:
            positions = context.get("positions") or []
            if not positions:
                continue
            block.update(intro_md=str(data.get("intro") or ""),
                         intro_html=_md(str(data.get("intro") or ""), delivery),
                         as_of=context.get("holdings_as_of"),
                         positions=[{**p, "note_html": _md(p.get("note", ""), delivery)}
                                    for p in positions])
        elif section.kind == SectionKind.PICKS:
            picks = context.get("picks") or []
            if not picks:
                continue
            block["picks"] = [{**p, "note_html": _md(p.get("note", ""), delivery)}
                              for p in picks]
        elif section.kind == SectionKind.RM_NOTE:
            note = context.get("rm_note") or ""
            if not note.strip():
                continue
            block.update(note_md=note, note_html=_md(note, delivery), rm=context.get("rm"))
        blocks.append(block)
    return blocks


def _links_for(delivery) -> dict:
    if delivery is None:
        return {"unsubscribe": links.PREVIEW_URL, "feedback": links.PREVIEW_URL,
                "ratings": [(n, links.PREVIEW_URL) for n in range(1, 6)], "pixel": None}
    return {"unsubscribe": links.unsubscribe_url(delivery),
            "feedback": links.feedback_url(delivery),
            "ratings": [(n, links.feedback_url(delivery, rating=n)) for n in range(1, 6)],
            "pixel": links.open_pixel_url(delivery)}


def _inline_css(html: str) -> str:
    from premailer import Premailer

    return Premailer(html, keep_style_tags=True, remove_classes=False, strip_important=False,
                     disable_validation=True, allow_network=False,
                     allow_loading_external_files=False,
                     cssutils_logging_level=logging.CRITICAL).transform()


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
    with translation.override(settings.LANGUAGE_CODE):
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
        html = render_to_string("newsletters/email/edition.html", template_context)
        text = render_to_string("newsletters/email/edition.txt", template_context)
    return Rendered(subject=edition.subject, html=_inline_css(html), text=text.strip() + "\n",
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
