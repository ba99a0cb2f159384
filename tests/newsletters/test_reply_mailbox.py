"""Email replies fetched from a real IMAP server (a private Dovecot): what becomes an RM task,
what the mailbox shows afterwards, and what happens when the mailbox is wrong or not set."""

import io
import logging
import re
from email.message import EmailMessage

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from newsletters import mailbox
from newsletters.mailbox import IGNORED, INGESTED, mailbox_config_parse, replies_fetch
from newsletters.models import Delivery, DeliveryStatus, Feedback, with_editions
from newsletters.tasks import replies_fetch_task
from outreach.models import RMTask
from tests.newsletters.dovecot import running_dovecot
from tests.newsletters.test_dispatch import freeze, make_audience, make_edition

USER = "replies@broker.example"
PASSWORD = "S3cret@reply/box:42"  # @ / : must survive the URL's percent-encoding
SEEN = "\\Seen"


@pytest.fixture(scope="module")
def dovecot():
    with running_dovecot(user=USER, password=PASSWORD) as server:
        yield server


class Inbox:
    """The reply mailbox as a person (or the MTA) sees it: deliver into it, look at flags."""

    def __init__(self, server):
        self.server = server

    def _session(self):
        imap = self.server.connect()
        imap.select("INBOX")
        return imap

    def deliver(self, *raw_messages: bytes) -> None:
        imap = self._session()
        for raw in raw_messages:
            typ, data = imap.append("INBOX", None, None, raw)
            assert typ == "OK", data
        imap.logout()

    def empty(self) -> None:
        imap = self._session()
        _, data = imap.uid("SEARCH", "ALL")
        if data[0]:
            imap.uid("STORE", b",".join(data[0].split()), "+FLAGS.SILENT", "(\\Deleted)")
            imap.expunge()
        imap.logout()

    def flags(self) -> list[tuple[str, set[str]]]:
        """(Message-ID, flags) of every message, oldest first."""
        imap = self._session()
        _, flag_data = imap.uid("FETCH", "1:*", "(FLAGS)")
        _, id_data = imap.uid("FETCH", "1:*", "(BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
        imap.logout()
        flags = {}
        for line in flag_data:
            uid, found = re.search(rb"UID (\d+)", line), re.search(rb"FLAGS \(([^)]*)\)", line)
            flags[int(uid.group(1))] = set(found.group(1).decode().split()) - {"\\Recent"}
        ids = {}
        for item in id_data:
            if isinstance(item, tuple):
                uid = int(re.search(rb"UID (\d+)", item[0]).group(1))
                ids[uid] = item[1].decode().split(":", 1)[1].strip()
        return [(ids[uid], flags[uid]) for uid in sorted(flags)]


@pytest.fixture
def inbox(dovecot):
    box = Inbox(dovecot)
    box.empty()
    return box


@pytest.fixture
def mailbox_url(dovecot):
    return dovecot.url()


@pytest.fixture
def deliveries(rm_a):
    """Two clients of rm_a were sent the weekly newsletter."""
    segment, _, _ = make_audience(size=2, rm=rm_a, excluded={})
    edition = make_edition(segment=segment, author=rm_a)
    freeze(edition)
    Delivery.objects.update(status=DeliveryStatus.SENT, sent_at=timezone.now())
    return with_editions(Delivery.objects.select_related("client").order_by("id"))


def reply(delivery, *, message_id: str, body: str) -> bytes:
    message = EmailMessage()
    message["From"] = delivery.to_email
    message["To"] = USER
    message["Subject"] = "Re: " + delivery.edition.subject
    message["Message-ID"] = message_id
    message["In-Reply-To"] = delivery.message_id
    message["References"] = delivery.message_id
    message.set_content(body)
    return message.as_bytes()


def unrelated(*, message_id: str = "<offer-1@vendor.example>") -> bytes:
    message = EmailMessage()
    message["From"] = "sales@vendor.example"
    message["To"] = USER
    message["Subject"] = "Office supplies offer"
    message["Message-ID"] = message_id
    message.set_content("Dear customer, ...")
    return message.as_bytes()


QUOTED = ("下周可以约个电话吗？\n\n"
          "在 2024年6月3日, Research Desk 写道:\n> 本周市场观点\n> 利率平稳\n")


@pytest.fixture
def replies_in_the_inbox(inbox, deliveries):
    first, second = deliveries
    inbox.deliver(reply(first, message_id="<r1@client.example>", body="想了解一下第二只产品。"),
                  unrelated(),
                  reply(second, message_id="<r2@client.example>", body=QUOTED))
    return inbox


def test_replies_become_rm_tasks_and_are_marked_on_the_server(replies_in_the_inbox, deliveries,
                                                              mailbox_url, rm_a):
    result = replies_fetch(url=mailbox_url)

    assert result == {"configured": True, "fetched": 3, "ingested": 2, "ignored": 1,
                      "errors": 0, "remaining": 0}
    tasks = {t.client_id: t for t in RMTask.objects.filter(source="newsletter_reply")}
    assert set(tasks) == {d.client_id for d in deliveries}
    assert all(t.assignee == rm_a for t in tasks.values())
    assert "想了解一下第二只产品。" in tasks[deliveries[0].client_id].detail
    quoted_reply = tasks[deliveries[1].client_id].detail
    assert "下周可以约个电话吗？" in quoted_reply
    assert "利率平稳" not in quoted_reply and "写道" not in quoted_reply
    assert Feedback.objects.get(delivery=deliveries[1], is_reply=True).comment == \
        "下周可以约个电话吗？"
    assert replies_in_the_inbox.flags() == [
        ("<r1@client.example>", {SEEN, INGESTED}),
        ("<offer-1@vendor.example>", {IGNORED}),  # still unread for the people in the mailbox
        ("<r2@client.example>", {SEEN, INGESTED}),
    ]


def test_a_second_run_fetches_nothing_and_makes_no_second_task(replies_in_the_inbox,
                                                               mailbox_url):
    replies_fetch(url=mailbox_url)

    again = replies_fetch(url=mailbox_url)

    assert (again["fetched"], again["ingested"], again["ignored"]) == (0, 0, 0)
    assert RMTask.objects.count() == 2 and Feedback.objects.filter(is_reply=True).count() == 2


def test_the_same_reply_delivered_twice_makes_one_task(inbox, deliveries, mailbox_url):
    raw = reply(deliveries[0], message_id="<twice@client.example>", body="请回电")
    inbox.deliver(raw, raw)

    result = replies_fetch(url=mailbox_url)

    assert result["fetched"] == 2 and result["errors"] == 0
    assert RMTask.objects.filter(source="newsletter_reply").count() == 1
    assert [flags for _, flags in inbox.flags()] == [{SEEN, INGESTED}, {SEEN, INGESTED}]


def test_a_message_that_fails_is_left_as_it_was_and_the_others_go_on(
        replies_in_the_inbox, mailbox_url, monkeypatch, caplog):
    real_ingest = mailbox.reply_ingest

    def ingest_failing_on_r1(*, raw_message_bytes):
        if b"<r1@client.example>" in raw_message_bytes:
            raise ValueError("database said no")
        return real_ingest(raw_message_bytes=raw_message_bytes)

    monkeypatch.setattr(mailbox, "reply_ingest", ingest_failing_on_r1)
    result = replies_fetch(url=mailbox_url)

    assert (result["fetched"], result["ingested"], result["ignored"], result["errors"]) == \
        (3, 1, 1, 1)
    assert dict(replies_in_the_inbox.flags())["<r1@client.example>"] == set()
    assert re.search(r"message UID \d+ could not be processed", caplog.text)
    assert "database said no" in caplog.text

    monkeypatch.setattr(mailbox, "reply_ingest", real_ingest)
    retried = replies_fetch(url=mailbox_url)

    assert (retried["fetched"], retried["ingested"], retried["errors"]) == (1, 1, 0)
    assert RMTask.objects.filter(source="newsletter_reply").count() == 2


def test_a_batch_limit_leaves_the_rest_for_the_next_run(replies_in_the_inbox, mailbox_url):
    first = replies_fetch(url=mailbox_url, limit=2)
    second = replies_fetch(url=mailbox_url, limit=2)

    assert (first["fetched"], first["remaining"]) == (2, 1)
    assert (second["fetched"], second["remaining"]) == (1, 0)
    assert RMTask.objects.count() == 2


def test_without_custom_keywords_processed_messages_are_marked_seen(
        replies_in_the_inbox, mailbox_url, monkeypatch):
    monkeypatch.setattr(mailbox, "_keywords_allowed", lambda imap: False)

    result = replies_fetch(url=mailbox_url)

    assert (result["ingested"], result["ignored"]) == (2, 1)
    assert [flags for _, flags in replies_in_the_inbox.flags()] == [{SEEN}] * 3
    assert replies_fetch(url=mailbox_url)["fetched"] == 0


def test_a_wrong_password_is_an_error_result_that_never_shows_the_password(
        dovecot, inbox, db, caplog):
    wrong = "Wr0ng-p@ss/phrase"
    caplog.set_level(logging.DEBUG)

    result = replies_fetch(url=dovecot.url(password=wrong))

    assert result["configured"] is True and "refused" in result["error"]
    assert result["fetched"] == 0
    logged = caplog.text + str(result)
    assert "reply mailbox" in caplog.text
    for secret in (wrong, "Wr0ng-p%40ss%2Fphrase", PASSWORD):
        assert secret not in logged


def test_an_unreachable_server_is_an_error_result(db, caplog):
    result = replies_fetch(url=f"imap://u:{PASSWORD.replace('@', '%40').replace('/', '%2F')}"
                               "@127.0.0.1:1/INBOX")

    assert "ConnectionRefusedError" in result["error"]
    assert "S3cret" not in caplog.text + str(result)


def test_starttls_never_falls_back_to_plaintext(dovecot, db, settings):
    settings.NEWSLETTER_REPLY_MAILBOX_STARTTLS = True  # this server offers no STARTTLS

    result = replies_fetch(url=dovecot.url())

    assert "STARTTLS" in result["error"] and result["fetched"] == 0


def test_a_missing_folder_is_an_error_result(dovecot, db):
    result = replies_fetch(url=dovecot.url(folder="Nowhere"))

    assert "cannot open folder 'Nowhere'" in result["error"]


def test_not_configured_does_nothing(settings, db):
    settings.NEWSLETTER_REPLY_MAILBOX_URL = ""

    assert replies_fetch()["configured"] is False
    assert replies_fetch_task.delay().get()["configured"] is False


def test_the_beat_task_reads_the_mailbox_of_the_settings(settings, replies_in_the_inbox,
                                                         mailbox_url):
    settings.NEWSLETTER_REPLY_MAILBOX_URL = mailbox_url

    result = replies_fetch_task.delay().get()

    assert (result["ingested"], result["ignored"]) == (2, 1)


@pytest.mark.skipif("connection.vendor != 'postgresql'")
def test_only_one_fetch_runs_at_a_time(replies_in_the_inbox, mailbox_url):
    import psycopg2

    db = connection.settings_dict
    other = psycopg2.connect(dbname=db["NAME"], user=db["USER"], password=db["PASSWORD"],
                             host=db["HOST"] or "127.0.0.1", port=db["PORT"] or 5432)
    try:
        with other.cursor() as cursor:  # another worker is fetching
            cursor.execute("SELECT pg_advisory_lock(%s)", [mailbox.LOCK_KEY])
            skipped = replies_fetch(url=mailbox_url)
            # (closing alone frees it too, but the server notices that a moment later)
            cursor.execute("SELECT pg_advisory_unlock(%s)", [mailbox.LOCK_KEY])
    finally:
        other.close()

    assert skipped["skipped"] and skipped["fetched"] == 0
    assert replies_fetch(url=mailbox_url)["ingested"] == 2


def test_the_command_prints_the_counts(settings, replies_in_the_inbox, mailbox_url):
    settings.NEWSLETTER_REPLY_MAILBOX_URL = mailbox_url
    out = io.StringIO()

    call_command("fetch_replies", stdout=out)

    assert out.getvalue().strip() == "fetched=3 ingested=2 ignored=1 errors=0 remaining=0"


def test_the_command_fails_clearly_without_a_mailbox(settings, db):
    settings.NEWSLETTER_REPLY_MAILBOX_URL = ""

    with pytest.raises(CommandError, match="NEWSLETTER_REPLY_MAILBOX_URL is not set"):
        call_command("fetch_replies")


def test_the_mailbox_url_is_decoded_with_defaults():
    config = mailbox_config_parse("imaps://replies%40broker.example:p%40ss%2Fw%3Ard@mail.example")

    assert (config.scheme, config.host, config.port, config.folder) == \
        ("imaps", "mail.example", 993, "INBOX")
    assert (config.user, config.password) == ("replies@broker.example", "p@ss/w:rd")
    assert "p@ss" not in str(config) + repr(config)
    assert mailbox_config_parse("imap://u:p@h/Replies/2024").port == 143
    assert mailbox_config_parse("imap://u:p@h/Replies/2024").folder == "Replies/2024"
    assert mailbox._modified_utf7("回复 & more") == "&Vt5ZDQ- &- more"


@pytest.mark.parametrize("url", ["pop3://u:p@h", "imap://h/INBOX", "imap://u:p@h:99999/"])
def test_a_bad_mailbox_url_is_an_error_result(url, db):
    result = replies_fetch(url=url)

    assert result["configured"] is True and "NEWSLETTER_REPLY_MAILBOX_URL" in result["error"]


def test_the_fetch_is_a_database_schedule_every_minute(db):
    from django_celery_beat.models import PeriodicTask

    task = PeriodicTask.objects.get(task="newsletters.tasks.replies_fetch_task")
    assert task.enabled and task.interval.every == 1 and task.interval.period == "minutes"
