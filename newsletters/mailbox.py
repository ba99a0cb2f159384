"""Email replies to newsletters, fetched from the firm's reply mailbox over IMAP.

Newsletters go out with `Reply-To: <publication.reply_to>`; that address's mailbox is
NEWSLETTER_REPLY_MAILBOX_URL. Celery beat runs `replies_fetch` every minute: every message that
is neither seen nor carries one of our keywords is read (BODY.PEEK[], so reading does not mark
it seen) and handed to `reply_ingest`. Only after its database transaction committed is the
message marked on the server:

- a reply to a delivery of ours → \\Seen and $CrmIngested;
- anything else → $CrmIgnored only: it stays unread for the people who also read the mailbox,
  and our search skips it from then on;
- processing raised → nothing is marked; it is logged with its UID and tried again next run.

The server keeps all the state (flags), so nothing about the mailbox is stored here and UIDs
are only used within one session (a changed UIDVALIDITY does no harm). If the server does not
allow custom keywords (no \\* in PERMANENTFLAGS), ignored messages are marked \\Seen instead,
since that is then the only mark that keeps us from reading them again.
"""

import base64
import hashlib
import imaplib
import logging
import re
import ssl
from contextlib import contextmanager
from dataclasses import dataclass, field
from urllib.parse import quote, unquote, urlsplit

from django.conf import settings
from django.db import DatabaseError, connection, transaction

from .inbound import reply_ingest

log = logging.getLogger(__name__)

INGESTED = "$CrmIngested"
IGNORED = "$CrmIgnored"
SEEN = "\\Seen"
TIMEOUT_SECONDS = 60
DEFAULT_PORTS = {"imap": 143, "imaps": 993}
# A fixed 64-bit key for pg_try_advisory_lock, derived from a name so it collides with nothing.
LOCK_KEY = int.from_bytes(hashlib.sha256(b"newsletters.mailbox.replies_fetch").digest()[:8],
                          "big", signed=True)
_FETCH_UID = re.compile(rb"\bUID (\d+)", re.IGNORECASE)


class MailboxError(Exception):
    """The mailbox cannot be used (bad URL, login refused, folder missing); safe to log."""


@dataclass(frozen=True)
class MailboxConfig:
    scheme: str
    host: str
    port: int
    user: str
    password: str = field(repr=False)
    folder: str

    def __str__(self) -> str:  # what logs and errors show: never the password
        return f"{self.scheme}://{quote(self.user, safe='')}@{self.host}:{self.port}/{self.folder}"


