"""SentMarks: "sent" marks on a second, asynchronous PostgreSQL connection; inline otherwise;
and when that connection dies mid-statement the mark is still written (inline)."""

import pytest
from django.db import connection
from django.utils import timezone

from newsletters.models import Delivery
from outreach.email.marks import SentMarks
from tests.newsletters.test_dispatch import freeze, make_audience, make_edition


def _rows(rm, size=3):
    segment, _clients, _ = make_audience(size=size, rm=rm, excluded={})
    edition = make_edition(segment=segment, author=rm)
    freeze(edition)
    return list(edition.deliveries.filter(status="pending").order_by("id"))


def test_inside_a_transaction_marks_are_written_inline(rm_a):
    rows = _rows(rm_a)
    marks = SentMarks()
    assert marks.conn is None  # another connection could not see this test's rows
    marks.start(rows[0], '{"k": 1}', timezone.now())
    marks.wait()
    row = Delivery.objects.get(pk=rows[0].pk)
    assert (row.status, row.attempts, row.context) == ("sent", 1, {"k": 1})


@pytest.mark.django_db(transaction=True)
def test_asynchronous_marks_commit_and_survive_a_dead_connection(rm_a, settings):
    if connection.vendor != "postgresql":
        pytest.skip("asynchronous marks are PostgreSQL's")
    rows = _rows(rm_a, size=3)
    marks = SentMarks(synchronous_commit="on")
    assert marks.conn is not None
    marks.start(rows[0], '{"n": 0}', timezone.now())
    marks.wait()
    assert Delivery.objects.get(pk=rows[0].pk).status == "sent"

    # the server ends the asynchronous connection; the next mark finds it dead
    backend_pid = marks.conn.get_backend_pid()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s, 5000)", [backend_pid])
    marks.start(rows[1], '{"n": 1}', timezone.now())
    marks.wait()
    assert marks.conn is None  # from now on inline
    marks.start(rows[2], '{"n": 2}', timezone.now())
    marks.wait()
    marks.close()
    got = {d.pk: (d.status, d.attempts, d.context) for d in Delivery.objects.filter(
        pk__in=[r.pk for r in rows])}
    assert got == {rows[0].pk: ("sent", 1, {"n": 0}), rows[1].pk: ("sent", 1, {"n": 1}),
                   rows[2].pk: ("sent", 1, {"n": 2})}


@pytest.mark.django_db(transaction=True)
def test_asynchronous_marks_can_be_switched_off(rm_a, settings):
    settings.NEWSLETTER_DISPATCH_ASYNC_MARKS = False
    rows = _rows(rm_a, size=1)
    marks = SentMarks()
    assert marks.conn is None
    marks.start(rows[0], "{}", timezone.now())
    marks.wait()
    assert Delivery.objects.get(pk=rows[0].pk).status == "sent"
