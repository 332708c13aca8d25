"""A local SMTP server (aiosmtpd) that accepts and keeps every message: tests and the demo.

AUTH PLAIN / LOGIN (and XOAUTH2 with a configured token) are checked against one configured
credential; a bad one gets ``535``. Faults can be injected: the next N DATA commands answered
``451``, or the connection dropped after DATA was accepted but before the reply (the message is
recorded: the client cannot know it was delivered).
"""

from __future__ import annotations

import asyncio
import base64
import logging
import threading
from dataclasses import dataclass
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from app.settings import SmtpAccount
from infra.mail.dovecot import free_port


@dataclass(frozen=True)
class Received:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes
    login: str | None


class _SMTP(SMTP):
    async def auth_XOAUTH2(self, server: SMTP, args: list[str]) -> AuthResult:
        """``AUTH XOAUTH2 <b64 user=..\\x01auth=Bearer ..\\x01\\x01>``; a failure gets a 334 error first."""
        sink: SmtpSink = self.event_handler
        try:
            fields = dict(
                f.split("=", 1) for f in base64.b64decode(args[1]).decode().split("\x01") if "=" in f
            )
            login, token = fields["user"], fields["auth"].removeprefix("Bearer ")
        except Exception:
            await self.push("501 5.5.2 Can't decode XOAUTH2")
            return AuthResult(success=False, handled=True)
        if sink.oauth2_token is not None and login == sink.username and token == sink.oauth2_token:
            return AuthResult(success=True, auth_data=LoginPassword(login.encode(), b""))
        await self.challenge_auth(b'{"status":"401"}')  # the client answers with an empty line
        return AuthResult(success=False, handled=False)


class _Controller(Controller):
    def factory(self) -> SMTP:
        return _SMTP(self.handler, **self.SMTP_kwargs)


def _quiet(record: logging.LogRecord) -> bool:
    text = str(record.msg)
    return "login_data is deprecated" not in text  # aiosmtpd itself still sets it


logging.getLogger("mail.log").addFilter(_quiet)


class SmtpSink:
    host = "127.0.0.1"

    def __init__(
        self, username: str = "agent", password: str = "sink-password", oauth2_token: str | None = None
    ) -> None:
        self.username, self.password, self.oauth2_token = username, password, oauth2_token
        self.port = free_port()
        self._lock = threading.Lock()
        self._messages: list[Received] = []
        self._fail_data: list[str] = []
        self._drop_after_data = 0
        self.refused_recipients: set[str] = set()
        self._controller: _Controller | None = None

    def start(self) -> None:
        if self._controller is not None:
            return
        self._controller = _Controller(
            self,
            hostname=self.host,
            port=self.port,
            authenticator=self._authenticate,
            auth_require_tls=False,  # loopback only; AUTH is enforced in handle_MAIL
        )
        self._controller.start()

    def stop(self) -> None:
        controller, self._controller = self._controller, None
        if controller is not None:
            controller.stop()

    @property
    def messages(self) -> list[Received]:
        with self._lock:
            return list(self._messages)

    def with_message_id(self, message_id: str) -> list[Received]:
        needle = f"Message-ID: {message_id}".encode().lower()
        return [m for m in self.messages if needle in m.data.lower()]

    def fail_next_data(self, count: int = 1, reply: str = "451 4.3.0 Temporary failure, try again") -> None:
        with self._lock:
            self._fail_data.extend([reply] * count)

    def drop_after_next_data(self, count: int = 1) -> None:
        with self._lock:
            self._drop_after_data += count

    def reset(self) -> None:
        with self._lock:
            self._messages.clear()
            self._fail_data.clear()
            self._drop_after_data = 0
            self.refused_recipients.clear()

    def account(self, **overrides: Any) -> SmtpAccount:
        fields: dict[str, Any] = {
            "host": self.host,
            "port": self.port,
            "security": "none",
            "username": self.username,
            "password": self.password,
            "from_address": "support@mailspine.test",
            "timeout_s": 10.0,
        }
        fields.update(overrides)
        if "password" not in overrides and overrides.keys() & {"oauth2_token_file", "oauth2_token_command"}:
            del fields["password"]
        return SmtpAccount(**fields)

    # --- aiosmtpd hooks ----------------------------------------------------------------------
    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        ok = isinstance(auth_data, LoginPassword) and (
            auth_data.login.decode(errors="replace") == self.username
            and auth_data.password.decode(errors="replace") == self.password
        )
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        # aiosmtpd's auth_required=True warns on every connection when TLS is not required.
        if not session.authenticated:
            return "530 5.7.0 Authentication required"
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address in self.refused_recipients:
            return "550 5.1.1 Recipient address rejected: no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        with self._lock:
            if self._fail_data:
                return self._fail_data.pop(0)
            raw = envelope.original_content or b""  # the bytes as received (after dot-unstuffing)
            auth = session.auth_data
            login = auth.login.decode(errors="replace") if isinstance(auth, LoginPassword) else None
            self._messages.append(
                Received(envelope.mail_from or "", tuple(envelope.rcpt_tos), bytes(raw), login)
            )
            drop = self._drop_after_data > 0
            self._drop_after_data -= int(drop)
        if drop and isinstance(server.transport, asyncio.Transport):
            server.transport.abort()  # accepted, but the client never hears "250"
        return "250 2.0.0 OK: queued"
