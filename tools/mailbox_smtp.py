"""Send an approved reply over SMTP with the sender's own credential, at most once.

The caller picks a deterministic Message-ID and may pass a ``SendRecord``: the durable mark that the
message went out, written at SMTP's point of no return — after the whole message was transmitted,
just before the end-of-data marker (``_transmit``). A server discards a transaction whose connection
closes before that marker, so a crash before the mark delivers nothing and a crash after it leaves
the send recorded: the caller's retry checks the mark and never sends twice. The only loss windows
are a crash between the mark and the marker reaching the socket, and a refusal the process died
before reading (the mark then claims a send the server refused). The first is microseconds for this
thread, but the mark is written through the worker's event loop, so a crash caused by another job
of the same worker in that turn of the loop lands in it too (the chaos suite saw it once).

A retry after an unknown outcome (``attempt > 1``) also searches the Sent folder for the Message-ID
and, when the copy is there, reports the send as reconciled (the only check for callers without a
record). The copy is APPENDed (``\\Seen``) right after SMTP accepts the message, byte for byte what
was sent; a crash between the acceptance and the APPEND leaves no copy. Addresses and bodies never
reach spans or error messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import smtplib
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import formatdate
from typing import Any, Protocol

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError

from app.chaos import crash_point
from app.errors import MailboxAuthError, MailboxError, ToolAuthError, ToolError, ToolUnavailable
from app.settings import ImapAccount, SmtpAccount
from tools.base import ToolSpec, tool_span
from tools.imap_connect import connect_imap
from tools.mail_auth import resolve_secret, tls_context

log = logging.getLogger(__name__)

SEND_REPLY = ToolSpec(
    name="send_reply",
    description="Send an approved reply to the sender.",
    access="write",
    scopes=("mail.send",),
)
SEEN = b"\\Seen"


class SendRecord(Protocol):
    """The caller's durable record of one send; called from the SMTP thread (see the module doc)."""

    def commit(self) -> None:
        """Record the message as sent; it returns once the record is durable. Raising abandons the
        message: the connection is closed before the end-of-data marker, nothing is delivered."""

    def revoke(self) -> None:
        """The server refused the message after all (a reply other than 250 to the end of data)."""


class _NotRecorded(Exception):
    pass


@dataclass(frozen=True)
class OutgoingMessage:
    message_id: str  # deterministic, e.g. "<abc@mailspine.local>", chosen by the caller
    to: str
    subject: str
    body: str  # plain text
    in_reply_to: str | None
    references: list[str]


def render(msg: OutgoingMessage, from_address: str) -> bytes:
    """The exact bytes that go over SMTP and into the Sent folder (CRLF line endings)."""
    refs = list(dict.fromkeys([*msg.references, *([msg.in_reply_to] if msg.in_reply_to else [])]))
    out = EmailMessage(policy=SMTP_POLICY)
    try:
        out["From"] = from_address
        out["To"] = msg.to
        out["Subject"] = msg.subject
        out["Date"] = formatdate(localtime=True)
        out["Message-ID"] = msg.message_id
        if msg.in_reply_to:
            out["In-Reply-To"] = msg.in_reply_to
        if refs:
            out["References"] = " ".join(refs)
        out["Auto-Submitted"] = "auto-replied"
        out["MIME-Version"] = "1.0"
        out.set_content(msg.body, subtype="plain", charset="utf-8")
        return out.as_bytes()
    except (ValueError, TypeError) as exc:  # e.g. a header with a line break: never echo the value
        raise ToolError(f"cannot build reply {msg.message_id}: {type(exc).__name__}") from None


