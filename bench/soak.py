"""The soak: 10,000 emails through two workers with random SIGKILLs and a Postgres restart; then
the Postgres bytes the run left, before and after retention.

``python -m bench.run --only soak`` (writes the ``soak`` section of docs/benchmarks.md) or
``python -m bench.soak --emails 300`` (prints the figures; a quick look). It is the multi-worker
chaos test (``tests/chaos/test_multi_worker.py``) at scale, with the same parts and checks:

- a Postgres of its own (pgserver 16, ``tests/chaos/postgres.py``), restarted in immediate mode
  mid-run; ``DATABASE_URL`` is not used, because the soak must be able to restart the server;
- dovecot for the Sent folder, the aiosmtpd sink, the reference CRM, the local OpenAI-compatible
  server answering like the offline model (``--latency`` seconds per call);
- the emails are written from the demo mailbox's 39 (``tests/chaos/mailbox.write_mailbox``: each a
  new message and sender) and ingested up front: a backlog of the whole soak;
- ``tests/chaos/fleet.Fleet`` runs the workers, SIGKILLs one at ``--kills`` random moments (a fresh
  one takes its place), restarts Postgres, restarts workers that exit after losing it, retries
  stalled jobs by heartbeat and delivers some running jobs a second time;
- then ``checks.check`` (nothing lost, no effect twice, ledger, CRM, SMTP, Sent folder, audit
  chain, model calls), no thread on two workers at once (from the worker logs), each killed job
  finished elsewhere, and the workers recorded in Postgres.

Storage: the database's size (``pg_database_size``, and the mailspine tables alone without the
reference CRM's schema) after the run, after ``mailspine checkpoints prune --older-than 0`` and a
``VACUUM``, and after ``VACUUM FULL``; per 10,000 emails.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from typing import Any

from app.settings import REPO_ROOT
from infra.mail.dovecot import Dovecot
from tests.chaos.checks import check, model_call_counts, smtp_window_losses, thread_overlaps
from tests.chaos.fleet import Fleet, first_success, handover_problems, recorded_worker_problems
from tests.chaos.harness import ChaosRun, Scenario
from tests.chaos.mailbox import write_mailbox
from tests.chaos.postgres import ChaosPostgres
from tests.chaos.rig import chaos_rig

LOGS = REPO_ROOT / "var" / "bench" / "logs"
# What `make bench` runs (bench.run passes --soak-emails): two workers, six SIGKILLs, one restart.
DEFAULTS: dict[str, Any] = {
    "workers": 2,
    "concurrency": 8,
    "kills": 6,
    "pg_restarts": 1,
    "latency_s": 0.05,
    "seed": 1,
}
SIZE_SQL = (
    "SELECT pg_database_size(current_database()), coalesce(sum(pg_total_relation_size(c.oid)), 0) "
    "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE c.relkind IN ('r', 'm') AND n.nspname = 'public'"
)
TABLES_SQL = (
    "SELECT c.relname, pg_total_relation_size(c.oid) FROM pg_class c "
    "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'r' AND n.nspname = 'public' "
    "ORDER BY 2 DESC LIMIT 8"
)


def soak(
    *, emails: int, workers: int, concurrency: int, kills: int, pg_restarts: int, latency_s: float, seed: int
) -> dict[str, Any]:
    scenario = Scenario(
        "soak", emails=emails, concurrency=concurrency, kills=kills, pg_restarts=pg_restarts, seed=seed
    )
    pg, dovecot = ChaosPostgres().start(), Dovecot()
    dovecot.start()
    try:
        with chaos_rig(
            pg,
            dovecot,
            scenario,
            log_root=LOGS,
            latency_s=latency_s,
            fill_mailbox=write_mailbox,
            # The CRM's and mail server's quotas are not under test: no shared rate limits.
            extra_env={"MAILSPINE_TOOLS__RATE_LIMITS": "false"},
        ) as rig:
            run = rig.run
            print(
                f"soak: {emails} emails ingested; {workers} workers at concurrency {concurrency}", flush=True
            )
            fleet = Fleet(
                run,
                workers=workers,
                kills=kills,
                kill_window=(0.05, 0.95),
                pg_restarts=pg_restarts,
                redeliveries=max(10, emails // 200),
                timeout_s=max(600.0, emails * 2.0),
                progress=lambda line: print(f"soak: {line}", flush=True),
            )
            started = time.monotonic()
            fleet()
            seconds = time.monotonic() - started
            print(f"soak: settled in {seconds:.0f}s; checking", flush=True)
            seen = rig.observe()
            runs = rig.job_runs(fleet.ended_at)
            problems = [
                *check(seen, deaths=[d.t for d in run.timeline.deaths]),
                *thread_overlaps(runs),
                *handover_problems(runs),
                *recorded_worker_problems(run, min_workers=workers),
                *run.exit_problems(),
            ]
            figures = _figures(run, fleet, seen, runs, seconds=seconds, latency_s=latency_s)
            figures["problems"] = problems
            figures["storage"] = storage(run)
            return figures
    finally:
        dovecot.stop(remove_data=True)
        pg.stop()


def _figures(
    run: ChaosRun, fleet: Fleet, seen: Any, runs: list[Any], *, seconds: float, latency_s: float
) -> dict[str, Any]:
    statuses = Counter(status for _, _, status, _ in seen.emails)
    effects = Counter(e.action for e in seen.succeeded())
    recorded = {str(w): int(n) for w, n in run.stack.sql("SELECT worker, count(*) FROM runs GROUP BY 1")}
    return {
        "emails": len(run.ids),
        "workers": fleet.workers,
        "concurrency": run.scenario.concurrency,
        "latency_s": latency_s,
        "seconds": seconds,
        "emails_per_s": len(run.ids) / seconds,
        "statuses": dict(statuses),
        "unsettled": run.unsettled(),
        "sigkills": run.timeline.count("sigkill"),
        "pg_restarts": run.timeline.count("pg_restart"),
        "worker_exits": fleet.restarted,
        "worker_processes": len(run.timeline.workers),
        "jobs_cut": sum(r.outcome == "killed" for r in runs),
        "retried_as_stalled": fleet.retried,
        "redelivered": len(fleet.redelivered),
        "job_runs": len(runs),
        "settled_per_worker": dict(sorted(Counter(first_success(runs).values()).items())),
        "runs_per_recorded_worker": recorded,
        "effects": dict(effects),
        "replies_received": len(seen.sink_ids),
        "replies_lost_in_window": len(smtp_window_losses(seen)),
        "model": model_call_counts(seen),
    }


def storage(run: ChaosRun) -> dict[str, Any]:
    """Database bytes after the run, after retention (prune + VACUUM), after VACUUM FULL."""

    def sizes() -> dict[str, int]:
        ((total, mailspine),) = run.stack.sql(SIZE_SQL)
        return {"database": int(total), "mailspine_tables": int(mailspine)}

    after_run = sizes()
    tables = {str(t): int(n) for t, n in run.stack.sql(TABLES_SQL)}
    proc = run.stack.group.start("prune", ["checkpoints", "prune", "--older-than", "0"])
    if proc.wait(1800) != 0:
        raise RuntimeError(f"checkpoints prune failed; see {run.log_dir / 'prune.log'}")
    run.stack.group.children.pop("prune", None)
    _vacuum(run.stack.url, full=False)
    after_retention = sizes()
    _vacuum(run.stack.url, full=True)
    compacted = sizes()
    tables_compacted = {str(t): int(n) for t, n in run.stack.sql(TABLES_SQL)}
    return {
        "after_run": after_run,
        "after_retention": after_retention,
        "after_vacuum_full": compacted,
        "largest_tables_after_run": tables,
        "largest_tables_compacted": tables_compacted,
    }


def _vacuum(url: str, *, full: bool) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM (FULL, ANALYZE)" if full else "VACUUM (ANALYZE)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--emails", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=DEFAULTS["workers"])
    parser.add_argument("--concurrency", type=int, default=DEFAULTS["concurrency"])
    parser.add_argument("--kills", type=int, default=DEFAULTS["kills"], help="SIGKILLs at random moments")
    parser.add_argument("--pg-restarts", type=int, default=DEFAULTS["pg_restarts"])
    parser.add_argument("--latency", type=float, default=DEFAULTS["latency_s"], help="seconds per model call")
    parser.add_argument("--seed", type=int, default=DEFAULTS["seed"])
    args = parser.parse_args(argv)
    result = soak(
        emails=args.emails,
        workers=args.workers,
        concurrency=args.concurrency,
        kills=args.kills,
        pg_restarts=args.pg_restarts,
        latency_s=args.latency,
        seed=args.seed,
    )
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
