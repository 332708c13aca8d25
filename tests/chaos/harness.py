"""The crash-safety harness: real worker processes killed over and over while they process mail.

Each scenario gets a fresh database on the suite's own Postgres (``postgres.py``), its own
reference CRM process, SMTP sink, dovecot user (for the Sent folder) and model server, then:

1. chaos phase (``ChaosRun.chaos_phase``): start ``mailspine worker``; it dies by SIGKILL at a
   random moment, by a crash point (``MAILSPINE_CHAOS``, see ``app/chaos.py``), or keeps running
   while Postgres is restarted under it; the jobs of a dead worker are put back with
   ``app.tasks.retry_stalled`` (run while no worker is alive, so only dead workers' jobs qualify:
   what the periodic stalled-job retry does after a minute in production); repeat until the
   scenario's kill budget is spent or every email settled;
2. drain phase: one clean worker finishes whatever is left;
3. ``observed.collect`` reads what every system recorded and ``checks.check`` compares them.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from infra.mail.dovecot import Dovecot, MailUser
from infra.mail.smtp_sink import SmtpSink
from tests.chaos.checks import UNSETTLED
from tests.chaos.observed import status_table
from tests.chaos.postgres import ChaosPostgres
from tests.support.openai_server import OpenAIServer
from tests.support.stack import DEMO_MAILBOX, Stack, running_stack

READY_LINE = "worker started"
WORKER_READY_TIMEOUT_S = 60.0
DRAIN_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class Scenario:
    name: str
    chaos: str = ""  # MAILSPINE_CHAOS without the seed ("" = no crash points)
    kill_range_s: tuple[float, float] | None = None  # SIGKILL this long after the worker is ready
    max_life_s: float = 12.0  # a worker no crash point killed is SIGKILLed after this long anyway
    kills: int = 10  # the chaos phase ends after this many worker deaths
    pg_restarts: int = 0  # Postgres restarts (immediate mode) while a worker runs
    emails: int = 20
    concurrency: int = 2
    seed: int = 0


@dataclass(frozen=True)
class Death:
    """A moment after which a worker's in-memory progress is gone."""

    t: float
    kind: str  # sigkill | crash_point | exit | pg_restart
    detail: str
    worker: int


@dataclass
class Timeline:
    deaths: list[Death] = field(default_factory=list)
    workers: list[str] = field(default_factory=list)  # process names (= log file names)
    exits: list[str] = field(default_factory=list)  # workers that exited on their own

    def count(self, *kinds: str) -> int:
        return sum(d.kind in kinds for d in self.deaths)

    def describe(self) -> str:
        return "deaths:\n" + "\n".join(
            f"  {time.strftime('%H:%M:%S', time.localtime(d.t))}.{int(d.t * 1000) % 1000:03d} "
            f"worker #{d.worker} {d.kind} {d.detail}"
            for d in self.deaths
        )


def pick_emails(count: int) -> list[Path]:
    """A deterministic subset spread over the whole demo mailbox (every kind of email)."""
    files = sorted(DEMO_MAILBOX.glob("*.eml"))
    step = len(files) / count
    return [files[int(i * step)] for i in range(count)]


def copy_demo_emails(mailbox: Path, count: int) -> None:
    for path in pick_emails(count):
        shutil.copy(path, mailbox / path.name)


def retry_stalled_now(url: str, *, seconds_since_heartbeat: float = 0) -> int:
    """Put the jobs of dead workers back to ``todo``. With the default 0 that is every ``doing``
    job: call it so only while no worker process is alive. With more than the workers' heartbeat
    interval (10 s), only jobs of workers silent that long, as the periodic retry does in
    production: safe while other workers run."""
    from procrastinate import App, PsycopgConnector

    from app.tasks import retry_stalled

    async def run() -> int:
        # A throwaway App: app.tasks.queue_app can be opened only once per process.
        app = App(connector=PsycopgConnector(conninfo=url, min_size=1, max_size=1))
        async with app.open_async():
            return await retry_stalled(app.job_manager, seconds_since_heartbeat=seconds_since_heartbeat)

    return asyncio.run(run())


