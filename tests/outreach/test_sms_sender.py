"""Queued SMS and app push contacts through a real gateway process on this machine
(outreach.channels.devgateway) and the real database: what is sent and recorded, quiet hours,
consent and opt-outs at send time, retries, refusals, dead workers' claims, a worker killed
mid-send, and the delivery receipts the gateway posts back. No HTTP is mocked."""

import datetime as dt
import json
import os
import signal
import subprocess
import sys
from collections import Counter
from zoneinfo import ZoneInfo

import pytest
import urllib3
from django.conf import settings as django_settings
from django.db import connection
from django.db.models import F
from django.test import Client as HttpClient
from django.urls import include, path, reverse
from django_celery_beat.models import PeriodicTask

from outreach.channels.gateway import HttpGateway, signed_headers
from outreach.channels.render import render, renderer_registered
from outreach.channels.sender import gateway_send_due, in_quiet_hours
from outreach.channels.tasks import gateway_send_due_task
from outreach.models import Contact, ContactPolicy, ContactStatus, OptOut
from outreach.selectors import DEFAULT_POLICY
from tests.factories import ClientFactory
from tests.worker import _unavailable, wait_for

from .conftest import KEY, RunningGateway

SHANGHAI = ZoneInfo("Asia/Shanghai")
DAYTIME = dt.datetime(2026, 3, 10, 10, 0, tzinfo=SHANGHAI)
RECEIPTS_PATH = "/outreach/gateway/receipts/"

# This module is its own URLconf (pytest.mark.urls below): the app's URLs where config/urls.py
# includes them.
urlpatterns = [path("outreach/gateway/", include("outreach.channels.urls"))]
use_gateway_urls = pytest.mark.urls("tests.outreach.test_sms_sender")


def message_text(contacts) -> dict[int, tuple[str, str]]:
    """The renderer the tests register for campaign contacts (the kill test's worker too)."""
    return {c.pk: (f"提醒 {c.pk}" if c.channel == "app_push" else "",
                   f"【华信证券】{c.client.name}您好：您关注的产品今日开放申购 📈 {c.pk}。回TD退订")
            for c in contacts}


@pytest.fixture
def renderer():
    with renderer_registered("campaign", message_text) as fn:
        yield fn


@pytest.fixture
def no_quiet_hours(db):
    """For runs at the real time of day (a task, another process): the default policy without
    quiet hours, so the suite passes at 22:00 too."""
    return ContactPolicy.objects.update_or_create(pk=1, defaults={
        "caps": DEFAULT_POLICY["caps"],
        "quiet_hours": {**DEFAULT_POLICY["quiet_hours"], "channels": []}})[0]


def reachable_clients(n: int, **kwargs) -> list:
    return [ClientFactory(consent_sms=True, **kwargs) for _ in range(n)]


def queue(clients, *, channel: str = "sms", source: str = "campaign", step: int = 0,
          status: str = ContactStatus.QUEUED, **fields) -> list[Contact]:
    return Contact.objects.bulk_create([
        Contact(client=c, source=source, source_id=1, step=step, channel=channel,
                status=status, planned_on=DAYTIME.date(), **fields)
        for c in clients])


def reload(contacts) -> list[Contact]:
    return list(Contact.objects.filter(pk__in=[c.pk for c in contacts])
                .select_related("client").order_by("pk"))


def statuses(contacts) -> Counter:
    return Counter(c.status for c in reload(contacts))


def send_until_done(gateway, *, start=DAYTIME, step=dt.timedelta(hours=1), passes=30) -> Counter:
    total, now = Counter(), start
    for _ in range(passes):
        counts = gateway_send_due(now=now, gateway=gateway)
        total.update(counts)
        if not Contact.objects.filter(status=ContactStatus.QUEUED).exists():
            return total
        now += step
    raise AssertionError(f"still queued after {passes} passes: {total}")


# Sending ----------------------------------------------------------------------------------

