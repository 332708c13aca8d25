"""Throwaway databases for tests that need one of their own (exact counts, labels they move)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from app.db import drop_database, fresh_database
from app.migrate import upgrade


@contextmanager
def migrated_database(server_url: str, prefix: str) -> Iterator[str]:
    """A new database on ``server_url``, migrated (and its prompt files synced); dropped after."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    url = fresh_database(server_url, name)
    try:
        upgrade(url)
        yield url
    finally:
        drop_database(server_url, name)