@dataclass
class ChaosRun:
    scenario: Scenario
    stack: Stack
    pg: ChaosPostgres
    ids: list[int]
    crash_log: Path
    rng: random.Random
    timeline: Timeline = field(default_factory=Timeline)
    recovery_problems: list[str] = field(default_factory=list)

    @property
    def log_dir(self) -> Path:
        return self.stack.group.log_dir

    def unsettled(self, *, retry_s: float = 30.0) -> int:
        deadline = time.monotonic() + retry_s
        while True:
            try:
                rows = self.stack.sql(
                    "SELECT count(*) FROM emails WHERE id = ANY(%s) AND status = ANY(%s)",
                    self.ids,
                    list(UNSETTLED),
                )
                return int(rows[0][0])
            except psycopg.OperationalError:  # Postgres is restarting
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def chaos_phase(self) -> None:
        """Start, kill, put the dead worker's jobs back, repeat; ends with no worker alive."""
        s = self.scenario
        restarts_left = s.pg_restarts
        while self._worker_deaths() < s.kills or restarts_left:
            if self.unsettled() == 0:
                return
            n = len(self.timeline.workers) + 1
            name, proc = self._start_worker(chaos=True)
            if not self._wait_ready(name, proc):
                self._record_exit(name, proc, n)
                retry_stalled_now(self.stack.url)
                continue
            born = time.monotonic()
            kill_at = born + (self.rng.uniform(*s.kill_range_s) if s.kill_range_s else s.max_life_s)
            next_restart = born + self.rng.uniform(1.0, 2.5) if restarts_left else None
            next_poll = born + 0.5
            while True:
                time.sleep(0.02)
                if proc.poll() is not None:
                    self._record_exit(name, proc, n)
                    break
                now = time.monotonic()
                if next_restart is not None and now >= next_restart:
                    self.pg.restart_immediate()
                    self.timeline.deaths.append(Death(time.time(), "pg_restart", "immediate", n))
                    restarts_left -= 1
                    next_restart = now + self.rng.uniform(2.0, 4.0) if restarts_left else None
                    kill_at = now + DRAIN_TIMEOUT_S  # no kill now: the worker must recover and finish
                    continue
                if now >= kill_at:
                    if s.pg_restarts:
                        self.recovery_problems.append(
                            f"{name} did not finish within {DRAIN_TIMEOUT_S}s of the last Postgres "
                            f"restart\n{status_table(self.stack, self.ids)}"
                        )
                        self.stack.group.stop(name, timeout_s=60)
                        return
                    self._sigkill(name, proc, n, lived=now - born)
                    break
                if now >= next_poll and next_restart is None:
                    next_poll = now + 0.5
                    if self.unsettled() == 0:
                        self.stack.group.stop(name, timeout_s=60)  # SIGTERM: nothing left to do
                        return
            retry_stalled_now(self.stack.url)

    def drain(self) -> None:
        """One clean worker finishes what is left."""
        if self.unsettled() == 0:
            return
        retry_stalled_now(self.stack.url)
        name, proc = self._start_worker(chaos=False)
        deadline = time.monotonic() + DRAIN_TIMEOUT_S
        try:
            while self.unsettled():
                if proc.poll() is not None:
                    raise AssertionError(
                        f"the drain worker exited ({proc.returncode}); see {self.log_dir / name}.log\n"
                        + status_table(self.stack, self.ids)
                    )
                if time.monotonic() > deadline:
                    raise AssertionError(
                        f"emails still unsettled {DRAIN_TIMEOUT_S}s into the drain (stuck jobs?)\n"
                        + status_table(self.stack, self.ids)
                        + "\n"
                        + self.logs_hint()
                    )
                time.sleep(0.2)
        finally:
            self.stack.group.stop(name, timeout_s=60)

    def exit_problems(self) -> list[str]:
        """A worker may exit on its own only when its database went away, and then not with 0
        (a supervisor that restarts failed workers would leave it dead)."""
        if not self.scenario.pg_restarts:
            return [f"a worker died on its own: {e}" for e in self.timeline.exits]
        return [
            f"a worker exited cleanly after losing its database: {e}"
            for e in self.timeline.exits
            if " 0;" in e
        ]

    def logs_hint(self) -> str:
        return (
            f"worker logs: {self.log_dir}/worker-*.log; crash points hit: {self.crash_log}; "
            f"database tables: {self.log_dir / 'tables.json'}"
        )

    def _worker_deaths(self) -> int:
        return self.timeline.count("sigkill", "crash_point", "exit")

    def _start_worker(self, *, chaos: bool) -> tuple[str, subprocess.Popen[bytes]]:
        n = len(self.timeline.workers) + 1
        name = f"worker-{n:02d}" if chaos else f"worker-{n:02d}-drain"
        env = {"MAILSPINE_CHAOS": "", "MAILSPINE_CHAOS_LOG": str(self.crash_log)}
        if chaos and self.scenario.chaos:  # a seed per start: each restart dies somewhere else
            env["MAILSPINE_CHAOS"] = f"{self.scenario.chaos},seed={self.scenario.seed * 1000 + n}"
        command = ["worker", "--concurrency", str(self.scenario.concurrency), "--no-poll"]
        proc = self.stack.group.start(name, command, env=env)
        self.timeline.workers.append(name)
        return name, proc

    def _wait_ready(self, name: str, proc: subprocess.Popen[bytes]) -> bool:
        log = self.log_dir / f"{name}.log"
        deadline = time.monotonic() + WORKER_READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if log.exists() and READY_LINE in log.read_text(errors="replace"):
                return True
            if proc.poll() is not None:
                return False
            time.sleep(0.05)
        raise TimeoutError(f"{name} not ready after {WORKER_READY_TIMEOUT_S}s; see {log}")

    def _sigkill(self, name: str, proc: subprocess.Popen[bytes], n: int, *, lived: float) -> None:
        t = time.time()
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        self.stack.group.children.pop(name, None)
        self.timeline.deaths.append(Death(t, "sigkill", f"after {lived:.2f}s", n))

    def _record_exit(self, name: str, proc: subprocess.Popen[bytes], n: int) -> None:
        self.stack.group.children.pop(name, None)
        entry = next((e for e in self._crash_entries() if e["pid"] == proc.pid), None)
        if entry is not None and proc.returncode == 137:
            context = "".join(f" {k}={v}" for k, v in entry.items() if k not in ("point", "t", "pid"))
            self.timeline.deaths.append(Death(float(entry["t"]), "crash_point", entry["point"] + context, n))
            return
        self.timeline.deaths.append(Death(time.time(), "exit", f"exit code {proc.returncode}", n))
        self.timeline.exits.append(f"{name} exited with {proc.returncode}; see {self.log_dir / name}.log")

    def _crash_entries(self) -> list[dict[str, Any]]:
        if not self.crash_log.exists():
            return []
        return [json.loads(line) for line in self.crash_log.read_text().splitlines() if line.strip()]


