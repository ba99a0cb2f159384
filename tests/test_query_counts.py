"""Query counts of the heaviest pages: an N+1 fails here.

Each page is read with some rows, then again with twice as many, under the SAME bound: a query
per row (or per card, segment, edition, task...) grows with the rows and breaks the bound. The
bounds are the counts measured on PostgreSQL (session, user, role, the page's reads, the session
write of SESSION_SAVE_EVERY_REQUEST) plus one; and the count must be the same at both sizes. A
page that needs a new fixed query raises its bound here, on purpose.
"""

import datetime as dt
import itertools
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from clients.scoring.models import ClientScore, ScoringCurrent, ScoringRun, ScoringScheme
from core.models import AuditAction
from core.services import audit_record
from newsletters.models import Delivery, DeliveryStatus, Feedback
from outreach.models import RMTask, TaskSource
from segments.models import Segment, SegmentMembership
from tests.factories import (
    ClientFactory,
    HoldingFactory,
    InteractionFactory,
    ProductFactory,
    TransactionFactory,
)
from tests.newsletters import make_edition, make_publication

ROWS = 12  # rows added per step: a page is read with ROWS, then with 2 * ROWS
_numbers = itertools.count(1)


def pinned(web, path, *, bound, grow, rows, assert_max, **params):
    """GET `path` after `grow()` once and after `grow()` twice, each under `bound` queries;
    `rows(response)` is how many rows the page shows: it must grow too, or the test proves
    nothing."""
    web.get(path, params)  # the first request of a session writes it: not the page's cost
    counts, shown = [], []
    for _step in range(2):
        grow()
        with CaptureQueriesContext(connection) as seen, assert_max(bound):
            response = web.get(path, params)
        assert response.status_code == 200, (path, response.status_code)
        counts.append(len(seen))
        shown.append(rows(response))
    assert shown[1] > shown[0] > 0, (path, shown)
    assert counts[0] == counts[1], (path, counts, "queries grow with the rows")
    return counts


def body_count(marker):
    return lambda response: response.content.decode().count(marker)


@pytest.fixture
def scheme(db):
    return ScoringScheme.objects.get(version=1)


@pytest.fixture
def fund(db):
    return ProductFactory(product_code="QF0001", product_type="fund", risk_level="R3")


@pytest.fixture
def book(rm_a, scheme, fund):
    """`grow()` adds ROWS clients of rm_a, each with holdings, transactions, a current score,
    an interaction and two segments."""
    as_of = timezone.localdate() - dt.timedelta(days=1)
    ScoringCurrent.objects.update_or_create(pk=1, defaults={"as_of": as_of, "scheme": scheme})
    segments = [Segment.objects.create(code=f"qc_list_{i}", kind="static", name_en=f"List {i}",
                                       name_zh=f"名单{i}") for i in range(2)]
    made = []

    def grow():
        for _ in range(ROWS):
            c = ClientFactory(rm=rm_a, branch=rm_a.branch, aum=Decimal("500000"))
            HoldingFactory(client=c, product=fund, as_of=as_of)
            TransactionFactory(client=c, product=fund)
            TransactionFactory(client=c, product=fund)
            ClientScore.objects.create(client=c, scheme=scheme, as_of=as_of, amount=0,
                                       purchases=0, frequency=0, benefit=0, amount_score=1,
                                       frequency_score=1, benefit_score=1, total_score=3,
                                       tier="long_tail")
            InteractionFactory(client=c, author=rm_a)
            SegmentMembership.objects.bulk_create(
                [SegmentMembership(segment=s, client=c) for s in segments])
            made.append(c)

    grow.clients = made
    grow.as_of = as_of
    grow.segments = segments
    return grow


def test_the_client_list(logged_in, ops_user, book, django_assert_max_num_queries):
    pinned(logged_in(ops_user), "/clients/", bound=10, grow=book, per_page=100,
           rows=lambda r: len(r.context["page"].rows), assert_max=django_assert_max_num_queries)


def test_the_client_360(logged_in, rm_a, book, fund, scheme, django_assert_max_num_queries):
    book()
    client = book.clients[0]
    product_codes = itertools.count(1)
    extra = [Segment.objects.create(code=f"qc_more_{i}", kind="static", name_en=f"More {i}",
                                    name_zh=f"更多{i}") for i in range(2 * ROWS)]

    def grow():
        for _ in range(ROWS):
            product = ProductFactory(product_code=f"QP{next(product_codes):04d}")
            HoldingFactory(client=client, product=product, as_of=book.as_of)
            InteractionFactory(client=client, author=rm_a)
            TransactionFactory(client=client, product=product)
            SegmentMembership.objects.create(segment=extra.pop(), client=client)
            RMTask.objects.create(client=client, assignee=rm_a, title="回访",
                                  source=TaskSource.NEWSLETTER_COMMENT, detail="想了解债券")

    pinned(logged_in(rm_a), f"/clients/{client.client_no}/", bound=18, grow=grow,
           rows=body_count("QP0"), assert_max=django_assert_max_num_queries)


