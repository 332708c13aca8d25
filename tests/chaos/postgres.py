"""A PostgreSQL of the chaos suite's own: pgserver's binaries in a temp dir, restartable at will."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from contextlib import suppress
from pathlib import Path
from typing import Any


class ChaosPostgres:
    """Not the session's shared server: the Postgres scenario restarts this one in immediate mode."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="mailspine-chaos-"))  # short: unix socket path limit
        self.pgdata = self.root / "pgdata"
        self.url = ""
        self._user: str | None = None

    def start(self) -> ChaosPostgres:
        from pgserver.postgres_server import get_server

        os.chmod(self.root, 0o755)  # run as root, pgserver runs postgres as its own system user
        # cleanup_mode=None: stop() owns the server (pgserver's own cleanup would lose track of it
        # after a restart, which changes the postmaster's pid).
        server = get_server(self.pgdata, cleanup_mode=None)
        self.url = server.get_uri()
        self._user = server.system_user
        return self

    def configure(self, **settings: str | int) -> None:
        """``ALTER SYSTEM SET`` each setting, then a fast restart so that all of them apply (the
        scale benchmark's 4 workers × concurrency 64 need more than the default 100 connections)."""
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            for name, value in settings.items():
                conn.execute(f"ALTER SYSTEM SET {name} = '{value}'")  # names are the caller's constants
        self._pg_ctl("-w", "-m", "fast", "-l", str(self.pgdata / "log"), "restart")

    def restart_immediate(self) -> None:
        """``pg_ctl restart -m immediate``: every backend dies without a shutdown checkpoint, crash
        recovery runs at start-up, every client sees its connections drop."""
        self._pg_ctl("-w", "-m", "immediate", "-l", str(self.pgdata / "log"), "restart")

    def stop(self) -> None:
        if (self.pgdata / "postmaster.pid").exists():
            with suppress(subprocess.SubprocessError, OSError):
                self._pg_ctl("-w", "-m", "immediate", "stop", timeout_s=30)
        shutil.rmtree(self.root, ignore_errors=True)

    def _pg_ctl(self, *args: str, timeout_s: float = 60.0) -> None:
        from pgserver._commands import POSTGRES_BIN_PATH

        command = [str(POSTGRES_BIN_PATH / "pg_ctl"), "-D", str(self.pgdata), *args]
        kwargs: dict[str, Any] = {}
        if self._user is not None:
            entry = pwd.getpwnam(self._user)
            kwargs.update(user=entry.pw_uid, group=entry.pw_gid)
        subprocess.run(command, check=True, timeout=timeout_s, capture_output=True, cwd=self.root, **kwargs)