def test_queued_sms_and_pushes_are_sent_and_marked_with_provider_ids_and_the_exact_text(
        db, run_gateway, renderer):
    gateway = run_gateway()
    sms = queue(reachable_clients(4))
    pushes = queue(reachable_clients(2), channel="app_push")

    counts = gateway_send_due(now=DAYTIME, gateway=gateway.client())

    assert counts == {"sent": 6, "failed": 0, "retry": 0, "skipped": 0, "quiet": 0}
    by_id = {entry["message"]["id"]: entry for entry in gateway.accepted()}
    for contact in reload(sms + pushes):
        title, body = message_text([contact])[contact.pk]
        message = by_id[contact.pk]["message"]
        assert contact.status == ContactStatus.SENT
        assert contact.provider_id == f"gw-{by_id[contact.pk]['n']}"
        assert (contact.title, contact.body) == (title, body) == (message["title"],
                                                                   message["body"])
        assert message["to"] == contact.client.phone
        assert message["channel"] == contact.channel
        assert contact.at == DAYTIME
        assert (contact.attempts, contact.claimed_at, contact.error) == (1, None, "")


def test_nothing_is_sent_twice_by_a_second_pass(db, run_gateway, renderer):
    gateway = run_gateway()
    queue(reachable_clients(3))
    gateway_send_due(now=DAYTIME, gateway=gateway.client())

    counts = gateway_send_due(now=DAYTIME + dt.timedelta(minutes=1), gateway=gateway.client())

    assert counts["sent"] == 0
    assert len(gateway.accepted()) == 3


def test_a_pass_posts_one_request_per_message_over_one_kept_alive_connection(
        db, run_gateway, renderer):
    gateway = run_gateway()
    queue(reachable_clients(5))

    gateway_send_due(now=DAYTIME, gateway=gateway.client())

    stats = urllib3.request("GET", f"{gateway.url}/stats", retries=False).json()
    # The second connection is this GET's own.
    assert (stats["requests"], stats["accepted"], stats["connections"]) == (5, 5, 2)


def test_a_source_without_a_renderer_fails_its_contacts(db, run_gateway, renderer):
    gateway = run_gateway()
    newsletter = queue(reachable_clients(2), source="newsletter")
    campaign = queue(reachable_clients(1))

    counts = gateway_send_due(now=DAYTIME, gateway=gateway.client())

    assert (counts["sent"], counts["failed"]) == (1, 2)
    assert {(c.status, c.error, c.attempts) for c in reload(newsletter)} == {
        (ContactStatus.FAILED, "no renderer", 0)}
    assert statuses(campaign) == {ContactStatus.SENT: 1}
    assert set(gateway.accepted_ids()) == {campaign[0].pk}


def test_render_groups_contacts_by_source_and_leaves_out_sources_without_a_renderer(db):
    newsletter = queue(reachable_clients(1), source="newsletter")
    campaign = queue(reachable_clients(2))
    calls = []

    def by_source(contacts):
        calls.append(sorted(c.pk for c in contacts))
        return {c.pk: ("", "hello") for c in contacts}

    with renderer_registered("campaign", by_source):
        texts = render(reload(newsletter + campaign))

    assert calls == [sorted(c.pk for c in campaign)]
    assert set(texts) == {c.pk for c in campaign}


# Quiet hours ------------------------------------------------------------------------------

def test_quiet_hours_hold_sms_and_pushes_until_they_end(db, run_gateway, renderer):
    gateway = run_gateway()
    contacts = queue(reachable_clients(3)) + queue(reachable_clients(1), channel="app_push")
    evening = dt.datetime(2026, 3, 10, 22, 0, tzinfo=SHANGHAI)

    held = gateway_send_due(now=evening, gateway=gateway.client())
    still_held = gateway_send_due(now=dt.datetime(2026, 3, 11, 8, 29, tzinfo=SHANGHAI),
                                  gateway=gateway.client())

    assert held == {"sent": 0, "failed": 0, "retry": 0, "skipped": 0, "quiet": 4}
    assert still_held["quiet"] == 4
    assert statuses(contacts) == {ContactStatus.QUEUED: 4}
    assert gateway.accepted() == []

    released = gateway_send_due(now=dt.datetime(2026, 3, 11, 8, 30, tzinfo=SHANGHAI),
                                gateway=gateway.client())

    assert (released["sent"], released["quiet"]) == (4, 0)
    assert statuses(contacts) == {ContactStatus.SENT: 4}


