"""A message sent in two halves (newsletters.dispatch.smtp begin/finish), through a real SMTP
server (aiosmtpd in this process) that answers the end of DATA per recipient: 250, 451, 554 or
421 (aiosmtpd answers the 421 and keeps the connection open; the client must not reuse it).
Then the dispatch loop: every row gets its verdict written before the next message goes out."""

import asyncio
import email
import email.policy
import smtplib
import threading
import time
from collections import Counter
from dataclasses import dataclass

import pytest
from aiosmtpd.controller import Controller

from newsletters import dispatch
from newsletters.models import Edition, EditionStatus, Suppression
from outreach.email import marks as dispatch_marks
from outreach.email import run as dispatch_run
from outreach.email.smtp import Outcome, Sender, classify
from tests.newsletters.test_dispatch import freeze, make_audience, make_edition
from tests.newsletters.test_smtp_delivery import free_port

ACCEPTED = "250 2.0.0 Message accepted for delivery"
TRY_LATER = "451 4.3.0 try later"
REJECTED = "554 5.6.0 rejected"
CLOSING = "421 4.7.0 closing"


@dataclass
class Arrival:
    rcpts: list[str]
    content: bytes
    peer: tuple  # the client's address and port: one per connection
    verdict: str
    marks_before: int  # rows marked (sent, retry, failed) when the message was whole


class VerdictSink:
    """Records every message that reaches the end of DATA and answers as `data_verdict` says
    for its recipient; `rcpt_verdict` refuses at RCPT. `marks` is filled by the test."""

    def __init__(self):
        self.lock = threading.Lock()
        self.arrivals: list[Arrival] = []
        self.data_verdict: dict[str, str] = {}
        self.rcpt_verdict: dict[str, str] = {}
        self.marks: list[tuple[str, int]] = []
        self.entered = threading.Event()  # handle_DATA has the whole message
        self.hold: threading.Event | None = None  # when set: answer only once it is set
        self.count_marks = None  # when set: how many rows the database says are marked

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        verdict = self.rcpt_verdict.get(address)
        if verdict:
            return verdict
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.entered.set()
        if self.hold is not None:
            await asyncio.get_running_loop().run_in_executor(None, self.hold.wait, 10)
        verdict = ACCEPTED
        for rcpt in envelope.rcpt_tos:
            verdict = self.data_verdict.get(rcpt, verdict)
        marked = self.count_marks() if self.count_marks else len(self.marks)
        with self.lock:
            self.arrivals.append(Arrival(list(envelope.rcpt_tos), bytes(envelope.content),
                                         tuple(session.peer), verdict, marked))
        return verdict

    def accepted(self) -> Counter:
        with self.lock:
            return Counter(r for a in self.arrivals if a.verdict == ACCEPTED for r in a.rcpts)


@pytest.fixture
def sink():
    handler = VerdictSink()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    handler.port = controller.port
    try:
        yield handler
    finally:
        controller.stop()


@pytest.fixture
def smtp_settings(settings, sink):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", sink.port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_TIMEOUT = 10
    settings.NEWSLETTER_RATE_PER_SECOND = settings.NEWSLETTER_RATE_PER_HOUR = 0
    settings.NEWSLETTER_RETRY_BACKOFF_SECONDS = 3600  # a retry is not due again in this run
    settings.NEWSLETTER_CHUNK_SIZE = 10
    return settings


def raw(to: str, body: bytes = b"Hello.\r\n") -> tuple[str, list[str], bytes]:
    head = (f"From: desk@broker.example\r\nTo: {to}\r\nSubject: halves\r\n"
            f"Message-ID: <{to}.{time.monotonic_ns()}@broker.example>\r\n\r\n").encode()
    return "desk@broker.example", [to], head + body


# --- the two halves on their own ------------------------------------------------------------

DOTTED = (b".starts the body\r\n..two dots\r\n.\r\nafter a lone dot\r\n"
          b"a line . with a dot\r\n\xe4\xb8\xad\xe6\x96\x87 utf-8\r\n")


