"""The email outbox and its one dispatcher, for newsletters and campaigns alike.

The outbox (outreach.models.Delivery) is the job: every row says what happened to one message
to one client, from a source (a newsletter edition, a campaign's email step). Workers claim due
rows with row locks that skip locked rows, so any number of them share one source; each
message is marked sent right after the SMTP server accepted it and before the next one goes
out, so a killed worker loses nothing and repeats at most the one message it had in flight.

    sources.py    what each source supplies: its state, its renderer, what happens when done
    outbox.py     claim, hand back stale claims, cancel, settle the contact ledger
    run.py        the worker's loop: claim, render, send, mark
    smtp.py       one connection per chunk; a message sent in two halves
    marks.py      sent / retry / failed / bounced
    ratelimit.py  messages per second and per hour, shared through Redis
    tasks.py      the Celery task that runs the loop for one source
"""
