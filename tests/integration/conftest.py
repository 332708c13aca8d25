"""Real mail servers for integration tests: one dovecot (IMAP) and one aiosmtpd sink per session."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest

from infra.mail.dovecot import Dovecot, MailUser
from infra.mail.smtp_sink import SmtpSink


@pytest.fixture(scope="session")
def dovecot() -> Iterator[Dovecot]:
    server = Dovecot()
    server.start()
    yield server
    server.stop(remove_data=True)


@pytest.fixture
def mail_user(dovecot: Dovecot) -> MailUser:
    """A fresh mailbox user per test, so tests never see each other's mail."""
    return dovecot.add_user(f"u{secrets.token_hex(5)}", secrets.token_urlsafe(12))


@pytest.fixture(scope="session")
def smtp_sink() -> Iterator[SmtpSink]:
    sink = SmtpSink(username="agent@mailspine.test", password=secrets.token_urlsafe(12))
    sink.start()
    yield sink
    sink.stop()