def test_a_channel_outside_the_policy_s_quiet_hours_is_sent_during_them(
        db, run_gateway, renderer):
    ContactPolicy.objects.update_or_create(pk=1, defaults={
        "caps": DEFAULT_POLICY["caps"],
        "quiet_hours": {**DEFAULT_POLICY["quiet_hours"], "channels": ["sms"]}})
    gateway = run_gateway()
    sms = queue(reachable_clients(1))
    push = queue(reachable_clients(1), channel="app_push")

    counts = gateway_send_due(now=dt.datetime(2026, 3, 10, 23, 0, tzinfo=SHANGHAI),
                              gateway=gateway.client())

    assert (counts["sent"], counts["quiet"]) == (1, 1)
    assert statuses(sms) == {ContactStatus.QUEUED: 1}
    assert statuses(push) == {ContactStatus.SENT: 1}


@pytest.mark.parametrize(("start", "end", "local", "quiet"), [
    ("21:00", "08:30", "21:00", True), ("21:00", "08:30", "23:59", True),
    ("21:00", "08:30", "00:00", True), ("21:00", "08:30", "08:29", True),
    ("21:00", "08:30", "08:30", False), ("21:00", "08:30", "20:59", False),
    ("12:00", "14:00", "13:00", True), ("12:00", "14:00", "14:00", False),
    ("12:00", "12:00", "12:00", False),
])
def test_quiet_hours_are_read_in_shanghai_time_and_may_cross_midnight(start, end, local, quiet):
    hours = {"start": start, "end": end, "channels": ["sms"], "timezone": "Asia/Shanghai"}
    at = dt.datetime.combine(DAYTIME.date(), dt.time.fromisoformat(local), tzinfo=SHANGHAI)

    assert in_quiet_hours(hours, "sms", at.astimezone(dt.UTC)) is quiet
    assert in_quiet_hours(hours, "app_push", at) is False


# Consent and opt-outs at send time --------------------------------------------------------

def test_an_opt_out_or_a_withdrawn_consent_since_queueing_skips_the_contact(
        db, run_gateway, renderer):
    gateway = run_gateway()
    opted, withdrawn, no_phone, fine = reachable_clients(4)
    contacts = queue([opted, withdrawn, no_phone, fine])
    OptOut.objects.create(client=opted, channel="sms", source="reply TD")
    withdrawn.consent_sms = False
    withdrawn.save(update_fields=["consent_sms"])
    no_phone.phone = ""
    no_phone.save(update_fields=["phone"])

    counts = gateway_send_due(now=DAYTIME, gateway=gateway.client())

    assert (counts["sent"], counts["skipped"]) == (1, 3)
    assert [(c.status, c.error) for c in reload(contacts)] == [
        (ContactStatus.SKIPPED, "opted out at send time"),
        (ContactStatus.SKIPPED, "no consent at send time"),
        (ContactStatus.SKIPPED, "no phone number at send time"),
        (ContactStatus.SENT, "")]
    assert set(gateway.accepted_ids()) == {contacts[3].pk}


def test_an_sms_opt_out_holds_for_pushes_only_when_it_is_theirs(db, run_gateway, renderer):
    gateway = run_gateway()
    client = reachable_clients(1)[0]
    sms = queue([client])
    push = queue([client], channel="app_push", step=1)
    OptOut.objects.create(client=client, channel="sms")

    gateway_send_due(now=DAYTIME, gateway=gateway.client())

    assert statuses(sms) == {ContactStatus.SKIPPED: 1}
    assert statuses(push) == {ContactStatus.SENT: 1}


# Gateway trouble --------------------------------------------------------------------------

def test_a_gateway_answering_503_now_and_then_leads_to_retries_and_all_are_sent(
        db, run_gateway, renderer):
    gateway = run_gateway(fail_every=4)
    contacts = queue(reachable_clients(12))

    total = send_until_done(gateway.client())

    assert total["retry"] >= 3
    assert statuses(contacts) == {ContactStatus.SENT: 12}
    assert gateway.accepted_ids() == Counter({c.pk: 1 for c in contacts})
    retried = [c for c in reload(contacts) if c.attempts > 1]
    assert retried and all(c.error == "" and c.next_attempt_at is None for c in retried)


