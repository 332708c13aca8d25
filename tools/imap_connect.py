"""Open a logged-in IMAP connection for one configured account (used by the reader and the sender).

The credential is resolved at connect time (``tools.mail_auth``), so a rotated password or a
refreshed OAuth2 token is picked up on the next connection. Errors are mapped onto the mailbox
hierarchy: a credential problem is ``MailboxAuthError`` (no retry), anything on the wire is
``MailboxUnavailable`` (retried with backoff). Messages name the account's host:port and user,
never the secret.
"""

from __future__ import annotations

import contextlib
import imaplib

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError, LoginError

from app.errors import MailboxAuthError, MailboxUnavailable
from app.settings import ImapAccount
from tools.mail_auth import resolve_secret, tls_context


def connect_imap(account: ImapAccount) -> IMAPClient:
    """Connect, upgrade to TLS as configured, and log in (password or XOAUTH2). The caller closes it."""
    secret = resolve_secret(account)  # before touching the network: a missing token file is an auth error
    where = f"{account.host}:{account.port}"
    context = tls_context(security=account.security, verify=account.tls_verify, ca_file=account.ca_file)
    try:
        client = IMAPClient(
            account.host,
            port=account.port,
            ssl=account.security == "ssl",
            ssl_context=context,
            timeout=account.timeout_s,
        )
    except (OSError, IMAPClientError) as exc:
        raise MailboxUnavailable(f"IMAP server {where} unreachable: {_describe(exc)}") from exc
    try:
        if account.security == "starttls":
            client.starttls(context)
        if secret.kind == "xoauth2":
            client.oauth2_login(account.username, secret.value)
        else:
            client.login(account.username, secret.value)
    except LoginError as exc:
        _close(client)
        cause = exc.__context__  # imapclient wraps every failure during LOGIN, dropped sockets too
        if isinstance(cause, (OSError, imaplib.IMAP4.abort)):
            raise MailboxUnavailable(f"IMAP server {where} dropped the login: {_describe(cause)}") from exc
        raise MailboxAuthError(f"IMAP login refused for {account.username} at {where}") from exc
    except (OSError, IMAPClientError) as exc:  # TLS handshake, STARTTLS missing, timeout, reset
        _close(client)
        raise MailboxUnavailable(f"IMAP server {where} failed during setup: {_describe(exc)}") from exc
    return client


def _describe(exc: BaseException) -> str:
    # imaplib errors carry the server's text; OSError's strerror never includes credentials.
    detail = getattr(exc, "strerror", None) or str(exc)
    return f"{type(exc).__name__}: {detail}"[:200]


def _close(client: IMAPClient) -> None:
    with contextlib.suppress(Exception):  # already broken; the original error is what matters
        client.shutdown()