def test_a_message_in_two_halves_arrives_once_with_its_dot_lines_intact(smtp_settings, sink):
    sender = Sender()
    assert sender.raw
    message = raw("one@client.example", DOTTED)
    sender.begin(message)
    sender.finish()
    unterminated = raw("two@client.example", b"body\r\n.last line without CRLF")
    sender.send(unterminated)
    sender.close()

    assert [a.rcpts for a in sink.arrivals] == [["one@client.example"], ["two@client.example"]]
    first, second = sink.arrivals
    assert first.content == message[2]  # the server undid the dot-stuffing exactly
    assert b"\r\n.starts the body\r\n..two dots\r\n.\r\nafter a lone dot\r\n" in first.content
    assert second.content == unterminated[2] + b"\r\n"
    assert first.peer == second.peer  # one connection carried both
    assert sink.accepted() == Counter({"one@client.example": 1, "two@client.example": 1})


def test_begin_hands_over_the_whole_message_without_waiting_for_the_verdict(
        smtp_settings, sink):
    sink.hold = threading.Event()
    sender = Sender()
    try:
        sender.begin(raw("slow@client.example"))
        assert sink.entered.wait(5), "the server got the whole message (the final dot)"
        assert sink.arrivals == [] and sender.awaiting_reply  # begin did not wait for 250
    finally:
        sink.hold.set()
    sender.finish()
    assert not sender.awaiting_reply
    assert [a.verdict for a in sink.arrivals] == [ACCEPTED]
    sender.close()


@pytest.mark.parametrize("verdict, outcome, same_connection", [
    (TRY_LATER, Outcome.RETRY, True),
    (REJECTED, Outcome.FAILED, True),
    (CLOSING, Outcome.RETRY, False),
])
def test_a_refusal_at_the_end_of_data_is_raised_by_finish(
        smtp_settings, sink, verdict, outcome, same_connection):
    sink.data_verdict = {"refused@client.example": verdict}
    sender = Sender()
    sender.send(raw("before@client.example"))
    sender.begin(raw("refused@client.example"))  # the refusal comes with the reply, not here
    with pytest.raises(smtplib.SMTPDataError) as raised:
        sender.finish()
    assert raised.value.smtp_code == int(verdict[:3])
    assert classify(raised.value)[0] == outcome
    kept_open = sender.is_open
    sender.send(raw("after@client.example"))  # the next message still goes out
    sender.close()

    assert [(a.rcpts[0], a.verdict) for a in sink.arrivals] == [
        ("before@client.example", ACCEPTED), ("refused@client.example", verdict),
        ("after@client.example", ACCEPTED)]
    assert sink.accepted() == Counter({"before@client.example": 1, "after@client.example": 1})
    peers = [a.peer for a in sink.arrivals]
    assert peers[0] == peers[1]
    if not same_connection:
        assert not kept_open and peers[2] != peers[1], "after a 421: a fresh connection"
    else:  # smtp.py: "reopened only after the server dropped it"; _refuse sent RSET for this
        assert kept_open and peers[2] == peers[1], (
            f"after a {verdict[:3]} the Sender dropped a healthy connection (sent RSET, then "
            "QUIT) and the next message needed a new one: Sender.finish catches "
            "(SMTPServerDisconnected, OSError), and every SMTPException is an OSError")


def test_a_554_at_data_is_a_failure_and_only_550_551_553_at_rcpt_is_a_bounce(smtp_settings, sink):
    sink.rcpt_verdict = {"gone@client.example": "550 5.1.1 no such user"}
    sink.data_verdict = {"refused@client.example": REJECTED}
    sender = Sender()
    with pytest.raises(smtplib.SMTPRecipientsRefused) as at_rcpt:
        sender.begin(raw("gone@client.example"))
    assert classify(at_rcpt.value)[0] == Outcome.BOUNCED and not sender.awaiting_reply
    sender.begin(raw("refused@client.example"))
    with pytest.raises(smtplib.SMTPDataError) as at_data:
        sender.finish()
    assert classify(at_data.value)[0] == Outcome.FAILED
    sender.send(raw("fine@client.example"))
    sender.close()
    assert [a.rcpts[0] for a in sink.arrivals] == ["refused@client.example",
                                                   "fine@client.example"]