def test_the_segment_list(logged_in, ops_user, rm_a, db, django_assert_max_num_queries):
    clients = ClientFactory.create_batch(3, rm=rm_a, branch=rm_a.branch)

    def grow():
        for _ in range(ROWS):
            n = next(_numbers)
            s = Segment.objects.create(code=f"qc_seg_{n}", kind="static", name_en=f"QC {n}",
                                       name_zh=f"查询{n}", size=len(clients))
            SegmentMembership.objects.bulk_create(
                [SegmentMembership(segment=s, client=c) for c in clients])

    pinned(logged_in(ops_user), "/segments/", bound=9, grow=grow, rows=body_count("qc_seg_"),
           assert_max=django_assert_max_num_queries)


def test_a_segments_members(logged_in, ops_user, book, django_assert_max_num_queries):
    segment = book.segments[0]

    def grow():
        book()
        Segment.objects.filter(pk=segment.pk).update(size=len(book.clients))

    pinned(logged_in(ops_user), f"/segments/{segment.code}/", bound=14, grow=grow,
           rows=lambda r: len(r.context["page"].rows), assert_max=django_assert_max_num_queries,
           per_page=100)


def test_the_persona_overview(logged_in, ops_user, rm_a, db, django_assert_max_num_queries):
    personas = list(Segment.objects.filter(kind="persona"))
    assert personas

    def grow():
        for _ in range(ROWS):
            c = ClientFactory(rm=rm_a, branch=rm_a.branch)
            SegmentMembership.objects.bulk_create(
                [SegmentMembership(segment=s, client=c) for s in personas[:3]])
        for s in personas:
            Segment.objects.filter(pk=s.pk).update(size=s.memberships.count())

    pinned(logged_in(ops_user), "/segments/personas/", bound=11, grow=grow,
           rows=lambda r: SegmentMembership.objects.count(),
           assert_max=django_assert_max_num_queries)


def test_the_scoring_page(logged_in, ops_user, book, scheme, django_assert_max_num_queries):
    days = itertools.count(2)

    def grow():
        book()
        for _ in range(3):
            ScoringRun.objects.create(as_of=timezone.localdate() - dt.timedelta(days=next(days)),
                                      scheme=scheme, status="succeeded", trigger="beat",
                                      created_by=ops_user)

    pinned(logged_in(ops_user), "/scoring/", bound=19, grow=grow,
           rows=lambda r: len(r.context["run_rows"]), assert_max=django_assert_max_num_queries)


def test_the_edition_list(logged_in, ops_user, db, django_assert_max_num_queries):
    publication = make_publication(actor=ops_user, slug="qc-weekly")

    def grow():
        for _ in range(ROWS):
            make_edition(author=ops_user, publication=publication, subject="QC edition")

    pinned(logged_in(ops_user), f"/newsletters/publications/{publication.slug}/", bound=9,
           grow=grow, rows=body_count("QC edition"), assert_max=django_assert_max_num_queries)


def test_the_edition_stats(logged_in, ops_user, rm_a, db, django_assert_max_num_queries):
    edition = make_edition(author=ops_user)
    now = timezone.now()

    def grow():
        for _ in range(ROWS):
            c = ClientFactory(rm=rm_a, branch=rm_a.branch)
            d = Delivery.objects.create(source="newsletter", source_id=edition.id,
                                        client=c, status=DeliveryStatus.SENT,
                                        to_email=c.email, message_id=f"<{c.client_no}@qc>",
                                        token=f"qc-{c.client_no}", sent_at=now, opened_at=now)
            Feedback.objects.create(delivery=d, rating=4, comment="QC comment")

    pinned(logged_in(ops_user), f"/newsletters/editions/{edition.pk}/stats/", bound=12,
           grow=grow, rows=body_count("QC comment"), assert_max=django_assert_max_num_queries)


def test_the_approval_queue(logged_in, ops_user, compliance_user, db,
                            django_assert_max_num_queries):
    from newsletters.services import edition_submit

    publication = make_publication(actor=ops_user, slug="qc-queue")

    def grow():
        for _ in range(ROWS):
            edition_submit(edition=make_edition(author=ops_user, publication=publication,
                                                subject="QC review"), actor=ops_user)

    pinned(logged_in(compliance_user), "/newsletters/approvals/", bound=8, grow=grow,
           rows=body_count("QC review"), assert_max=django_assert_max_num_queries)


def test_the_audit_log(logged_in, compliance_user, rm_a, db, django_assert_max_num_queries):
    def grow():
        for _ in range(ROWS):
            audit_record(action=AuditAction.PII_VIEWED, actor=rm_a, object_type="client",
                         object_id=f"QC{next(_numbers):06d}", detail={"fields": ["phone"]})

    pinned(logged_in(compliance_user), "/accounts/audit/", bound=8, grow=grow,
           rows=body_count('>QC0'), assert_max=django_assert_max_num_queries)


def test_the_task_list(logged_in, rm_a, db, django_assert_max_num_queries):
    def grow():
        for _ in range(ROWS):
            c = ClientFactory(rm=rm_a, branch=rm_a.branch)
            RMTask.objects.create(client=c, assignee=rm_a, title="QC task",
                                  source=TaskSource.NEWSLETTER_COMMENT, detail="QC detail")

    # 13: the page, plus four for the calls' client context (tiers, personas, holdings, last
    # contacts), whatever the number of rows.
    pinned(logged_in(rm_a), "/tasks/", bound=13, grow=grow, rows=body_count("QC detail"),
           assert_max=django_assert_max_num_queries)
