"""Forbidden phrases in an edition: where they are (the phrase list and matching are
outreach.compliance's, shared with campaigns)."""

from __future__ import annotations

from outreach.compliance import (  # noqa: F401  (highlight: the edition pages)
    BUILTIN_PHRASES,
    forbidden_phrases_found,
    highlight,
    phrase_list,
)


def _strings_in(value, path: str):
    """(field path, string) for every string inside a section's JSON data."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings_in(item, f"{path}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _strings_in(item, f"{path}[{i}]")


def content_compliance_issues(*, subject: str, preheader: str, sections) -> list[dict]:
    """Issues in unsaved content: `sections` is a list of dicts (position, title, body, data)."""
    phrases = phrase_list()
    issues = []

    def scan(position, field, text):
        for m in forbidden_phrases_found(text, phrases=phrases):
            issues.append({"section_position": position, "field": field, **m})

    scan(None, "subject", subject or "")
    scan(None, "preheader", preheader or "")
    for section in sections:
        position = section.get("position")
        scan(position, "title", section.get("title") or "")
        scan(position, "body", section.get("body") or "")
        for field, text in _strings_in(section.get("data") or {}, "data"):
            scan(position, field, text)
    return issues


def edition_compliance_issues(*, edition) -> list[dict]:
    """[{"section_position", "field", "phrase", "start", "end"}] over the whole edition.

    section_position is None for the subject and preheader; field is "subject", "preheader",
    "title", "body" or a path into the section's data such as "data.notes.P001".
    """
    sections = [{"position": s.position, "title": s.title, "body": s.body, "data": s.data}
                for s in edition.sections.all().order_by("position")]
    return content_compliance_issues(subject=edition.subject, preheader=edition.preheader,
                                     sections=sections)
