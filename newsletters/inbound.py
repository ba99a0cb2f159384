"""What comes back from a client: unsubscribes, ratings, comments and email replies.

Each comment, reply and low rating becomes a follow-up task for the client's RM; the task's
origin (type, id) is unique, so a repeated request or a re-ingested reply never makes two.
"""

import email
import email.policy
import hashlib
import re

from django.db import transaction

from core.models import AuditAction
from core.services import audit_record
from outreach.models import RMTask, TaskSource
from outreach.services import task_create

from .dispatch import suppression_add
from .models import ContactSource, Delivery, Feedback, Suppression, with_editions

LOW_RATING = 2
AUDIT_UNSUBSCRIBE = AuditAction.NEWSLETTER_UNSUBSCRIBE
ORIGIN_COMMENT = "newsletters.feedback"
ORIGIN_RATING = "newsletters.rating"
ORIGIN_REPLY = "newsletters.reply"
_MESSAGE_ID = re.compile(r"<[^<>\s]+>")
_QUOTE_HEADER = re.compile(r"^(On .+ wrote:|在.+写道[:：]|-{2,}\s*Original Message\s*-{2,}|"
                           r"-{2,}\s*原始邮件\s*-{2,}|From: .+)$", re.IGNORECASE)


def unsubscribe(*, delivery: Delivery, one_click: bool = False, request=None) -> Suppression:
    """The client no longer gets this publication; idempotent, audited when it changes."""
    suppression, created = suppression_add(
        client_id=delivery.client_id, publication_id=delivery.edition.publication_id,
        reason=Suppression.UNSUBSCRIBED, source_delivery_id=delivery.pk)
    if created:
        audit_record(action=AUDIT_UNSUBSCRIBE, object_type="client",
                     object_id=delivery.client.client_no, request=request,
                     detail={"publication": delivery.edition.publication.slug,
                             "edition": delivery.source_id, "delivery": delivery.pk,
                             "one_click": one_click})
    return suppression


def _title(delivery: Delivery, what: str) -> str:
    """Language-neutral: names and numbers only; the source field says what kind it is."""
    edition = delivery.edition
    return f"{edition.publication.name} #{edition.number} · {delivery.client.name} · {what}"[:200]


def _task(*, delivery: Delivery, source: str, origin_type: str, origin_id: str, what: str,
          detail: str) -> RMTask:
    """The client's RM gets a task, once per origin (outreach.services.task_create)."""
    client = delivery.client
    return task_create(assignee=client.rm if client.rm_id else None, client=client,
                       title=_title(delivery, what), detail=detail, source=source,
                       origin_type=origin_type, origin_id=origin_id)


def feedback_rate(*, delivery: Delivery, rating: int) -> int:
    """Record the rating (1-5); one rating per delivery, the latest wins. ≤2 → an RM task."""
    if not 1 <= int(rating) <= 5:
        raise ValueError("rating must be 1..5")
    with transaction.atomic():
        Delivery.objects.select_for_update().filter(pk=delivery.pk).first()
        row = (Feedback.objects.filter(delivery=delivery, is_reply=False, rating__isnull=False)
               .order_by("-created_at", "-id").first())
        if row is None:
            row = Feedback.objects.create(delivery=delivery, rating=rating)
        elif row.rating != rating:
            row.rating = rating
            row.save(update_fields=["rating"])
        if rating <= LOW_RATING:
            _task(delivery=delivery, source=TaskSource.NEWSLETTER_RATING,
                  origin_type=ORIGIN_RATING, origin_id=str(row.pk), what=f"★{rating}/5",
                  detail=f"★{rating}/5 — {delivery.edition.subject}")
    return rating


def feedback_comment(*, delivery: Delivery, comment: str) -> Feedback:
    """A comment from the form: kept, and a follow-up task for the client's RM."""
    comment = (comment or "").strip()[:4000]
    with transaction.atomic():
        feedback = Feedback.objects.create(delivery=delivery, comment=comment)
        _task(delivery=delivery, source=TaskSource.NEWSLETTER_COMMENT,
              origin_type=ORIGIN_COMMENT, origin_id=str(feedback.pk),
              what=f"“{comment[:60]}”", detail=comment)
    return feedback


def _referenced_ids(message) -> list[str]:
    found = []
    for header in ("In-Reply-To", "References"):
        for value in message.get_all(header, []):
            found += _MESSAGE_ID.findall(str(value))
    return list(dict.fromkeys(reversed(found)))  # the nearest parent first


def _reply_text(message) -> str:
    part = message.get_body(preferencelist=("plain",))
    if part is None:
        part = message.get_body(preferencelist=("html",))
        if part is None:
            return ""
        text = re.sub(r"<[^>]+>", " ", part.get_content())
    else:
        text = part.get_content()
    kept = []
    for line in text.splitlines():
        if line.startswith(">") or _QUOTE_HEADER.match(line.strip()):
            break
        kept.append(line)
    return "\n".join(kept).strip()[:4000]


def reply_ingest(*, raw_message_bytes: bytes) -> Feedback | None:
    """An email reply to a newsletter → Feedback(is_reply) + an RM task; None if it answers
    nothing we sent. Ingesting the same reply twice records it once."""
    message = email.message_from_bytes(raw_message_bytes, policy=email.policy.default)
    referenced = _referenced_ids(message)
    if not referenced:
        return None
    deliveries = {d.message_id: d for d in Delivery.objects.select_related("client").filter(
        message_id__in=referenced, source=ContactSource.NEWSLETTER)}
    delivery = next((deliveries[m] for m in referenced if m in deliveries), None)
    if delivery is None or with_editions([delivery])[0].edition is None:
        return None
    own_id = str(message.get("Message-ID") or "").strip() or hashlib.sha256(
        raw_message_bytes).hexdigest()
    origin_id = hashlib.sha1(own_id.encode()).hexdigest()
    existing = RMTask.objects.filter(origin_type=ORIGIN_REPLY, origin_id=origin_id).first()
    if existing is not None:
        return delivery.feedback.filter(is_reply=True).order_by("-created_at").first()
    text = _reply_text(message)
    with transaction.atomic():
        feedback = Feedback.objects.create(delivery=delivery, comment=text, is_reply=True)
        _task(delivery=delivery, source=TaskSource.NEWSLETTER_REPLY, origin_type=ORIGIN_REPLY,
              origin_id=origin_id, what=f"✉ “{text[:60]}”",
              detail=f"{message.get('Subject', '')}\n\n{text}".strip())
    return feedback