def test_a_retry_waits_for_its_backoff_and_the_rest_of_the_batch_is_handed_back(
        db, run_gateway, renderer):
    gateway = run_gateway(fail_every=2)
    first, second, third = queue(reachable_clients(3))

    counts = gateway_send_due(now=DAYTIME, gateway=gateway.client())

    assert counts == {"sent": 1, "failed": 0, "retry": 2, "skipped": 0, "quiet": 0}
    first, second, third = reload([first, second, third])
    assert first.status == ContactStatus.SENT
    assert (second.status, second.attempts, second.claimed_at) == (ContactStatus.QUEUED, 1, None)
    assert second.next_attempt_at == DAYTIME + dt.timedelta(minutes=1)
    assert "HTTP 503" in second.error
    assert (third.attempts, third.next_attempt_at) == (0, DAYTIME + dt.timedelta(minutes=1))
    assert gateway_send_due(now=DAYTIME + dt.timedelta(seconds=59),
                            gateway=gateway.client())["sent"] == 0


def test_a_gateway_that_stays_down_fails_the_contact_after_five_attempts(db, renderer):
    down = HttpGateway("http://127.0.0.1:9/", KEY, retries=0, timeout=1)
    contact = queue(reachable_clients(1))[0]
    now = DAYTIME
    for attempt in range(1, 6):
        gateway_send_due(now=now, gateway=down)
        contact.refresh_from_db()
        assert contact.attempts == attempt
        now += dt.timedelta(hours=1)

    assert contact.status == ContactStatus.FAILED
    assert "cannot connect" in contact.error and "after 5 attempts" in contact.error


def test_a_contact_cancelled_during_a_pass_stays_cancelled_when_the_gateway_is_down(db):
    contacts = queue(reachable_clients(2))

    def cancel_first_while_rendering(batch):
        Contact.objects.filter(pk=contacts[0].pk).update(status=ContactStatus.CANCELLED)
        return message_text(batch)

    with renderer_registered("campaign", cancel_first_while_rendering):
        counts = gateway_send_due(now=DAYTIME, gateway=HttpGateway(
            "http://127.0.0.1:9/", KEY, retries=0, timeout=1))

    assert counts["retry"] == 2
    assert [c.status for c in reload(contacts)] == [ContactStatus.CANCELLED,
                                                    ContactStatus.QUEUED]


def test_a_wrong_key_fails_the_contacts_permanently(db, run_gateway, renderer):
    gateway = run_gateway()
    contacts = queue(reachable_clients(3))

    counts = gateway_send_due(now=DAYTIME, gateway=gateway.client(key="not-the-key"))

    assert (counts["failed"], counts["retry"]) == (3, 0)
    assert {(c.status, c.attempts, c.next_attempt_at) for c in reload(contacts)} == {
        (ContactStatus.FAILED, 1, None)}
    assert all(c.error.startswith("HTTP 401") for c in reload(contacts))
    assert gateway.accepted() == []


# Claims -----------------------------------------------------------------------------------

def test_a_dead_worker_s_stale_claims_are_taken_over_and_live_claims_left_alone(
        db, run_gateway, renderer):
    gateway = run_gateway()
    stale = queue(reachable_clients(2), claimed_at=DAYTIME - dt.timedelta(minutes=11))
    live = queue(reachable_clients(2), claimed_at=DAYTIME - dt.timedelta(minutes=2))

    # A fixed daytime: at 21:00 or later in Shanghai the quiet hours would hold everything.
    counts = gateway_send_due(now=DAYTIME, gateway=gateway.client())

    assert counts["sent"] == 2
    assert statuses(stale) == {ContactStatus.SENT: 2}
    assert statuses(live) == {ContactStatus.QUEUED: 2}
    assert set(gateway.accepted_ids()) == {c.pk for c in stale}


def test_a_pass_claims_at_most_its_limit(db, run_gateway, renderer):
    gateway = run_gateway()
    contacts = queue(reachable_clients(5))

    counts = gateway_send_due(limit=3, now=DAYTIME, gateway=gateway.client())

    assert counts["sent"] == 3
    assert statuses(contacts) == {ContactStatus.SENT: 3, ContactStatus.QUEUED: 2}


def test_a_backlog_goes_out_service_messages_first_then_by_priority(db, run_gateway, renderer):
    gateway = run_gateway()
    low, high = queue(reachable_clients(1), priority=7), queue(reachable_clients(1), priority=2)
    service = queue(reachable_clients(1), priority=9, exempt=True)

    for _ in range(3):
        gateway_send_due(limit=1, now=DAYTIME, gateway=gateway.client())

    assert [e["message"]["id"] for e in gateway.accepted()] == [
        service[0].pk, high[0].pk, low[0].pk]


