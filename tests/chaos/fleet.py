"""Several worker processes on one database, some killed, Postgres restarted under them: the
driver of the multi-worker chaos test and of the soak (``bench/soak.py``).

``Fleet(run, ...)()`` starts ``workers`` processes together and keeps them running until no thread
job is left: it SIGKILLs a random one (and starts a fresh one in its place) each time the number
of settled emails passes one of ``kills`` thresholds drawn from the run's seeded generator, and
restarts Postgres in immediate mode at ``pg_restarts`` such thresholds. A worker that exits on its
own is started again, as its supervisor would, when Postgres went away under it; otherwise that
is an error. The jobs of dead workers come back only through the stalled-job retry by heartbeat
(``stale_s``), run every second as the periodic task does every minute in production; it must
never touch a live worker's jobs. ``redeliveries`` running jobs are delivered a second time,
ahead of the queue (``redeliver_running``): two jobs of one thread at once, which only the job
lock (the thread id, ``app/queue.py``) keeps apart.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import psycopg
from procrastinate.exceptions import ConnectorException

from tests.chaos.harness import ChaosRun, Death, retry_stalled_now
from tests.chaos.observed import JobRun, status_table

THREAD_JOBS = ("process_email", "resume_review")


@dataclass
class Fleet:
    run: ChaosRun
    workers: int = 2
    kills: int = 1
    kill_window: tuple[float, float] = (0.2, 0.5)  # kill thresholds, as shares of the emails settled
    pg_restarts: int = 0
    redeliveries: int = 0
    stale_s: float = 20.0  # a worker silent this long is dead (it heartbeats every 10 s)
    timeout_s: float = 200.0
    progress: Callable[[str], None] | None = None  # called with a status line every ~30 s
    procs: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)
    ended_at: dict[str, float] = field(default_factory=dict)  # process name → when it died
    redelivered: set[str] = field(default_factory=set)  # threads
    retried: int = 0  # jobs put back as stalled
    restarted: int = 0  # workers started again after exiting on their own
    _born: dict[str, float] = field(default_factory=dict)
    _pg_restarted: bool = False
    _next_retry: float = 0.0
    _next_redelivery: float = 0.0
    _next_progress: float = 0.0

    def __call__(self) -> None:
        run, total = self.run, len(self.run.ids)

        def thresholds(count: int) -> list[int]:
            lo, hi = (int(total * share) for share in self.kill_window)
            return sorted(run.rng.randint(max(1, lo), max(1, hi)) for _ in range(count))

        kills_at, restarts_at = thresholds(self.kills), thresholds(self.pg_restarts)
        self.procs = [self._start() for _ in range(self.workers)]
        deadline = time.monotonic() + self.timeout_s
        while self._guarded(self._thread_jobs_left, default=1):
            self._supervise()
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"thread jobs left {self.timeout_s:.0f}s into the run\n"
                    f"{status_table(run.stack, run.ids)}\n{run.logs_hint()}"
                )
            settled = total - run.unsettled()
            if kills_at and settled >= kills_at[0]:
                kills_at.pop(0)
                self._kill_and_restart(run.rng.randrange(len(self.procs)))
            if restarts_at and settled >= restarts_at[0]:
                restarts_at.pop(0)
                run.pg.restart_immediate()
                run.timeline.deaths.append(Death(time.time(), "pg_restart", "immediate", 0))
                self._pg_restarted = True
            self._guarded(self._retry_stalled)
            self._guarded(self._redeliver)
            self._report(settled)
            time.sleep(0.25)
        for name, _ in self.procs:
            run.stack.group.stop(name, timeout_s=60)
        assert not kills_at and not restarts_at, "the run ended before every kill and restart happened"

    def _start(self) -> tuple[str, subprocess.Popen[bytes]]:
        name, proc = self.run._start_worker(chaos=True)
        assert self.run._wait_ready(name, proc), f"{name} exited at start; see {self.run.log_dir / name}.log"
        self._born[name] = time.monotonic()
        return name, proc

    def _kill_and_restart(self, victim: int) -> None:
        time.sleep(self.run.rng.uniform(0.0, 1.0))  # not always right after an email settled
        name, proc = self.procs[victim]
        self.run._sigkill(name, proc, victim + 1, lived=time.monotonic() - self._born[name])
        self.ended_at[name] = time.time()
        self.procs[victim] = self._start()

    def _supervise(self) -> None:
        """A worker that exited on its own is an error, unless Postgres went away under it: then
        it must exit non-zero (checked by ``ChaosRun.exit_problems``) and is started again."""
        for i, (name, proc) in enumerate(self.procs):
            if proc.poll() is None:
                continue
            if not self._pg_restarted:
                raise AssertionError(
                    f"{name} exited on its own ({proc.returncode}); see {self.run.log_dir / name}.log"
                )
            self.run._record_exit(name, proc, i + 1)
            self.ended_at[name] = time.time()
            self.restarted += 1
            self.procs[i] = self._start()

    def _retry_stalled(self) -> None:
        """What the periodic task does every minute (``app.tasks.retry_stalled_jobs``), every second."""
        if time.monotonic() >= self._next_retry:
            self.retried += retry_stalled_now(self.run.stack.url, seconds_since_heartbeat=self.stale_s)
            self._next_retry = time.monotonic() + 1.0

    def _redeliver(self) -> None:
        if len(self.redelivered) < self.redeliveries and time.monotonic() >= self._next_redelivery:
            left = self.redeliveries - len(self.redelivered)
            self.redelivered.update(redeliver_running(self.run, skip=self.redelivered, limit=min(2, left)))
            self._next_redelivery = time.monotonic() + 1.0

    def _thread_jobs_left(self) -> int:
        """Thread jobs queued, scheduled for a retry or running (a killed worker's stay ``doing``
        until retried). None left with an email unsettled means the email is lost: ``check``
        reports it."""
        rows = self.run.stack.sql(
            "SELECT count(*) FROM procrastinate_jobs "
            "WHERE task_name = ANY(%s) AND status IN ('todo', 'doing')",
            list(THREAD_JOBS),
        )
        return int(rows[0][0])

    def _guarded(self, step: Callable[[], int | None], *, default: int = 0) -> int:
        """One step of the loop, skipped while Postgres restarts."""
        try:
            return step() or 0
        except (psycopg.OperationalError, ConnectorException):
            time.sleep(0.5)
            return default

    def _report(self, settled: int) -> None:
        if self.progress is not None and time.monotonic() >= self._next_progress:
            self._next_progress = time.monotonic() + 30.0
            self.progress(
                f"{settled}/{len(self.run.ids)} settled; {self.run.timeline.count('sigkill')} SIGKILL, "
                f"{self.run.timeline.count('pg_restart')} Postgres restart(s), "
                f"{self.retried} retried as stalled"
            )


def redeliver_running(run: ChaosRun, *, skip: set[str], limit: int) -> list[str]:
    """A second delivery of up to ``limit`` running ``process_email`` jobs (not of threads in
    ``skip``): same task, arguments and lock, and priority 1, so that it is the next job any free
    slot takes, if the lock lets it. Returns the locks (thread ids)."""
    rows = run.stack.sql(
        "SELECT lock FROM procrastinate_jobs WHERE task_name = 'process_email' AND status = 'doing' "
        "AND NOT lock = ANY(%s) ORDER BY id LIMIT %s",
        list(skip),
        limit,
    )
    locks = [str(lock) for (lock,) in rows]
    if locks:
        run.stack.sql(
            "SELECT unnest(procrastinate_defer_jobs_v1(array_agg(ROW(queue_name, task_name, 1, lock, "
            "NULL, args, NULL)::procrastinate_job_to_defer_v1))) FROM procrastinate_jobs "
            "WHERE task_name = 'process_email' AND lock = ANY(%s) AND priority = 0",
            locks,
        )
    return locks


def recorded_worker_problems(run: ChaosRun, *, min_workers: int) -> list[str]:
    """Postgres says which process ran what: every finished run and every ``process_email`` span
    names its process (``service.instance.id``), and at least ``min_workers`` different ones."""
    ((unnamed_runs, processes),) = run.stack.sql(
        "SELECT count(*) FILTER (WHERE worker IS NULL), count(DISTINCT worker) FROM runs "
        "WHERE finished_at IS NOT NULL AND email_id = ANY(%s)",
        run.ids,
    )
    (unnamed_spans,) = run.stack.sql(
        "SELECT count(*) FROM spans WHERE name = 'process_email' AND service_instance IS NULL"
    )[0]
    problems = [f"{unnamed_runs} finished runs record no worker"] if unnamed_runs else []
    if unnamed_spans:
        problems.append(f"{unnamed_spans} process_email spans record no service.instance.id")
    if processes < min_workers:
        problems.append(f"finished runs name {processes} worker process(es), expected {min_workers} or more")
    return problems


def first_success(runs: list[JobRun]) -> dict[str, str]:
    """Thread → the worker whose run settled it (its first successful run: a redelivered job that
    runs after it finds the email settled)."""
    settled: dict[str, str] = {}
    for run in sorted(runs, key=lambda r: r.start):
        if run.task == "process_email" and run.outcome == "Success":
            settled.setdefault(run.thread_id, run.worker)
    return settled


def handover_problems(runs: list[JobRun]) -> list[str]:
    """Each job a kill interrupted ran again, in another process, to a successful end."""
    problems = []
    for cut in (r for r in runs if r.outcome == "killed"):
        later = [
            r
            for r in runs
            if r.job_id == cut.job_id
            and r.start > cut.end
            and r.worker != cut.worker
            and r.outcome == "Success"
        ]
        if not later:
            problems.append(
                f"job {cut.job_id} ({cut.thread_id}) cut by the death of {cut.worker} never finished"
            )
    if not any(r.outcome == "killed" for r in runs):
        problems.append("no death interrupted a job: nothing was handed over")
    return problems
