"""Throughput of the SMS sender vs a bare keep-alive urllib3 loop, same payloads, same gateway.

    cd /work/main && DATABASE_URL=postgres://crm:crm@127.0.0.1:5432/crm_sms \
        .venv/bin/python -m bench.sms --messages 2000 --reps 3

The database on DATABASE_URL is migrated if needed and gets --messages bench clients (client_no
"SMSB…", SMS consent, a phone) with one queued SMS contact each (source "campaign", source_id
999999). A local dev gateway (outreach.channels.devgateway, no log, no delay) takes both:

  sender  gateway_send_due(limit=--messages) end to end: claim + consent re-check, render,
          post one at a time, one durable UPDATE per sent message handed to PostgreSQL before
          the next post (its commit overlaps the next round trip)
  sender-inline-marks  the same, each mark's commit awaited before the next post
  bare    the very same JSON bodies (what the sender posted), signed per request, POSTed over
          one keep-alive urllib3 connection pool; nothing read or written in the database
Before every sender rep the contacts are put back to queued. Reps alternate the order.
"""

import argparse
import datetime as dt
import json
import os
import statistics
import time
from decimal import Decimal

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

import django  # noqa: E402

django.setup()

import urllib3  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402

from clients.models import Client  # noqa: E402
from core.models import Branch  # noqa: E402
from outreach.channels import sender as sender_module  # noqa: E402
from outreach.channels.devgateway import start_gateway, stop_gateway  # noqa: E402
from outreach.channels.gateway import GatewayMessage, HttpGateway, signed_headers  # noqa: E402
from outreach.channels.render import register_renderer  # noqa: E402
from outreach.channels.sender import gateway_send_due  # noqa: E402
from outreach.models import Contact, ContactPolicy  # noqa: E402
from outreach.selectors import DEFAULT_POLICY  # noqa: E402

KEY = "bench-key"
SOURCE_ID = 999_999


def text(contacts):
    return {c.pk: ("", f"【华信证券】{c.client.name}您好：您关注的产品今日开放申购，"
                       "详询您的客户经理。回TD退订") for c in contacts}


def setup(n: int) -> list[int]:
    call_command("migrate", verbosity=0)
    ContactPolicy.objects.update_or_create(pk=1, defaults={
        "caps": DEFAULT_POLICY["caps"],
        "quiet_hours": {**DEFAULT_POLICY["quiet_hours"], "channels": []}})
    branch, _ = Branch.objects.get_or_create(code="SMSB",
                                             defaults={"name": "bench", "city": "上海"})
    have = Client.objects.filter(client_no__startswith="SMSB").count()
    if have < n:
        Client.objects.bulk_create([
            Client(client_no=f"SMSB{i:07d}", name=f"客户{i}", gender="F",
                   birth_date=dt.date(1980, 1, 1), phone=f"139{i:08d}",
                   email=f"b{i}@example.com", city="上海", branch=branch,
                   opened_on=dt.date(2020, 1, 1), risk_level="C3", aum=Decimal("1000"),
                   consent_sms=True)
            for i in range(have, n)], batch_size=1000)
    clients = list(Client.objects.filter(client_no__startswith="SMSB").order_by("id")[:n])
    Contact.objects.filter(source="campaign", source_id=SOURCE_ID).delete()
    Contact.objects.bulk_create([
        Contact(client=c, source="campaign", source_id=SOURCE_ID, step=0, channel="sms",
                status="queued", planned_on=dt.date.today()) for c in clients])
    return list(Contact.objects.filter(source="campaign", source_id=SOURCE_ID)
                .values_list("id", flat=True))


def requeue():
    Contact.objects.filter(source="campaign", source_id=SOURCE_ID).update(
        status="queued", claimed_at=None, next_attempt_at=None, attempts=0, provider_id="",
        body="", title="", error="", at=None)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE outreach_contact")


PRODUCT_MARKS = sender_module._sent_marks


def run_sender(url: str, n: int, inline: bool = False) -> float:
    sender_module._sent_marks = sender_module._InlineMarks if inline else PRODUCT_MARKS
    requeue()
    gateway = HttpGateway(url, KEY, retries=0)
    start = time.perf_counter()
    counts = gateway_send_due(limit=n, gateway=gateway)
    elapsed = time.perf_counter() - start
    assert counts["sent"] == n, counts
    gateway.close()
    return elapsed


def bodies(n: int) -> list[bytes]:
    contacts = list(Contact.objects.filter(source="campaign", source_id=SOURCE_ID)
                    .select_related("client").order_by("id"))
    texts = text(contacts)
    return [json.dumps(GatewayMessage(c.pk, "sms", c.client.phone, texts[c.pk][1]).payload(),
                       ensure_ascii=False, separators=(",", ":")).encode() for c in contacts]


def run_bare(url: str, payloads: list[bytes]) -> float:
    pool = urllib3.connection_from_url(url, maxsize=1, retries=False)
    start = time.perf_counter()
    for body in payloads:
        response = pool.urlopen("POST", "/", body=body, headers=signed_headers(KEY, body),
                                retries=False)
        assert response.status == 202, response.status
    elapsed = time.perf_counter() - start
    pool.close()
    return elapsed


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--reps", type=int, default=3)
    options = parser.parse_args()
    n = options.messages
    register_renderer("campaign", text)
    setup(n)
    payloads = bodies(n)
    process, port = start_gateway(key=KEY)
    url = f"http://127.0.0.1:{port}/"
    try:
        run_bare(url, payloads[:200])  # warm up both sides
        names = ["sender", "bare", "sender-inline-marks"]
        results = {name: [] for name in names}
        for rep in range(options.reps):
            order = names[rep % 3:] + names[:rep % 3]
            for name in order:
                if name == "bare":
                    elapsed = run_bare(url, payloads)
                else:
                    elapsed = run_sender(url, n, inline=name != "sender")
                results[name].append(n / elapsed)
                print(f"rep {rep + 1} {name:20s} {n / elapsed:8.0f} msgs/s ({elapsed:.2f} s)",
                      flush=True)
    finally:
        stop_gateway(process)
    bare = statistics.median(results["bare"])
    for name in names:
        median = statistics.median(results[name])
        print(f"median {name:20s} {median:6.0f} msgs/s  ratio to bare {median / bare:.2f}")


if __name__ == "__main__":
    main()