async def send_message(
    msg: OutgoingMessage,
    *,
    smtp: SmtpAccount,
    sent: ImapAccount | None,
    attempt: int,
    record: SendRecord | None = None,
) -> dict[str, Any]:
    with tool_span(SEND_REPLY) as span:
        span.set_attribute("mailspine.send.attempt", attempt)
        if attempt > 1 and sent is not None and await asyncio.to_thread(_in_sent, sent, msg.message_id):
            span.set_attribute("mailspine.send.reconciled", True)
            return {"message_id": msg.message_id, "reconciled": True}
        raw = render(msg, smtp.from_address)
        await asyncio.to_thread(_smtp_send, smtp, msg.to, raw, record)
        crash_point("smtp.after_send", message_id=msg.message_id, attempt=attempt)
        sent_copy = sent is not None and await asyncio.to_thread(_save_copy, sent, raw)
        span.set_attribute("mailspine.send.reconciled", False)
        span.set_attribute("mailspine.send.sent_copy", sent_copy)
        return {"message_id": msg.message_id, "reconciled": False, "sent_copy": sent_copy}


# --- SMTP ------------------------------------------------------------------------------------
def _smtp_send(account: SmtpAccount, to: str, raw: bytes, record: SendRecord | None = None) -> None:
    try:
        secret = resolve_secret(account)
    except MailboxAuthError as exc:
        raise ToolAuthError(f"SMTP credential for {account.username}: {exc}") from exc
    context = tls_context(security=account.security, verify=account.tls_verify, ca_file=account.ca_file)
    conn: smtplib.SMTP | None = None
    phase = "connect"
    try:
        if account.security == "ssl":
            conn = smtplib.SMTP_SSL(account.host, account.port, timeout=account.timeout_s, context=context)
        else:
            conn = smtplib.SMTP(account.host, account.port, timeout=account.timeout_s)
        if account.security == "starttls":
            conn.starttls(context=context)
        phase = "auth"
        conn.ehlo_or_helo_if_needed()  # login() does this itself; auth() does not (503 counts as success)
        if secret.kind == "xoauth2":
            xoauth2 = f"user={account.username}\x01auth=Bearer {secret.value}\x01\x01"
            # A refused token gets a 334 error challenge; an empty answer makes the server send 535.
            conn.auth("XOAUTH2", lambda challenge=None: "" if challenge else xoauth2)
        else:
            conn.login(account.username, secret.value)
        phase = "send"
        _transmit(conn, account.from_address, to, raw, record)
    except _NotRecorded as exc:
        assert conn is not None
        conn.close()  # before the end-of-data marker: the server discards the transaction
        raise ToolUnavailable(
            f"SMTP send via {account.host}:{account.port} abandoned before the end of data: "
            f"the send could not be recorded ({type(exc.__cause__).__name__})"
        ) from None
    except (smtplib.SMTPException, OSError, UnicodeError) as exc:
        if conn is not None:
            conn.close()
        if isinstance(exc, UnicodeError):  # a non-ASCII address would need SMTPUTF8
            raise ToolError(f"SMTP {phase}: a non-ASCII address is not supported") from None
        raise _classify(exc, phase, f"{account.host}:{account.port}", account.username) from None
    _quit(conn)  # accepted: a failing QUIT must not turn success into a retry


def _transmit(conn: smtplib.SMTP, sender: str, to: str, raw: bytes, record: SendRecord | None) -> None:
    """``sendmail``, split before the end-of-data marker when there is a record (RFC 5321 4.1.1.4)."""
    if record is None:
        conn.sendmail(sender, [to], raw)
        return
    code, reply = conn.mail(sender)
    if code != 250:
        raise smtplib.SMTPSenderRefused(code, reply, sender)
    code, reply = conn.rcpt(to)
    if code not in (250, 251):
        raise smtplib.SMTPRecipientsRefused({to: (code, reply)})
    code, reply = conn.docmd("DATA")
    if code != 354:
        raise smtplib.SMTPDataError(code, reply)
    data = re.sub(rb"(?m)^\.", b"..", raw)  # dot-stuffing, as smtplib.SMTP.data does
    conn.send(data if data.endswith(b"\r\n") else data + b"\r\n")
    try:
        record.commit()
    except Exception as exc:
        raise _NotRecorded from exc
    conn.send(b".\r\n")  # the point of no return
    code, reply = conn.getreply()
    if code != 250:
        try:
            record.revoke()
        except Exception:  # the refusal below is still raised; the record now claims a send
            log.exception("a refused message stays recorded as sent; check the outbound record")
        raise smtplib.SMTPDataError(code, reply)