def test_the_minute_task_runs_passes_until_nothing_is_due(
        no_quiet_hours, settings, run_gateway, renderer):
    gateway = run_gateway()
    settings.SMS_GATEWAY_URL, settings.SMS_GATEWAY_KEY = gateway.url, KEY
    contacts = queue(reachable_clients(7))

    result = gateway_send_due_task.delay(limit=3).get()

    assert (result["sent"], result["quiet"]) == (7, 0)
    assert statuses(contacts) == {ContactStatus.SENT: 7}


def test_beat_runs_the_task_every_minute(db):
    row = PeriodicTask.objects.get(task=gateway_send_due_task.name)

    assert (row.enabled, row.interval.every, row.interval.period) == (True, 1, "minutes")


# A worker killed mid-send -----------------------------------------------------------------

WORKER = """
import django
django.setup()
from outreach.channels.render import register_renderer
from outreach.channels.sender import gateway_send_due
from tests.outreach.test_sms_sender import message_text
register_renderer("campaign", message_text)
while sum(gateway_send_due(limit=25).values()):
    pass
"""


def start_worker(gateway: RunningGateway) -> subprocess.Popen:
    """The sender in its own process, on this test's database (committed rows:
    transactional_db)."""
    db = connection.settings_dict
    database_url = (f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST'] or '127.0.0.1'}:"
                    f"{db['PORT'] or 5432}/{db['NAME']}")
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"}
    env.update({"DJANGO_SETTINGS_MODULE": "config.settings.test", "DATABASE_URL": database_url,
                "SMS_GATEWAY_URL": gateway.url, "SMS_GATEWAY_KEY": KEY})
    return subprocess.Popen([sys.executable, "-c", WORKER], cwd=django_settings.BASE_DIR,
                            env=env)


def kill_after(worker: subprocess.Popen, gateway: RunningGateway, accepted: int) -> None:
    wait_for(lambda: len(gateway.accepted()) >= accepted or worker.poll() is not None,
             timeout=60, interval=0.01)
    assert worker.poll() is None, "the worker finished before it could be killed"
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait(timeout=10)


def dead_workers_claims_go_stale() -> None:
    Contact.objects.filter(status=ContactStatus.QUEUED, claimed_at__isnull=False).update(
        claimed_at=F("claimed_at") - dt.timedelta(minutes=11))


def test_a_sender_killed_mid_send_loses_nothing_and_repeats_at_most_one_per_kill(
        transactional_db, no_quiet_hours, run_gateway, renderer):
    if connection.vendor != "postgresql":
        _unavailable("another process needs a database it can share (PostgreSQL)")
    gateway = run_gateway(delay=0.01)
    contacts = queue(reachable_clients(150))

    kills = 0
    for accepted in (30, 80):
        worker = start_worker(gateway)
        kill_after(worker, gateway, accepted)
        kills += 1
        assert Contact.objects.filter(status=ContactStatus.QUEUED).exists()
        dead_workers_claims_go_stale()
    worker = start_worker(gateway)
    assert worker.wait(timeout=120) == 0

    assert statuses(contacts) == {ContactStatus.SENT: 150}
    sent = gateway.accepted_ids()
    assert set(sent) == {c.pk for c in contacts}
    assert sum(n - 1 for n in sent.values()) <= kills
    last_provider_id = {e["message"]["id"]: f"gw-{e['n']}" for e in gateway.accepted()}
    assert {c.pk: c.provider_id for c in reload(contacts)} == last_provider_id


# Delivery receipts ------------------------------------------------------------------------

@use_gateway_urls
def test_receipts_posted_by_the_gateway_mark_contacts_delivered_or_failed(
        transactional_db, live_server, settings, run_gateway, renderer):
    settings.SMS_GATEWAY_KEY = KEY
    gateway = run_gateway(receipts=True, receipt_interval=0.2)
    # The dev gateway reports a number ending in 0000 as an unknown subscriber.
    clients = [ClientFactory(consent_sms=True, phone=f"1380000{i:04d}") for i in range(1, 5)]
    clients += reachable_clients(1, phone="13900000000")
    contacts = queue(clients)
    callback = live_server.url + reverse("gateway:receipts")
    assert callback.endswith(RECEIPTS_PATH)

    counts = gateway_send_due(now=DAYTIME, gateway=gateway.client(callback_url=callback))
    assert counts["sent"] == 5

    wait_for(lambda: not Contact.objects.filter(status=ContactStatus.SENT).exists(), timeout=20,
             interval=0.1)
    done = reload(contacts)
    assert [c.status for c in done] == [ContactStatus.DELIVERED] * 4 + [ContactStatus.FAILED]
    assert done[-1].error == "not delivered: unknown subscriber"


