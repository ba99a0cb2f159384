"""One SMTP connection per chunk, and a message sent in two halves.

`begin` hands the server a whole message (MAIL, RCPT, DATA, the content and the final dot) and
returns without waiting for the server's verdict; `finish` reads it. In between the worker
renders the next client's copy while the server digests this one. The run loop calls
`finish` -- and marks the row -- before it begins the next message, so at any instant at most
one message can have been accepted by the server without its row saying so: a killed worker
repeats at most that one.
"""

import re
import smtplib

from django.core.mail import get_connection
from django.core.mail.backends.smtp import EmailBackend as SMTPBackend

_CRLF = b"\r\n"
_LEADING_DOT = re.compile(rb"(?m)^\.")


def smtp_code(exc: Exception) -> int | None:
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        return codes[0] if codes else None
    return getattr(exc, "smtp_code", None)


class Outcome:
    SENT, RETRY, FAILED, BOUNCED = "sent", "retry", "failed", "bounced"


def classify(exc: Exception) -> tuple[str, str]:
    """What an SMTP error means for the row: bounced (the address is gone), failed (a
    permanent refusal) or retry (4xx, a dropped connection, a timeout)."""
    code = smtp_code(exc)
    text = f"{type(exc).__name__}: {exc}"[:1000]
    if code is not None and 500 <= code < 600:
        if isinstance(exc, smtplib.SMTPRecipientsRefused) and code in (550, 551, 553):
            return Outcome.BOUNCED, text
        return Outcome.FAILED, text
    return Outcome.RETRY, text


def _refuse(smtp: smtplib.SMTP, code: int) -> None:
    """After a refusal: a 421 means the server is closing; anything else resets the
    transaction so the connection can carry the next message (as smtplib.sendmail does)."""
    if code == 421:
        smtp.close()
    else:
        _rset(smtp)


def _rset(smtp: smtplib.SMTP) -> None:
    try:
        smtp.rset()
    except smtplib.SMTPServerDisconnected:
        pass


def begin_transaction(smtp: smtplib.SMTP, envelope_from: str, recipients: list[str],
                      data: bytes) -> None:
    """smtplib.SMTP.sendmail up to and including the final dot, without reading the reply
    to it (read with finish_transaction). The same commands, options and refusals."""
    smtp.ehlo_or_helo_if_needed()
    options = [f"size={len(data)}"] if smtp.does_esmtp and smtp.has_extn("size") else []
    code, response = smtp.mail(envelope_from, options)
    if code != 250:
        _refuse(smtp, code)
        raise smtplib.SMTPSenderRefused(code, response, envelope_from)
    refused = {}
    for recipient in recipients:
        code, response = smtp.rcpt(recipient)
        if code not in (250, 251):
            refused[recipient] = (code, response)
        if code == 421:
            smtp.close()
            raise smtplib.SMTPRecipientsRefused(refused)
    if len(refused) == len(recipients):
        _rset(smtp)
        raise smtplib.SMTPRecipientsRefused(refused)
    smtp.putcmd("data")
    code, response = smtp.getreply()
    if code != 354:
        _refuse(smtp, code)
        raise smtplib.SMTPDataError(code, response)
    quoted = _LEADING_DOT.sub(b"..", data)
    if not quoted.endswith(_CRLF):
        quoted += _CRLF
    smtp.send(quoted + b"." + _CRLF)


def finish_transaction(smtp: smtplib.SMTP) -> None:
    code, response = smtp.getreply()
    if code != 250:
        _refuse(smtp, code)
        raise smtplib.SMTPDataError(code, response)


class Sender:
    """One connection for a chunk; reopened only after the server dropped it.

    With Django's SMTP backend the message goes out as bytes built by
    rendering.message_bytes over the backend's own smtplib connection (same TLS/auth settings)
    in two halves; any other backend (locmem, file, console, a custom one) gets the
    EmailMessage in `begin` and `finish` has nothing to wait for."""

    def __init__(self):
        self.backend = get_connection(fail_silently=False)
        self.is_open = False
        self.raw = isinstance(self.backend, SMTPBackend)
        self.awaiting_reply = False

    def _open(self) -> None:
        if not self.is_open:
            self.backend.open()
            self.is_open = True

    def begin(self, message) -> None:
        if self.awaiting_reply:
            raise RuntimeError("finish() the message in flight before beginning another")
        self._open()
        try:
            if self.raw:
                begin_transaction(self.backend.connection, *message)
                self.awaiting_reply = True
                return
            message.connection = self.backend
            sent = self.backend.send_messages([message])
        except (smtplib.SMTPServerDisconnected, OSError, smtplib.SMTPHeloError):
            self.reset()
            raise
        except smtplib.SMTPException:
            self._reset_if_closed()
            raise
        if not sent:
            raise smtplib.SMTPException("the mail backend did not send the message")

    def finish(self) -> None:
        """The server's verdict on the message begun last (raises its refusal)."""
        if not self.awaiting_reply:
            return
        self.awaiting_reply = False
        try:
            finish_transaction(self.backend.connection)
        except (smtplib.SMTPServerDisconnected, OSError):
            self.reset()
            raise
        except smtplib.SMTPException:
            self._reset_if_closed()
            raise

    def _reset_if_closed(self) -> None:
        """A 421 closed the connection: the next message opens a new one."""
        if self.raw and getattr(self.backend.connection, "sock", None) is None:
            self.reset()

    def send(self, message) -> None:
        self.begin(message)
        self.finish()

    def reset(self) -> None:
        self.awaiting_reply = False
        try:
            self.backend.close()
        except Exception:  # a dead connection cannot be closed politely
            pass
        self.backend.connection = None
        self.is_open = False

    def close(self) -> None:
        if self.is_open:
            self.reset()