def test_nothing_is_deliverable_before_the_final_dot(smtp_settings, sink):
    sender = Sender()
    sender.begin_data(raw("dot@client.example"))
    assert not sink.entered.wait(0.3), "the content alone is no message yet"
    sender.end_data()
    assert sink.entered.wait(5)
    sender.finish()
    sink.entered.clear()

    sender.begin_data(raw("abandoned@client.example"))
    sender.abort_data()  # closes the connection: the server discards the content
    assert not sender.is_open
    sender.send(raw("next@client.example"))
    sender.close()
    assert [a.rcpts[0] for a in sink.arrivals] == ["dot@client.example", "next@client.example"]
    assert sink.arrivals[0].peer != sink.arrivals[1].peer


def test_a_refusal_at_rcpt_leaves_no_message_in_flight(smtp_settings, sink):
    sink.rcpt_verdict = {"gone@client.example": "550 5.1.1 no such user",
                         "full@client.example": "452 4.2.2 mailbox full"}
    sender = Sender()
    kept_open = []
    for address in ("gone@client.example", "full@client.example"):
        with pytest.raises(smtplib.SMTPRecipientsRefused):
            sender.begin(raw(address))
        assert not sender.awaiting_reply and not sender.in_data
        kept_open.append(sender.is_open)
        sender.finish()  # nothing to read
    sender.send(raw("fine@client.example"))
    sender.close()
    assert [a.rcpts[0] for a in sink.arrivals] == ["fine@client.example"]
    # begin_transaction sent RSET after the refusal "so the connection can carry the next
    # message"; Sender.begin_data then closed it anyway (SMTPRecipientsRefused is an OSError)
    assert kept_open == [True, True], "a refused recipient cost the connection"


def test_begin_twice_without_finish_is_refused(smtp_settings, sink):
    sender = Sender()
    sender.begin(raw("first@client.example"))
    with pytest.raises(RuntimeError):
        sender.begin(raw("second@client.example"))
    sender.finish()
    sender.finish()  # nothing in flight: nothing to read
    sender.close()
    assert [a.rcpts for a in sink.arrivals] == [["first@client.example"]]
    assert sink.accepted() == Counter({"first@client.example": 1})


# --- the dispatch loop ----------------------------------------------------------------------

@pytest.fixture
def recorded_marks(sink, monkeypatch):
    """Every verdict the run loop writes, in order, into the sink's shared list."""
    sent, error = dispatch_marks.mark_sent, dispatch_run.mark_smtp_error

    def mark_sent(delivery, context_json, now):
        sent(delivery, context_json, now)
        sink.marks.append(("sent", delivery.pk))

    def mark_smtp_error(delivery, exc):
        error(delivery, exc)
        sink.marks.append(("error", delivery.pk))

    monkeypatch.setattr(dispatch_marks, "mark_sent", mark_sent)  # inside a transaction:
    # SentMarks writes on the ordinary connection, through marks.mark_sent
    monkeypatch.setattr(dispatch_run, "mark_smtp_error", mark_smtp_error)
    return sink.marks