def post_receipts(payload, *, key: str = KEY, headers: dict | None = None,
                  body: bytes | None = None):
    body = json.dumps(payload).encode() if body is None else body
    headers = signed_headers(key, body) if headers is None else headers
    return HttpClient().post(RECEIPTS_PATH, data=body, content_type="application/json",
                             headers={k: v for k, v in headers.items() if k != "Content-Type"})


@pytest.fixture
def sent_contact(db, settings):
    settings.SMS_GATEWAY_KEY = KEY
    return queue(reachable_clients(1), status=ContactStatus.SENT, provider_id="gw-7")[0]


def receipt(contact, **fields) -> dict:
    return {"id": contact.pk, "provider_id": "gw-7", "status": "delivered",
            "at": "2026-03-10T10:00:05+08:00", **fields}


@use_gateway_urls
def test_a_forged_or_missing_signature_is_401_and_changes_nothing(sent_contact):
    payload = {"receipts": [receipt(sent_contact)]}

    forged = post_receipts(payload, key="forged-key")
    unsigned = post_receipts(payload, headers={})

    assert (forged.status_code, unsigned.status_code) == (401, 401)
    assert forged.json()["error"]["code"] == "bad_signature"
    assert statuses([sent_contact]) == {ContactStatus.SENT: 1}


@use_gateway_urls
def test_a_malformed_receipt_is_400_naming_the_field(sent_contact):
    response = post_receipts({"receipts": [receipt(sent_contact),
                                           receipt(sent_contact, status="lost")]})

    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == ["receipts[1].status"]
    assert statuses([sent_contact]) == {ContactStatus.SENT: 1}


@use_gateway_urls
def test_a_body_that_is_not_json_is_400_naming_the_body(sent_contact):
    response = post_receipts(None, body=b"receipts=1")

    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == ["body"]


@use_gateway_urls
def test_a_body_over_a_megabyte_is_413(sent_contact):
    response = post_receipts(None, body=b" " * (1024 * 1024 + 1))

    assert response.status_code == 413


@use_gateway_urls
def test_receipts_are_taken_by_post_only(sent_contact):
    assert HttpClient().get(RECEIPTS_PATH).status_code == 405


@use_gateway_urls
def test_a_receipt_for_another_provider_id_is_ignored_and_counted(sent_contact):
    other = queue(reachable_clients(1), status=ContactStatus.SENT, provider_id="gw-8", step=1)[0]

    response = post_receipts({"receipts": [
        receipt(sent_contact, provider_id="gw-999"),
        receipt(other, provider_id="gw-8"),
        {**receipt(sent_contact), "id": 10**9}]})

    assert response.status_code == 200
    assert response.json() == {"updated": 1, "ignored": 2}
    assert statuses([sent_contact]) == {ContactStatus.SENT: 1}
    assert statuses([other]) == {ContactStatus.DELIVERED: 1}


@use_gateway_urls
def test_receipts_never_downgrade_a_contact_that_got_further(sent_contact):
    Contact.objects.filter(pk=sent_contact.pk).update(status=ContactStatus.RESPONDED)

    delivered = post_receipts({"receipts": [receipt(sent_contact)]})
    failed = post_receipts({"receipts": [receipt(sent_contact, status="failed", error="x")]})

    assert delivered.json() == failed.json() == {"updated": 0, "ignored": 1}
    assert statuses([sent_contact]) == {ContactStatus.RESPONDED: 1}


@use_gateway_urls
def test_a_failed_receipt_fails_a_sent_contact_with_its_error(sent_contact):
    response = post_receipts({"receipts": [receipt(sent_contact, status="failed",
                                                   error="number suspended")]})

    assert response.json() == {"updated": 1, "ignored": 0}
    contact = reload([sent_contact])[0]
    assert (contact.status, contact.error) == (ContactStatus.FAILED,
                                               "not delivered: number suspended")

