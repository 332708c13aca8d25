"""Two workers on one database: 300 emails, one SIGKILL, nothing lost, nothing done twice.

Two ``mailspine worker`` processes (concurrency 4 each) start together on the same database and
share 300 emails rewritten from the demo mailbox (``write_mailbox``). While they run, 30 running
jobs are delivered a second time, ahead of the queue (``fleet.redeliver_running``): two jobs of one
thread at once, which only the job lock (the thread id, ``app/queue.py``) keeps apart. Once a
seeded share of the emails has settled, one worker is killed by SIGKILL and started again; the
jobs it was running come back only through the stalled-job retry by heartbeat (``STALE_S``), run
every second here as the periodic task does every minute in production, and it must never touch a
live worker's jobs. Then the workers drain the queue and stop.

Asserted: every promise of ``checks.check`` (every email settled, CRM and SMTP effects exactly
once, no model call repeated without a crash between); every worker process settled emails, by
both routes (automatic and review); each job the kill cut ran again elsewhere to its end; and no
thread ran in two places at once, from the workers' own logs (``observed.job_runs``, who ran which
job from when to when); Postgres records which process finished each run and recorded each span
(``runs.worker``, ``spans.service_instance``). ``pytest -s`` prints the figures.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path

import pytest

from app.settings import REPO_ROOT
from infra.mail.dovecot import Dovecot
from tests.chaos.checks import check, model_call_counts, thread_overlaps
from tests.chaos.fleet import Fleet, first_success, handover_problems, recorded_worker_problems
from tests.chaos.harness import Scenario
from tests.chaos.mailbox import write_mailbox
from tests.chaos.observed import JobRun, Observed, dump_tables, job_runs, status_table
from tests.chaos.postgres import ChaosPostgres
from tests.chaos.rig import chaos_rig

pytestmark = [pytest.mark.chaos, pytest.mark.integration]

LOGS = REPO_ROOT / "var" / "test" / "logs" / "chaos"
SCENARIO = Scenario("multi-worker", emails=300, concurrency=4, kills=1, seed=9)
MODEL_LATENCY_S = 0.25  # each email makes two calls; kills land inside some of them
STALE_S = 20.0  # a worker silent this long is dead (it heartbeats every 10 s); production uses 60
# The default 1 reply/s (shared by all workers) would make sending the ~150 replies the whole run.
SEND_RATE = {"rate_per_s": 5.0, "burst": 10}
REDELIVERIES = 30  # running jobs delivered a second time
RUN_TIMEOUT_S = 200.0  # pytest's own timeout is 300 s per test


def test_two_workers_share_the_queue_without_losing_or_repeating(
    chaos_postgres: ChaosPostgres, dovecot: Dovecot
) -> None:
    started = time.monotonic()
    with chaos_rig(
        chaos_postgres,
        dovecot,
        SCENARIO,
        log_root=LOGS,
        latency_s=MODEL_LATENCY_S,
        fill_mailbox=write_mailbox,
        extra_env={"MAILSPINE_TOOLS__RATES": json.dumps({"send_reply": SEND_RATE})},
    ) as rig:
        run = rig.run
        two = Fleet(
            run, workers=2, kills=1, redeliveries=REDELIVERIES, stale_s=STALE_S, timeout_s=RUN_TIMEOUT_S
        )
        try:
            two()
        finally:
            dump_tables(run.stack, run.log_dir / "tables.json")
        seen = rig.observe()
        runs = rig.job_runs(two.ended_at)
        problems = [
            *check(seen, deaths=[d.t for d in run.timeline.deaths]),
            *thread_overlaps(runs),
            *handover_problems(runs),
            *recorded_worker_problems(run, min_workers=2),
            *route_problems(seen, runs, workers=run.timeline.workers),
        ]
        print(summary(two, seen, runs, seconds=time.monotonic() - started))
        if problems:
            timeline = f"{run.timeline.describe()}\n{run.logs_hint()}"
            pytest.fail(
                f"{len(problems)} broken promise(s) with two workers:\n  - "
                + "\n  - ".join(problems)
                + f"\n\n{status_table(run.stack, run.ids)}\n\n{timeline}",
                pytrace=False,
            )


# ---------------------------------------------------------------- what the logs show


def route_problems(seen: Observed, runs: list[JobRun], *, workers: list[str]) -> list[str]:
    """Every worker process settled emails, and both the automatic and the review route ran."""
    settled_by = set(first_success(runs).values())
    problems = [f"{w} settled no email" for w in workers if w not in settled_by]
    statuses = Counter(status for _, _, status, _ in seen.emails)
    if not {"done", "review"} <= set(statuses):
        problems.append(f"expected both automatic and reviewed routes, got {dict(statuses)}")
    return problems


def summary(two: Fleet, seen: Observed, runs: list[JobRun], *, seconds: float) -> str:
    statuses = Counter(status for _, _, status, _ in seen.emails)
    per_worker = Counter(first_success(runs).values())
    workers_of: dict[str, set[str]] = {}
    for r in runs:
        workers_of.setdefault(r.thread_id, set()).add(r.worker)
    handed = sum(len(w) > 1 for w in workers_of.values())
    return (
        f"\nmulti-worker: {len(seen.emails)} emails {dict(statuses)}; {two.run.timeline.count('sigkill')} "
        f"SIGKILL; emails settled per worker {dict(sorted(per_worker.items()))}; {len(runs)} job runs, "
        f"{sum(r.outcome == 'killed' for r in runs)} cut by the kill, {two.retried} retried as stalled, "
        f"{len(two.redelivered)} running jobs delivered again, {handed} threads run by two processes "
        f"in turn; {len(seen.succeeded())} effects, "
        f"{len(seen.sink_ids)} replies; {model_call_counts(seen)}; {seconds:.1f}s"
    )


def test_the_logs_show_a_thread_run_in_two_places_at_once(tmp_path: Path) -> None:
    """The evidence can fail: worker-02 starts email 7's redelivered job while worker-01 still runs
    the first (the lines are procrastinate's own); worker-01 is then killed inside another job."""

    def line(at: str, job: int, email: int, end: str = "") -> str:
        call = f"process_email[{job}](trace={{'traceparent': '00-{job}'}}, email_id={email})"
        text = f"Job {call} ended with status: {end}" if end else f"Starting job {call}"
        return f"2026-01-01 10:00:{at} INFO [worker] procrastinate.worker.worker: {text}\n"

    done = "Success, lasted 2.500 s - Result: done"
    (tmp_path / "worker-01.log").write_text(
        line("00,000", 1, 7) + line("02,500", 1, 7, done) + line("03,000", 3, 8)
    )
    (tmp_path / "worker-02.log").write_text(line("02,499", 2, 7) + line("02,600", 2, 7, done))
    killed = time.mktime((2026, 1, 1, 10, 0, 4, 0, 0, -1))
    runs = job_runs(tmp_path, ["worker-01", "worker-02"], killed_at={"worker-01": killed}, review_email={})
    assert [(r.worker, r.job_id, r.outcome, r.result) for r in runs] == [
        ("worker-01", 1, "Success", "done"),
        ("worker-02", 2, "Success", "done"),
        ("worker-01", 3, "killed", ""),
    ]
    assert runs[2].end == killed
    assert thread_overlaps(runs) == [
        "email-7 ran on worker-01 (job 1, Success) and on worker-02 (job 2) at once: 0.001s overlap"
    ]
    assert handover_problems(runs) == ["job 3 (email-8) cut by the death of worker-01 never finished"]