def _classify(exc: BaseException, phase: str, where: str, username: str) -> ToolError:
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return ToolAuthError(f"SMTP server {where} refused the login of {username} ({exc.smtp_code})")
    no_reply = not isinstance(exc, smtplib.SMTPResponseException | smtplib.SMTPServerDisconnected)
    if phase == "auth" and no_reply and isinstance(exc, smtplib.SMTPException):
        return ToolAuthError(f"SMTP server {where} offers no usable login for {username}")  # no AUTH
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        unknown = "; the message may have been delivered" if phase == "send" else ""
        return ToolUnavailable(f"SMTP server {where} closed the connection during {phase}{unknown}")
    code: int = 0
    text: bytes | str = b""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        code, text = min(exc.recipients.values(), default=(0, b""))
    elif isinstance(exc, smtplib.SMTPResponseException):
        code, text = exc.smtp_code, exc.smtp_error
    status = re.match(rb"\s*([245]\.\d{1,3}\.\d{1,3})", text if isinstance(text, bytes) else b"")
    detail = f"{code} {status.group(1).decode()}" if status else str(code) if code else type(exc).__name__
    transient = 400 <= code < 500 or phase == "connect" or not isinstance(exc, smtplib.SMTPException)
    if transient:  # refused, timed out, TLS failure, 4xx: the job retries
        return ToolUnavailable(f"SMTP server {where} unavailable during {phase}: {detail}")
    return ToolError(f"SMTP server {where} refused the message: {detail}")


def _quit(conn: smtplib.SMTP) -> None:
    with contextlib.suppress(smtplib.SMTPException, OSError):
        conn.quit()
    conn.close()


# --- IMAP Sent folder ------------------------------------------------------------------------
def _in_sent(account: ImapAccount, message_id: str) -> bool:
    """Whether the Sent folder holds this Message-ID. Any doubt raises: never send blind on a retry."""
    try:
        client = connect_imap(account)
    except MailboxAuthError as exc:
        raise ToolAuthError(f"cannot check the sent folder: {exc}") from exc
    except MailboxError as exc:
        raise ToolUnavailable(f"cannot check the sent folder: {exc}") from exc
    try:
        if not client.folder_exists(account.sent_folder):
            return False
        client.select_folder(account.sent_folder, readonly=True)
        return bool(client.search(["HEADER", "Message-ID", message_id]))
    except (IMAPClientError, OSError) as exc:
        raise ToolUnavailable(
            f"cannot search the sent folder of {account.name}: {type(exc).__name__}"
        ) from exc
    finally:
        _logout(client)


def _save_copy(account: ImapAccount, raw: bytes) -> bool:
    """APPEND the sent bytes to the Sent folder; the mail is already out, so a failure only logs."""
    try:
        client = connect_imap(account)
        try:
            if not client.folder_exists(account.sent_folder):
                with contextlib.suppress(IMAPClientError):  # a concurrent sender may create it first
                    client.create_folder(account.sent_folder)
            client.append(account.sent_folder, raw, flags=(SEEN,))
        finally:
            _logout(client)
    except (MailboxError, IMAPClientError, OSError) as exc:
        log.warning("sent copy not saved to account %s: %s", account.name, type(exc).__name__)
        return False
    return True


def _logout(client: IMAPClient) -> None:
    try:
        client.logout()
    except (IMAPClientError, OSError):
        with contextlib.suppress(Exception):
            client.shutdown()