@contextmanager
def scenario_stack(
    pg: ChaosPostgres,
    scenario: Scenario,
    *,
    log_root: Path,
    dovecot: Dovecot,
    user: MailUser,
    sink: SmtpSink,
    model: OpenAIServer,
    fill_mailbox: Callable[[Path, int], None] | None = None,
    extra_env: dict[str, str] | None = None,
) -> Iterator[ChaosRun]:
    """A fresh database with CRM, reviewer and token (``running_stack``), the scenario's emails
    ingested, and workers configured for the model server, the SMTP sink and the Sent folder.
    ``fill_mailbox(directory, count)`` writes the emails (default: ``copy_demo_emails``);
    ``extra_env`` adds to (or overrides) the environment of every process."""
    log_dir = log_root / scenario.name
    shutil.rmtree(log_dir, ignore_errors=True)
    dovecot.create_folder(user.name, user.password, "Sent")
    imap = {"name": "chaos", "host": dovecot.host, "port": dovecot.port, "security": "none"}
    imap |= {"username": user.name, "password": user.password, "timeout_s": 10}
    smtp = {"host": sink.host, "port": sink.port, "security": "none", "timeout_s": 10}
    smtp |= {"username": sink.username, "password": sink.password}
    smtp |= {"from_address": "support@mailspine.test", "sent_copy_account": "chaos"}
    env = {
        "MAILSPINE_MODEL_PROVIDER": "openai",
        "MAILSPINE_OPENAI_BASE_URL": model.base_url,
        "MAILSPINE_MODEL": "mailspine-test",
        "MAILSPINE_MODEL_TIMEOUT_S": "10",
        "MAILSPINE_LLM__RETRY_BASE_S": "0.1",
        "MAILSPINE_IMAP_ACCOUNTS": json.dumps([imap]),  # the Sent folder only: workers run --no-poll
        "MAILSPINE_SMTP": json.dumps(smtp),
        # The guard is not under test here, and loading llm-guard and MiniLM takes ~6 s per worker
        # start (1.4 s without): mailspine's own heuristics still run.
        "MAILSPINE_GUARD__LLM_GUARD_ENABLED": "false",
        "MAILSPINE_GUARD__SEMANTIC_ENABLED": "false",
    }
    with running_stack(pg.url, log_dir, env=env | (extra_env or {})) as stack:
        mailbox = log_dir / "mailbox"
        mailbox.mkdir(parents=True, exist_ok=True)
        (fill_mailbox or copy_demo_emails)(mailbox, scenario.emails)
        ids = stack.ingest(mailbox, timeout_s=max(120.0, scenario.emails * 0.1))
        assert len(ids) == scenario.emails, f"ingested {len(ids)} of {scenario.emails}"
        yield ChaosRun(
            scenario=scenario,
            stack=stack,
            pg=pg,
            ids=ids,
            crash_log=log_dir / "chaos-crashes.jsonl",
            rng=random.Random(f"chaos:{scenario.name}:{scenario.seed}"),
        )
