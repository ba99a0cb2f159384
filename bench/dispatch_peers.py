"""What bench.dispatch measures the product against, on the same sink and the same message.

Each function sends `n` copies of one product message (rendered once by the product, byte for
byte what a worker sent) and returns the seconds from the first step it times until the sink
counted the n-th message. The peers get the message already rendered: their best case.

    smtplib_bare        plain smtplib, one reused connection, nothing recorded
    smtplib_durable     the same plus one durable PostgreSQL commit per message (an UPDATE of
                        the message's row, committed with synchronous_commit = on before the
                        next message): the simple way to exactly-once with durable marks
    post_office_*       django-post-office 3.12: mail.send_many (bulk queue) then
                        send_queued_mail_until_done, its batch settings in
                        bench/settings_dispatch.py
    mailer_queue_send   django-mailer 2.3: send_html_mail per message, then engine.send_all()
"""

from __future__ import annotations

import logging
import smtplib
import time
from dataclasses import dataclass

MARKS_TABLE = "bench_dispatch_marks"


@dataclass
class Sample:
    raw: bytes
    subject: str
    text: str
    html: str
    from_email: str
    reply_to: str
    headers: dict


def sample_from(edition_id: int) -> Sample:
    """One product message of the edition the product just sent."""
    from newsletters import rendering
    from newsletters.models import Delivery, with_editions

    delivery = (Delivery.objects.filter(status="sent", source="newsletter", source_id=edition_id)
                .select_related("client__rm").first())
    edition = with_editions([delivery])[0].edition
    context = rendering.delivery_context(edition=edition, client=delivery.client)
    rendered = rendering.render_edition(edition=edition, context=context, delivery=delivery)
    message = rendering.build_message(delivery=delivery, rendered=rendered)
    raw = rendering.message_bytes(delivery=delivery, rendered=rendered)[2]
    headers = dict(rendered.headers)
    return Sample(raw=raw, subject=rendered.subject, text=rendered.text, html=rendered.html,
                  from_email=message.from_email, reply_to=edition.publication.reply_to,
                  headers=headers)


def _recipient(i: int) -> str:
    return f"c{i}@bench.example"


def smtplib_bare(sink, n: int, sample: Sample) -> float:
    sink.reset()
    t0 = time.perf_counter()
    smtp = smtplib.SMTP("127.0.0.1", sink.port)
    for i in range(n):
        smtp.sendmail("insight@broker.example", [_recipient(i)], sample.raw)
    smtp.quit()
    return sink.wait_for(n) - t0


def _marks_connection(dsn: str, n: int):
    import psycopg2

    conn = psycopg2.connect(dsn)
    with conn.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS {MARKS_TABLE}")
        cur.execute(f"CREATE TABLE {MARKS_TABLE} (id integer PRIMARY KEY, "
                    "status varchar(16) NOT NULL DEFAULT 'pending', sent_at timestamptz)")
        cur.execute(f"INSERT INTO {MARKS_TABLE} (id) SELECT generate_series(1, %s)", [n])
        cur.execute("SET synchronous_commit TO on")
    conn.commit()
    return conn


def commit_cost_ms(dsn: str, count: int = 1000) -> float:
    """Milliseconds per durable commit of one row's mark on this machine, alone."""
    conn = _marks_connection(dsn, count)
    t0 = time.perf_counter()
    with conn.cursor() as cur:
        for i in range(1, count + 1):
            cur.execute(f"UPDATE {MARKS_TABLE} SET status = 'sent', sent_at = now() "
                        "WHERE id = %s", [i])
            conn.commit()
    seconds = time.perf_counter() - t0
    conn.close()
    return seconds / count * 1000


def smtplib_durable(sink, n: int, sample: Sample, dsn: str) -> float:
    conn = _marks_connection(dsn, n)
    sink.reset()
    t0 = time.perf_counter()
    smtp = smtplib.SMTP("127.0.0.1", sink.port)
    with conn.cursor() as cur:
        for i in range(n):
            smtp.sendmail("insight@broker.example", [_recipient(i)], sample.raw)
            cur.execute(f"UPDATE {MARKS_TABLE} SET status = 'sent', sent_at = now() "
                        "WHERE id = %s", [i + 1])
            conn.commit()
    smtp.quit()
    conn.close()
    return sink.wait_for(n) - t0


def _post_office_queue(n: int, sample: Sample) -> None:
    from post_office import mail

    batch = 1000
    for start in range(0, n, batch):
        mail.send_many([
            {"recipients": [_recipient(i)], "sender": sample.from_email,
             "subject": sample.subject, "message": sample.text, "html_message": sample.html,
             "headers": {**sample.headers, "Reply-To": sample.reply_to}}
            for i in range(start, min(n, start + batch))])


def _post_office_clear() -> None:
    from post_office.models import Email, Log

    Log.objects.all().delete()
    Email.objects.all().delete()


def _post_office_send(processes: int) -> None:
    from django.conf import settings
    from post_office.mail import logger, send_queued_mail_until_done

    logger.setLevel(logging.WARNING)  # it configures itself at INFO: a line per batch

    send_queued_mail_until_done(lockfile=str(settings.VAR_DIR / "bench-dispatch-post-office"),
                                processes=processes)


def post_office_queue_send(sink, n: int, sample: Sample, processes: int = 1) -> float:
    _post_office_clear()
    sink.reset()
    t0 = time.perf_counter()
    _post_office_queue(n, sample)
    _post_office_send(processes)
    return sink.wait_for(n) - t0


def post_office_send_only(sink, n: int, sample: Sample, processes: int = 2) -> float:
    _post_office_clear()
    _post_office_queue(n, sample)
    sink.reset()
    t0 = time.perf_counter()
    _post_office_send(processes)
    return sink.wait_for(n) - t0


def mailer_queue_send(sink, n: int, sample: Sample) -> float:
    import mailer
    from mailer import engine
    from mailer.models import Message, MessageLog

    Message.objects.all().delete()
    MessageLog.objects.all().delete()
    sink.reset()
    t0 = time.perf_counter()
    for i in range(n):
        mailer.send_html_mail(sample.subject, sample.text, sample.html, sample.from_email,
                              [_recipient(i)], headers={**sample.headers,
                                                        "Reply-To": sample.reply_to})
    engine.send_all()
    return sink.wait_for(n) - t0
