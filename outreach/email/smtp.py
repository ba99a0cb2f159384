"""One SMTP connection per chunk, and a message sent in parts.

`begin_data` gives the server MAIL, RCPT, DATA and the whole content but not the final dot;
`end_data` sends the dot (from then on the server may accept the message) and `finish` reads
the server's verdict. The run loop uses the gaps: while the server reads one message's content
the worker marks the previous message's row and renders the next client's copy, and it sends a
message's dot only after the previous row is marked. So at any instant at most one message can
have been accepted by the server without its row saying so: a killed worker repeats at most
that one. (Until the dot the server holds nothing it could deliver; a connection closed before
the dot discards the message.)
"""

import re
import smtplib
import socket

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
    """smtplib.SMTP.sendmail up to the content, without the final dot (end_transaction) and
    the reply to it (finish_transaction). The same commands, options and refusals."""
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
    smtp.send(quoted)


def end_transaction(smtp: smtplib.SMTP) -> None:
    smtp.send(b"." + _CRLF)


def finish_transaction(smtp: smtplib.SMTP) -> None:
    code, response = smtp.getreply()
    if code != 250:
        _refuse(smtp, code)
        raise smtplib.SMTPDataError(code, response)


def _no_delay(smtp: smtplib.SMTP) -> None:
    """The final dot is a 3-byte write right after the content: without TCP_NODELAY, Nagle's
    algorithm holds it until the server acknowledges the content, which a delayed ACK can
    postpone by ~40 ms per message."""
    sock = getattr(smtp, "sock", None)
    if sock is not None:
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:  # not TCP (a Unix socket): nothing to tune
            pass


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
        self.in_data = False  # content sent, final dot not yet
        self.awaiting_reply = False  # dot sent, verdict not yet read

    def _open(self) -> None:
        if not self.is_open:
            self.backend.open()
            self.is_open = True
            if self.raw:
                _no_delay(self.backend.connection)

    def begin(self, message) -> None:
        """The whole message including the final dot; the verdict is read by finish()."""
        self.begin_data(message)
        self.end_data()

    def begin_data(self, message) -> None:
        """Everything but the final dot (other backends: the whole message)."""
        if self.awaiting_reply or self.in_data:
            raise RuntimeError("finish() the message in flight before beginning another")
        self._open()
        try:
            if self.raw:
                begin_transaction(self.backend.connection, *message)
                self.in_data = True
                return
            message.connection = self.backend
            sent = self.backend.send_messages([message])
        except (smtplib.SMTPServerDisconnected, smtplib.SMTPHeloError):
            self.reset()
            raise
        except smtplib.SMTPException:  # a refusal: the connection stays (unless a 421 closed it)
            self._reset_if_closed()
            raise
        except OSError:  # SMTPException is an OSError too, hence this order
            self.reset()
            raise
        if not sent:
            raise smtplib.SMTPException("the mail backend did not send the message")

    def end_data(self) -> None:
        """The final dot: from now on the server may accept the message."""
        if not self.in_data:
            return
        try:
            end_transaction(self.backend.connection)
        except (smtplib.SMTPServerDisconnected, OSError):
            self.reset()
            raise
        self.in_data, self.awaiting_reply = False, True

    def abort_data(self) -> None:
        """Give up a message whose dot was not sent: only closing the connection ends DATA, and
        the server then discards what it read."""
        if self.in_data:
            self.reset()

    def finish(self) -> None:
        """The server's verdict on the message begun last (raises its refusal)."""
        if not self.awaiting_reply:
            return
        self.awaiting_reply = False
        try:
            finish_transaction(self.backend.connection)
        except smtplib.SMTPServerDisconnected:
            self.reset()
            raise
        except smtplib.SMTPException:  # a refusal: the connection stays (unless a 421 closed it)
            self._reset_if_closed()
            raise
        except OSError:
            self.reset()
            raise

    def _reset_if_closed(self) -> None:
        """A 421 closed the connection: the next message opens a new one."""
        if self.raw and getattr(self.backend.connection, "sock", None) is None:
            self.reset()

    def send(self, message) -> None:
        self.begin(message)
        self.finish()

    def reset(self) -> None:
        """Drop the connection. In the middle of a message no QUIT (the server would read it
        as content, or answer the message first): the socket is just closed."""
        mid_message = self.in_data or self.awaiting_reply
        self.in_data = self.awaiting_reply = False
        connection = getattr(self.backend, "connection", None) if self.raw else None
        try:
            if mid_message and connection is not None:
                connection.close()
            else:
                self.backend.close()
        except Exception:  # a dead connection cannot be closed politely
            pass
        if self.raw:
            self.backend.connection = None
        self.is_open = False

    def close(self) -> None:
        if self.is_open:
            self.reset()


def wire_bytes(message) -> tuple[str, list[str], bytes]:
    """(envelope sender, recipients, bytes) of an EmailMessage exactly as Django's SMTP backend
    puts them on the wire (EmailBackend._send), for Sender's two halves."""
    from django.conf import settings
    from django.core.mail.message import sanitize_address

    encoding = message.encoding or settings.DEFAULT_CHARSET
    return (sanitize_address(message.from_email, encoding),
            [sanitize_address(address, encoding) for address in message.recipients()],
            message.message().as_bytes(linesep="\r\n"))