def mailbox_config_parse(url: str) -> MailboxConfig:
    """`imap[s]://user:password@host[:port][/FOLDER]`; user, password and folder are
    percent-decoded, so `p%40ss%2Fword` is `p@ss/word`."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise MailboxError("NEWSLETTER_REPLY_MAILBOX_URL must start with imap:// or imaps://")
    try:
        port = parts.port or DEFAULT_PORTS[scheme]
    except ValueError:
        raise MailboxError("NEWSLETTER_REPLY_MAILBOX_URL has an invalid port") from None
    if not parts.hostname:
        raise MailboxError("NEWSLETTER_REPLY_MAILBOX_URL has no host")
    if not parts.username or parts.password is None:
        raise MailboxError("NEWSLETTER_REPLY_MAILBOX_URL needs user:password@ before the host "
                           "(percent-encode @, / and : inside them)")
    return MailboxConfig(scheme=scheme, host=parts.hostname, port=port,
                         user=unquote(parts.username), password=unquote(parts.password),
                         folder=unquote(parts.path.lstrip("/")) or "INBOX")


def replies_fetch(*, url: str | None = None, limit: int | None = None) -> dict:
    """Fetch up to `limit` new messages from the reply mailbox and ingest them.

    Call it outside any transaction (beat, command): each message's transaction must really
    commit before the message is marked on the server. Never raises for a mailbox problem: it
    is logged (without the password) and returned as "error"."""
    url = settings.NEWSLETTER_REPLY_MAILBOX_URL if url is None else url
    result = {"configured": bool(url), "fetched": 0, "ingested": 0, "ignored": 0, "errors": 0}
    if not url:
        return result
    try:
        config = mailbox_config_parse(url)
    except MailboxError as exc:
        log.error("reply mailbox: %s", exc)
        return {**result, "error": str(exc)}
    limit = settings.NEWSLETTER_REPLY_FETCH_BATCH if limit is None else limit
    with _one_fetch_at_a_time() as acquired:
        if not acquired:
            log.info("reply mailbox: another fetch is running; skipped")
            return {**result, "skipped": "another fetch is running"}
        try:
            _fetch(config, limit, result)
        except (MailboxError, imaplib.IMAP4.error, OSError) as exc:
            message = _without_password(_describe(exc), config.password)
            log.error("reply mailbox %s: %s", config, message)
            result["error"] = message
    if result["fetched"]:
        log.info("reply mailbox %s: %s", config, result)
    return result


@contextmanager
def _one_fetch_at_a_time():
    """One fetch at a time across all workers (beat could queue the next one while a slow
    fetch still runs). A PostgreSQL session advisory lock rather than a Redis lock: PostgreSQL
    drops it by itself when its holder's connection ends, so a killed worker never leaves it
    stuck and there is no expiry to guess for a slow mailbox, and it does not depend on the
    broker being Redis. (Needs a session-pooled connection, i.e. not PgBouncer in transaction
    mode.) SQLite is the single-process embedded default: no lock."""
    if connection.vendor != "postgresql":
        yield True
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [LOCK_KEY])
        acquired = cursor.fetchone()[0]
    try:
        yield acquired
    finally:
        if acquired:
            try:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_advisory_unlock(%s)", [LOCK_KEY])
            except DatabaseError:  # the connection is gone, and the lock with it
                log.warning("reply mailbox: could not release the fetch lock", exc_info=True)


def _fetch(config: MailboxConfig, limit: int, result: dict) -> None:
    imap = _connect(config)
    try:
        keywords = _keywords_allowed(imap)
        uids = _new_uids(imap)
        result["remaining"] = max(len(uids) - limit, 0)
        for uid in uids[:limit]:
            raw = _fetch_message(imap, uid)
            if raw is None:  # expunged by someone else meanwhile
                log.warning("reply mailbox %s: UID %s returned no message; skipped", config,
                            uid.decode())
                continue
            result["fetched"] += 1
            try:
                with transaction.atomic():
                    feedback = reply_ingest(raw_message_bytes=raw)
            except Exception:
                log.exception("reply mailbox %s: message UID %s could not be processed; it is "
                              "left as it was and tried again next run", config, uid.decode())
                result["errors"] += 1
                continue
            # Committed: only now may the server forget that the message is new.
            if feedback is not None:
                result["ingested"] += 1
                _mark(imap, uid, [SEEN, INGESTED] if keywords else [SEEN])
            else:
                result["ignored"] += 1
                _mark(imap, uid, [IGNORED] if keywords else [SEEN])
    finally:
        try:
            imap.logout()
        except (imaplib.IMAP4.error, OSError):
            pass


def _connect(config: MailboxConfig) -> imaplib.IMAP4:
    context = ssl.create_default_context()
    if config.scheme == "imaps":
        imap = imaplib.IMAP4_SSL(config.host, config.port, ssl_context=context,
                                 timeout=TIMEOUT_SECONDS)
    else:
        imap = imaplib.IMAP4(config.host, config.port, timeout=TIMEOUT_SECONDS)
    try:
        if config.scheme == "imap" and settings.NEWSLETTER_REPLY_MAILBOX_STARTTLS:
            try:
                imap.starttls(ssl_context=context)
            except imaplib.IMAP4.error as exc:  # never carry on in plaintext
                raise MailboxError(f"STARTTLS failed: {_describe(exc)}") from None
        try:
            imap.login(_quoted(config.user), config.password)
        except imaplib.IMAP4.abort:
            raise
        except imaplib.IMAP4.error as exc:  # the server's words; they never echo the password
            raise MailboxError(f"login as {config.user!r} refused: {_text(exc.args[0])}") from None
        except UnicodeEncodeError:  # its message would quote a character of the password
            raise MailboxError("login failed: user name and password must be ASCII") from None
        typ, data = imap.select(_quoted(_modified_utf7(config.folder)))
        if typ != "OK":
            raise MailboxError(f"cannot open folder {config.folder!r}: {_text(data[-1])}")
        return imap
    except BaseException:
        try:
            imap.shutdown()
        except OSError:
            pass
        raise


def _keywords_allowed(imap: imaplib.IMAP4) -> bool:
    """Whether $CrmIngested/$CrmIgnored can be stored (RFC 3501: no PERMANENTFLAGS → all can)."""
    _, data = imap.response("PERMANENTFLAGS")
    if not data or data[0] is None:
        return True
    flags = _text(data[0]).strip("()").split()
    return "\\*" in flags or {INGESTED, IGNORED} <= set(flags)


def _new_uids(imap: imaplib.IMAP4) -> list[bytes]:
    typ, data = imap.uid("SEARCH", "UNSEEN", "UNKEYWORD", INGESTED, "UNKEYWORD", IGNORED)
    if typ != "OK":
        raise MailboxError(f"search refused: {_text(data[-1])}")
    found = b" ".join(d for d in data if d).split()
    return sorted(found, key=int)


def _fetch_message(imap: imaplib.IMAP4, uid: bytes) -> bytes | None:
    typ, data = imap.uid("FETCH", uid, "(BODY.PEEK[])")
    if typ != "OK":
        raise MailboxError(f"fetch of UID {uid.decode()} refused: {_text(data[-1])}")
    for item in data:
        # Unsolicited FETCH responses about other messages (flag changes) may come along.
        if isinstance(item, tuple) and b"BODY[]" in item[0].upper():
            found = _FETCH_UID.search(item[0])
            if found is None or found.group(1) == uid:
                return item[1]
    return None


def _mark(imap: imaplib.IMAP4, uid: bytes, flags: list[str]) -> None:
    typ, data = imap.uid("STORE", uid, "+FLAGS.SILENT", f"({' '.join(flags)})")
    if typ != "OK":  # harmless: the next run ingests it again, and ingesting is idempotent
        log.warning("reply mailbox: could not flag UID %s %s: %s", uid.decode(), flags,
                    _text(data[-1]))


def _quoted(value: str) -> str:
    """An IMAP quoted string (imaplib sends other arguments as they are)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _modified_utf7(name: str) -> str:
    """A folder name in IMAP's modified UTF-7 (RFC 3501 5.1.3), e.g. 回复 → &V941DQ-."""
    out, pending = [], []

    def flush():
        if pending:
            encoded = base64.b64encode("".join(pending).encode("utf-16-be")).decode()
            out.append("&" + encoded.rstrip("=").replace("/", ",") + "-")
            pending.clear()

    for char in name:
        if 0x20 <= ord(char) <= 0x7E:
            flush()
            out.append("&-" if char == "&" else char)
        else:
            pending.append(char)
    flush()
    return "".join(out)


def _describe(exc: Exception) -> str:
    if isinstance(exc, MailboxError):
        return str(exc)
    if isinstance(exc, imaplib.IMAP4.error):
        return f"IMAP error: {_text(exc.args[0]) if exc.args else exc}"
    return f"{type(exc).__name__}: {exc}"


def _text(value) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def _without_password(message: str, password: str) -> str:
    for secret in {password, quote(password, safe="")} - {""}:
        message = message.replace(secret, "***")
    return message
