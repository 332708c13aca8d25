"""Start, watch and stop the child processes of the demo (and of the integration tests).

Children inherit this process's environment plus explicit overrides (``DATABASE_URL`` in
particular, so they never start an embedded server of their own). Each writes its log to
``var/logs/<name>.log``. Stopping sends SIGTERM (workers finish in-flight jobs), then SIGKILL.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

import httpx

from app.errors import MailspineError
from app.settings import REPO_ROOT, Settings


def streamlit_command(settings: Settings) -> list[str]:
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(REPO_ROOT / "dashboard" / "app.py"),
        "--server.port",
        str(settings.dashboard_port),
        "--server.address",
        settings.api_host,
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
        # Reviewers are viewers: no Deploy button, no "clear cache" or "rerun" developer items.
        "--client.toolbarMode",
        "viewer",
    ]


class ChildExited(MailspineError):
    pass


class ProcessGroup:
    def __init__(self, log_dir: Path, env: dict[str, str]) -> None:
        self.log_dir = log_dir
        self.env = {**os.environ, **env}  # the one place besides Settings that touches the environment
        self.children: dict[str, subprocess.Popen[bytes]] = {}
        log_dir.mkdir(parents=True, exist_ok=True)

    def start(
        self, name: str, command: list[str], *, env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        if command[0] != sys.executable:
            command = [sys.executable, "-m", "app.cli", *command]
        log = (self.log_dir / f"{name}.log").open("ab")
        proc = subprocess.Popen(
            command,
            env={**self.env, **(env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=REPO_ROOT,
            start_new_session=True,
        )
        self.children[name] = proc
        return proc

    def wait_http(self, name: str, url: str, *, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                if httpx.get(url, timeout=1.0).status_code < 500:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise TimeoutError(
            f"{name} not healthy at {url} after {timeout_s}s; see {self.log_dir / (name + '.log')}"
        )

    def check_alive(self) -> None:
        """Raise if any child exited on its own (its log says why)."""
        for name, proc in self.children.items():
            if proc.poll() is not None:
                raise ChildExited(
                    f"{name} exited with code {proc.returncode}; see {self.log_dir / (name + '.log')}"
                )

    def stop(self, name: str, *, sig: int = signal.SIGTERM, timeout_s: float = 30.0) -> int | None:
        proc = self.children.pop(name, None)
        if proc is None or proc.poll() is not None:
            return proc.returncode if proc else None
        proc.send_signal(sig)
        try:
            return proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            return proc.wait(5)

    def stop_all(self) -> None:
        for name in list(self.children)[::-1]:
            self.stop(name)

    def __enter__(self) -> ProcessGroup:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop_all()
