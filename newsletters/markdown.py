"""Editors write Markdown; this turns it into HTML that is safe to put in an email.

python-markdown renders, then bleach keeps only an allow-list of tags and attributes and only
http, https and mailto links, then each kept tag gets the email's inline style (EMAIL_STYLES:
email clients ignore stylesheets, so styles are written on the elements). Raw HTML an
editor types (script, style, iframe, event handlers, javascript: links) never survives:
disallowed tags are escaped to visible text, so nothing is silently lost and nothing runs.
The output is data for the product's own templates; it is never itself parsed as a template.

The conversion is a pure function of the text, so it is memoised per process (content-
addressed: an edited section is different text and is converted afresh). Dispatch renders the
same editorial, desk notes and picks notes for every client of an edition; each distinct text
is converted once instead of once per message.
"""

from __future__ import annotations

import functools
import re

import bleach
import markdown as md
from django.utils.safestring import SafeString, mark_safe

ALLOWED_TAGS = frozenset({
    "a", "abbr", "b", "blockquote", "br", "code", "del", "em", "h1", "h2", "h3", "h4", "hr", "i",
    "li", "ol", "p", "pre", "strong", "sub", "sup", "table", "tbody", "td", "th", "thead",
    "tr", "ul",
})
ALLOWED_ATTRIBUTES = {
    "a": ["href", "title"],
    "abbr": ["title"],
    "td": ["align"],
    "th": ["align"],
}
ALLOWED_PROTOCOLS = frozenset({"http", "https", "mailto"})
_EXTENSIONS = ["markdown.extensions.tables", "markdown.extensions.sane_lists"]

# The look of editor content inside the email (templates/newsletters/email/edition.html has the
# same colours). Applied to bleach's output, where every "<tag" is a real allowed tag (text "<"
# is escaped) and no style attribute survived the allow-list.
EMAIL_STYLES = {
    "a": "color:#0b5cad",
    "blockquote": "margin:8px 0;padding:4px 12px;border-left:3px solid #c7d7ea;color:#374151",
    "h1": "font-size:18px;color:#0b3d6e;margin:12px 0 6px 0",
    "h2": "font-size:16px;color:#0b3d6e;margin:12px 0 6px 0",
    "h3": "font-size:15px;color:#0b3d6e;margin:10px 0 4px 0",
    "h4": "font-size:15px;margin:10px 0 4px 0",
    "table": "border-collapse:collapse;width:100%;font-size:14px;margin:8px 0",
    "th": "text-align:left;border-bottom:1px solid #e5e7eb;padding:4px 6px;color:#6b7280",
    "td": "border-bottom:1px solid #f3f4f6;padding:4px 6px",
}
_STYLED_TAG = re.compile(r"<(" + "|".join(EMAIL_STYLES) + r")(?=[\s>])")


def _styled(html: str) -> str:
    return _STYLED_TAG.sub(lambda m: f'<{m.group(1)} style="{EMAIL_STYLES[m.group(1)]}"', html)
CACHE_SIZE = 4096


def _cleaner() -> bleach.Cleaner:
    return bleach.Cleaner(
        tags=ALLOWED_TAGS, attributes=ALLOWED_ATTRIBUTES, protocols=ALLOWED_PROTOCOLS,
        strip=False, strip_comments=True,
    )


@functools.lru_cache(maxsize=CACHE_SIZE)
def _convert(text: str) -> str:
    html = md.markdown(text, extensions=_EXTENSIONS, output_format="html")
    return _styled(_cleaner().clean(html))


def markdown_to_html(text: str) -> SafeString:
    """Sanitised, email-styled HTML for the Markdown `text` (empty string for empty input)."""
    if not text or not text.strip():
        return mark_safe("")
    return mark_safe(_convert(str(text)))  # noqa: S308 - bleach allow-list output


def markdown_cache_clear() -> None:
    _convert.cache_clear()


def markdown_to_text(text: str) -> str:
    """The Markdown source is already readable plain text; only normalise line endings."""
    return (text or "").replace("\r\n", "\n").strip()
