"""Demo newsletters for `make run`: two publications, editions sent through the real outbox
(written as .eml files without EMAIL_URL) with opens, clicks, ratings, a comment and an
unsubscribe, one edition scheduled for tomorrow and one draft.

Every step is the product's own service: ops composes and submits, compliance approves (the
approval hash is stored), ops sends. Called by `demo_setup` (every app's `demo.demo_extend`);
run again, it adds nothing (publications are looked up by their codes)."""

from collections.abc import Callable
from datetime import datetime, time, timedelta

from django.db import transaction
from django.utils import timezone

from clients.models import Client
from core.models import User
from segments.models import Segment
from segments.services import segment_create

from . import inbound
from .models import Delivery, DeliveryStatus, Publication, with_editions
from .services import (
    edition_approve,
    edition_create,
    edition_schedule,
    edition_send_now,
    edition_submit,
    publication_create,
)

AUDIENCE_CODE = "demo-newsletter-readers"
AUDIENCE_SIZE = 80


def _editorial(title: str, body: str) -> dict:
    return {"kind": "editorial", "title": title, "body": body}


_WEEKLY = [
    ("本周市场观点：利率平稳，信用利差收窄", [
        _editorial("市场概览", "本周债市整体**平稳**，央行公开市场操作净投放。"
                   "[研究全文](https://research.broker.example/weekly/1)"),
        {"kind": "holdings", "title": "您的持仓", "data": {"intro": "截至上周末您的主要持仓：",
                                                        "top_n": 5}},
    ]),
    ("本周市场观点：关注季末流动性", [
        _editorial("市场概览", "季末临近，资金面或有波动，建议关注短久期品种。"
                   "[研究全文](https://research.broker.example/weekly/2)"),
        {"kind": "rm_note", "title": "客户经理寄语",
         "data": {"fallback": "如需调整配置，欢迎随时联系您的客户经理。"}},
    ]),
]


def demo_extend(*, log: Callable[[str], None] = print) -> None:
    if Publication.objects.filter(slug="demo-weekly").exists():
        return
    ops = User.objects.get(username="ops")
    compliance = User.objects.get(username="compliance")
    audience = _audience(ops)
    weekly = publication_create(
        actor=ops, name="每周市场观点", slug="demo-weekly", audience=audience,
        from_name="研究所", from_email="insight@broker.example",
        reply_to="replies@broker.example", tracking_enabled=True,
        description="每周一早上发送的市场观点与持仓回顾。")
    sent = []
    for subject, sections in _WEEKLY:
        edition = edition_create(publication=weekly, subject=subject, sections=sections,
                                 preheader="利率、信用与您的持仓", author=ops)
        edition_submit(edition=edition, actor=ops)
        edition_approve(edition=edition, actor=compliance, comment="内容合规，同意发送。")
        sent.append(edition_send_now(edition=edition, actor=ops))
    upcoming = edition_create(publication=weekly, subject="下周市场观点（定时发送）",
                              sections=[_editorial("市场概览", "定时发送的一期：审批后排期。")],
                              author=ops)
    edition_submit(edition=upcoming, actor=ops)
    edition_approve(edition=upcoming, actor=compliance)
    tomorrow = timezone.localdate() + timedelta(days=1)
    edition_schedule(edition=upcoming, actor=ops, at=timezone.make_aware(
        datetime.combine(tomorrow, time(8, 30))))
    edition_create(publication=weekly, subject="草稿：年度策略展望",
                   sections=[_editorial("年度展望", "撰写中……")], author=ops)
    # After the dispatch the sends queued on commit (eager without a broker): readers react to
    # what was delivered.
    transaction.on_commit(lambda: _after_sending(sent, log))


def _after_sending(sent, log) -> None:
    for edition in sent:
        _reactions(edition)
    log(f"Sent {len(sent)} demo newsletter editions "
        f"({sum(e.deliveries.filter(status=DeliveryStatus.SENT).count() for e in sent)} messages).")


def _audience(ops) -> Segment:
    existing = Segment.objects.filter(code=AUDIENCE_CODE).first()
    if existing is not None:
        return existing
    readers = (Client.objects.filter(rm__username__in=("rm", "rm2"), consent_email=True)
               .exclude(email="").order_by("-aum").values_list("client_no", flat=True))
    return segment_create(code=AUDIENCE_CODE, kind="static", name_zh="简报读者（演示）",
                          name_en="Newsletter readers (demo)",
                          client_nos=list(readers[:AUDIENCE_SIZE]), actor=ops)


def _reactions(edition) -> None:
    """What readers did, through the same code paths as the public links."""
    ids = list(edition.deliveries.filter(status=DeliveryStatus.SENT)
               .order_by("id").values_list("id", flat=True))
    if not ids:
        return
    now = timezone.now()
    opened, clicked = ids[: len(ids) * 3 // 5], ids[: len(ids) // 5]
    Delivery.objects.filter(pk__in=opened).update(opened_at=now)
    Delivery.objects.filter(pk__in=clicked).update(clicked_at=now, clicks=1)
    def delivery(pk):
        return with_editions([Delivery.objects.select_related("client").get(pk=pk)])[0]

    for n, pk in enumerate(ids[:8]):
        inbound.feedback_rate(delivery=delivery(pk), rating=(5, 4, 5, 3, 4)[n % 5])
    inbound.feedback_comment(delivery=delivery(ids[1]),
                             comment="持仓部分很有用，想了解一下短债基金。")
    # A different reader per edition: one unsubscribe per edition in its statistics.
    inbound.unsubscribe(delivery=delivery(ids[-edition.number]))
