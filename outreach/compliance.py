"""Phrases regulators forbid in financial marketing: find them, list them, highlight them.
Newsletters and campaigns both check their content here before it goes to compliance.

The built-in phrases (seeded by newsletters migration 0002 with is_builtin=True) are also kept
here so a check works even before the table is seeded; ops add more as ForbiddenPhrase rows.
"""

from __future__ import annotations

import re

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from .models import ForbiddenPhrase

BUILTIN_PHRASES = ("保本", "保收益", "稳赚", "无风险", "零风险", "guaranteed return")


def phrase_list() -> list[str]:
    """Every forbidden phrase: the built-in ones plus those ops added."""
    phrases = {p.strip() for p in ForbiddenPhrase.objects.values_list("phrase", flat=True)}
    phrases.update(BUILTIN_PHRASES)
    return sorted((p for p in phrases if p), key=lambda p: (-len(p), p.casefold()))


def _pattern(phrases: list[str]) -> re.Pattern | None:
    if not phrases:
        return None
    # Longest first, so "保收益" wins over any shorter phrase it contains.
    ordered = sorted(phrases, key=len, reverse=True)
    return re.compile("|".join(re.escape(p) for p in ordered), re.IGNORECASE)


def forbidden_phrases_found(text: str, *, phrases: list[str] | None = None) -> list[dict]:
    """[{"phrase", "start", "end"}] for every (non-overlapping) match, case-insensitively.

    `phrase` is the forbidden phrase as listed (not as typed); start/end index `text`.
    """
    if not text:
        return []
    phrases = phrase_list() if phrases is None else phrases
    pattern = _pattern(phrases)
    if pattern is None:
        return []
    by_folded = {p.casefold(): p for p in phrases}
    found = []
    for m in pattern.finditer(text):
        found.append({"phrase": by_folded.get(m.group(0).casefold(), m.group(0)),
                      "start": m.start(), "end": m.end()})
    return found


def highlight(text: str, matches: list[dict]) -> SafeString:
    """`text` escaped, with every match wrapped in <mark>; safe to put in a page."""
    text = text or ""
    out, cursor = [], 0
    for m in sorted(matches, key=lambda m: m["start"]):
        start, end = max(m["start"], cursor), m["end"]
        if end <= start:
            continue
        out.append(escape(text[cursor:start]))
        out.append(f'<mark class="forbidden-phrase">{escape(text[start:end])}</mark>')
        cursor = end
    out.append(escape(text[cursor:]))
    return mark_safe("".join(out))  # noqa: S308 - every piece is escaped above
