"""Crash safety: every email resumes after a crash without repeating expensive calls or acting twice.

Each scenario runs 20 demo emails through real worker processes (model over HTTP at 0.5 s a call,
CRM over HTTP, SMTP sink, dovecot Sent folder, a Postgres of the suite's own) and kills the worker
again and again — at random moments, or at crash points in the ledger, the checkpointer, the SMTP
sender and the CRM client — or restarts Postgres under it; then a clean worker finishes. What is
asserted, and why each bound is exact, is in ``checks.py``. ``pytest -s`` prints the kills per
scenario; they also go to ``var/test/chaos-summary.json``. On failure: the per-email table, the
deaths in order, and the paths of the worker logs and of a dump of the tables.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from app.settings import REPO_ROOT
from infra.mail.dovecot import Dovecot
from tests.chaos.checks import check, model_call_counts, smtp_window_losses
from tests.chaos.harness import ChaosRun, Scenario
from tests.chaos.model import MODEL_LATENCY_S
from tests.chaos.observed import Observed, dump_tables, status_table
from tests.chaos.postgres import ChaosPostgres
from tests.chaos.rig import chaos_rig

pytestmark = [pytest.mark.chaos, pytest.mark.integration]

LOGS = REPO_ROOT / "var" / "test" / "logs" / "chaos"
SUMMARY = REPO_ROOT / "var" / "test" / "chaos-summary.json"
MIN_TOTAL_KILLS = 50

SCENARIOS = [
    Scenario("sigkill-random", kill_range_s=(0.3, 3.0), kills=12, seed=1),
    Scenario("ledger", chaos="ledger=0.2", kills=16, seed=2),
    Scenario("checkpoint-write", chaos="checkpoint.put=0.035", kills=16, seed=3),
    Scenario("smtp-after-send", chaos="smtp.after_send=0.9", kills=10, seed=4),
    Scenario("crm-after-response", chaos="crm.after_response=0.3", kills=14, seed=5),
    Scenario("postgres-restart", pg_restarts=3, kills=0, seed=6),
]
_results: dict[str, dict[str, Any]] = {}


@pytest.fixture(scope="module")
def summary() -> Iterator[dict[str, dict[str, Any]]]:
    _results.clear()
    yield _results


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_every_email_resumes_without_repeating_or_acting_twice(
    scenario: Scenario,
    chaos_postgres: ChaosPostgres,
    dovecot: Dovecot,
    summary: dict[str, dict[str, Any]],
) -> None:
    started = time.monotonic()
    with chaos_rig(chaos_postgres, dovecot, scenario, log_root=LOGS, latency_s=MODEL_LATENCY_S) as rig:
        run = rig.run
        try:
            run.chaos_phase()
            run.drain()
        finally:
            dump_tables(run.stack, run.log_dir / "tables.json")
        seen = rig.observe()
        problems = [
            *run.recovery_problems,
            *run.exit_problems(),
            *check(seen, deaths=[d.t for d in run.timeline.deaths]),
        ]
        summary[scenario.name] = _report(run, seen, seconds=time.monotonic() - started)
        if problems:
            table = status_table(run.stack, run.ids)
            pytest.fail(
                f"{len(problems)} broken promise(s) in scenario {scenario.name}:\n  - "
                + "\n  - ".join(problems)
                + f"\n\n{table}\n\n{run.timeline.describe()}\n{run.logs_hint()}",
                pytrace=False,
            )


def test_at_least_fifty_kills_in_total(summary: dict[str, dict[str, Any]]) -> None:
    missing = [s.name for s in SCENARIOS if s.name not in summary]
    if missing:
        pytest.skip(f"scenarios not run: {missing}")
    total = sum(r["kills"] for r in summary.values())
    seconds = sum(r["seconds"] for r in summary.values())
    print(f"\nchaos total: survived {total} kills across {len(summary)} scenarios in {seconds:.0f}s")
    assert total >= MIN_TOTAL_KILLS, f"only {total} kills; see {SUMMARY}"


def _report(run: ChaosRun, seen: Observed, *, seconds: float) -> dict[str, Any]:
    """One scenario's numbers: printed (``pytest -s``) and merged into the summary file."""
    t = run.timeline
    result = {
        "kills": t.count("sigkill", "crash_point"),
        "sigkill": t.count("sigkill"),
        "crash_points": dict(Counter(d.detail.split()[0] for d in t.deaths if d.kind == "crash_point")),
        "pg_restarts": t.count("pg_restart"),
        "worker_exits": t.count("exit"),
        "workers_started": len(t.workers),
        "emails": dict(Counter(status for _, _, status, _ in seen.emails)),
        "effects_succeeded": len(seen.succeeded()),
        "replies_sent": len(seen.sink_ids),
        "replies_lost_in_window": len(smtp_window_losses(seen)),
        **model_call_counts(seen),
        "seconds": round(seconds, 1),
    }
    print(
        f"\nchaos {run.scenario.name}: survived {result['kills']} kills ({result['sigkill']} SIGKILL, "
        f"crash points {result['crash_points']}), {result['pg_restarts']} Postgres restarts, "
        f"{result['worker_exits']} worker exits; {result['workers_started']} workers; emails "
        f"{result['emails']}; {result['effects_succeeded']} effects, {result['replies_sent']} replies "
        f"({result['replies_lost_in_window']} lost in the at-most-once window); "
        f"{result['completed_model_calls']} model calls for {result['model_nodes_checkpointed']} "
        f"model nodes; {result['seconds']}s"
    )
    _results[run.scenario.name] = result
    SUMMARY.parent.mkdir(parents=True, exist_ok=True)
    totals = {
        "total_kills": sum(r["kills"] for r in _results.values()),
        "pg_restarts": sum(r["pg_restarts"] for r in _results.values()),
        "seconds": round(sum(r["seconds"] for r in _results.values()), 1),
    }
    SUMMARY.write_text(json.dumps({"scenarios": _results, **totals}, indent=1))
    return result
