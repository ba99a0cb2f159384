"""Newsletter tests. The builders below are shared by the content, approval and API tests."""

import datetime as dt
from decimal import Decimal


def make_publication(*, actor, slug="hnw-insight", tracking=False, sender_mode="firm",
                     segment_code="nl-content-audience"):
    from newsletters.services import publication_create
    from segments.models import Segment

    segment, _ = Segment.objects.get_or_create(code=segment_code, defaults={
        "kind": "static", "name_en": "HNW readers", "name_zh": "高净值读者"})
    return publication_create(actor=actor, name="HNW Weekly Insight", slug=slug,
                              audience=segment, from_name="Research Desk",
                              from_email="insight@broker.example",
                              reply_to="replies@broker.example", sender_mode=sender_mode,
                              tracking_enabled=tracking)


def standard_sections(*, pick_codes=(), notes_by_product=None, notes_by_type=None, **extra):
    return [
        {"kind": "editorial", "title": "Market view", "body": "Markets **calm**. [Read](https://research.example/a)"},
        {"kind": "research", "title": "Research",
         "data": {"title": "Bond outlook", "summary": "Rates *lower*.",
                  "url": "https://research.example/bonds"}},
        {"kind": "holdings", "title": "Your holdings",
         "data": {"intro": "Your largest positions:", "top_n": extra.get("top_n", 5),
                  "notes_by_product": notes_by_product or {},
                  "notes_by_type": notes_by_type or {}}},
        {"kind": "picks", "title": "Picks", "data": {"product_codes": list(pick_codes),
                                                     "notes": {}}},
        {"kind": "rm_note", "title": "From your RM", "data": {"fallback": "Call me any time."}},
    ]


def make_edition(*, author, publication=None, sections=None, subject="Weekly insight",
                 preheader="This week in markets"):
    from newsletters.services import edition_create

    publication = publication or make_publication(actor=author)
    return edition_create(publication=publication, subject=subject, preheader=preheader,
                          sections=standard_sections() if sections is None else sections,
                          author=author)


def hold(client, product, value, as_of=dt.date(2026, 10, 31)):
    from tests.factories import HoldingFactory

    return HoldingFactory(client=client, product=product, market_value=Decimal(value),
                          as_of=as_of)
