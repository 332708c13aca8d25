"""Embedded PostgreSQL for zero-configuration runs (``DATABASE_URL`` unset).

``pgserver`` bundles PostgreSQL 16 (with pgvector) inside a wheel; the cluster lives under
``var/pgdata`` and is reached over a unix socket in that directory. Things learned the hard way:
- Run as root, pgserver creates a system user ``pgserver`` and runs postgres as it.
- Every process that calls ``get_server`` registers its pid; the server stops when the last
  registered process exits (``cleanup_mode="stop"``). Child processes we spawn therefore get an
  explicit ``DATABASE_URL`` instead of calling ``get_server`` themselves.
- Unix socket paths are limited to ~107 bytes, so ``var_dir`` must not be nested too deep.
"""

from __future__ import annotations

import logging
from pathlib import Path
from urllib.parse import quote

import psycopg

from app.errors import DatabaseError

log = logging.getLogger(__name__)


def start_embedded(*, var_dir: Path, db_name: str) -> str:
    """Start (or join) the embedded cluster and return a libpq URL for ``db_name``."""
    from pgserver.postgres_server import get_server  # only needed when no DATABASE_URL is set

    pgdata = (var_dir / "pgdata").resolve()
    if len(str(pgdata)) > 90:
        raise DatabaseError(f"var dir path too long for a unix socket: {pgdata} (set MAILSPINE_VAR_DIR)")
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    try:
        server = get_server(pgdata, cleanup_mode="stop")
    except Exception as exc:  # pgserver raises bare exceptions; keep the log path in the message
        raise DatabaseError(
            f"embedded Postgres failed to start in {pgdata}: {exc}; see {pgdata / 'log'}"
        ) from exc
    ensure_database(admin_url=server.get_uri(), db_name=db_name)
    return f"postgresql://postgres:@/{quote(db_name)}?host={quote(str(pgdata))}"


def ensure_database(*, admin_url: str, db_name: str) -> bool:
    """Create ``db_name`` if it does not exist. Returns True when it was created."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (db_name,)).fetchone()
        if exists:
            return False
        conn.execute(f'CREATE DATABASE "{db_name}"')  # name is ours, never user input
        log.info("created database %s", db_name)
        return True
