"""Fixtures of the crash-safety suite: a Postgres of its own (restartable), dovecot for Sent copies."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.chaos.postgres import ChaosPostgres
from tests.integration.conftest import dovecot  # noqa: F401  (the session's IMAP server)


@pytest.fixture(scope="session")
def chaos_postgres() -> Iterator[ChaosPostgres]:
    """A Postgres of the suite's own: the Postgres scenario restarts it in immediate mode."""
    server = ChaosPostgres().start()
    yield server
    server.stop()