def test_the_run_loop_marks_each_row_before_the_next_message_goes_out(
        rm_a, smtp_settings, sink, recorded_marks):
    segment, clients, _ = make_audience(size=12, rm=rm_a, excluded={})
    edition = make_edition(segment=segment, author=rm_a)
    freeze(edition)
    rows = list(edition.deliveries.filter(status="pending").order_by("id"))
    assert len(rows) == 12
    later, closing, failing = rows[2], rows[5], rows[8]
    sink.data_verdict = {later.to_email: TRY_LATER, closing.to_email: CLOSING,
                         failing.to_email: REJECTED}

    assert dispatch.edition_dispatch_run(edition_id=edition.id) == "waiting"

    # every client's message reached the end of DATA once, in row order
    assert [a.rcpts for a in sink.arrivals] == [[r.to_email for r in rows][i:i + 1]
                                                for i in range(12)]
    # message k was whole at the server when exactly k verdicts had been written: never two
    # messages accepted (or refused) without their rows saying so
    assert [a.marks_before for a in sink.arrivals] == list(range(12))
    refused = {later.pk, closing.pk, failing.pk}
    assert recorded_marks == [("error" if r.pk in refused else "sent", r.pk) for r in rows]

    # after the 421 the client left that connection: the rest came over a fresh one
    at = next(i for i, a in enumerate(sink.arrivals) if a.verdict == CLOSING)
    assert at == 5 and all(a.peer != sink.arrivals[at].peer for a in sink.arrivals[at + 1:])
    assert sink.arrivals[at - 1].peer == sink.arrivals[at].peer

    by_pk = {d.pk: d for d in edition.deliveries.all()}
    retry = by_pk[later.pk]
    assert (retry.status, retry.attempts) == ("retry", 1) and "451" in retry.last_error
    dropped = by_pk[closing.pk]
    assert (dropped.status, dropped.attempts) == ("retry", 1) and "421" in dropped.last_error
    failed = by_pk[failing.pk]
    assert (failed.status, failed.attempts) == ("failed", 1) and "554" in failed.last_error
    assert not Suppression.objects.filter(client_id=failing.client_id).exists()

    sent = {pk: d for pk, d in by_pk.items() if pk not in refused}
    assert {d.status for d in sent.values()} == {"sent"}
    assert {d.attempts for d in sent.values()} == {1}
    assert sink.accepted() == Counter({d.to_email: 1 for d in sent.values()})
    for arrival in sink.arrivals:
        message = email.message_from_bytes(arrival.content, policy=email.policy.default)
        row = next(d for d in by_pk.values() if d.to_email == arrival.rcpts[0])
        assert message["Message-ID"] == row.message_id and message["To"] == row.to_email
    assert Edition.objects.get(pk=edition.pk).status == EditionStatus.SENDING  # 2 retries due


@pytest.mark.django_db(transaction=True)
def test_committed_marks_on_the_asynchronous_connection_come_before_each_next_message(
        rm_a, smtp_settings, sink):
    """Outside a transaction on PostgreSQL the "sent" marks go over a second, asynchronous
    connection while the next message renders. What the database has COMMITTED when a message
    is whole at the server is counted from another connection: always every earlier row."""
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("asynchronous marks are PostgreSQL's")
    import psycopg2

    segment, clients, _ = make_audience(size=12, rm=rm_a, excluded={})
    edition = make_edition(segment=segment, author=rm_a)
    freeze(edition)
    rows = list(edition.deliveries.filter(status="pending").order_by("id"))
    sink.data_verdict = {rows[4].to_email: TRY_LATER}
    observer = psycopg2.connect(**dispatch_marks.second_connection_params())
    observer.autocommit = True

    def count_marks() -> int:
        with observer.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM outreach_delivery WHERE source = 'newsletter' "
                           "AND source_id = %s "
                           "AND status IN ('sent', 'retry', 'failed')", [edition.id])
            return cursor.fetchone()[0]

    sink.count_marks = count_marks
    made = []
    real = dispatch_marks.SentMarks.__init__

    def spy(self, *args, **kwargs):
        real(self, *args, **kwargs)
        made.append(self.conn is not None)

    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(dispatch_marks.SentMarks, "__init__", spy)
            assert dispatch.edition_dispatch_run(edition_id=edition.id) == "waiting"
    finally:
        observer.close()
    assert made and all(made), "the run did not use the asynchronous connection"
    assert [a.marks_before for a in sink.arrivals] == list(range(12))
    by_pk = {d.pk: d for d in edition.deliveries.all()}
    assert by_pk[rows[4].pk].status == "retry"
    assert sorted(d.status for d in by_pk.values()) == ["retry"] + ["sent"] * 11
    assert sink.accepted() == Counter({r.to_email: 1 for r in rows if r.pk != rows[4].pk})
