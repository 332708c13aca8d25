"""The ``soak`` section of docs/benchmarks.md, from ``bench.soak.soak``'s figures."""

from __future__ import annotations

from typing import Any

SECTION = """## Soak: {emails:,} emails, {workers} workers, {sigkills} SIGKILLs, {pg_restarts} Postgres restart(s)

Command: `{command}` (or `python -m bench.soak --emails N` to print the figures alone)

{machine}

The multi-worker chaos test at scale (`bench/soak.py`, driven by `tests/chaos/fleet.py`): a
Postgres 16 of its own (pgserver; `DATABASE_URL` is not used, the soak restarts the server),
dovecot, the SMTP sink, the reference CRM and the model server answering like the offline model
after {latency_s:g} s per call. {emails:,} emails written from the demo mailbox (each a new message and
sender) are ingested up front, then {workers} `mailspine worker --concurrency {concurrency}` processes
share them. A random worker is SIGKILLed at {sigkills} random moments and a fresh one takes its place;
Postgres is restarted in immediate mode {pg_restarts} time(s), and workers that exit after losing it
are started again, as a supervisor would. Stalled jobs are retried by heartbeat (20 s here, 60 s in
production) and {redelivered} running jobs were delivered a second time. Shared tool rate limits are off.

| | |
|---|---|
| emails settled | {settled:,} of {emails:,}: {statuses} |
| lost (not terminal) | **{unsettled}** |
| broken promises (see below) | **{problems}** |
| wall time, throughput | {seconds:,.0f} s, {emails_per_s:.2f} emails/s |
| worker processes started | {worker_processes} ({worker_exits} after one exited on a lost database) |
| jobs cut by a death, retried as stalled | {jobs_cut}, {retried_as_stalled} |
| side effects (succeeded, each exactly once) | {effects} |
| replies the SMTP sink received | {replies_received:,} ({replies_lost_in_window} lost in the at-most-once window) |
| model calls completed / model nodes checkpointed | {model_calls:,} / {model_nodes:,} |
| runs finished per worker (Postgres, `runs.worker`) | {recorded} |

The promises checked (`tests/chaos/checks.py`, `fleet.py`): every email terminal; every CRM write,
reply and Sent copy exactly once and matching the ledger; the audit chain intact; no model call
repeated without a crash between; no thread run on two workers at once (from the workers' logs);
every job a death cut finished in another process; every finished run names its worker.
{problem_list}

### Postgres bytes

| database | whole database | mailspine tables | per 10,000 emails (whole) |
|---|---|---|---|
{storage_rows}

After the run, checkpoint retention (`mailspine checkpoints prune --older-than 0`: finished threads
keep only their last checkpoint) and a plain `VACUUM` make the deleted rows' space reusable but do
not shrink the files; `VACUUM FULL` shows what the kept data takes. The whole database includes the
reference CRM's schema and Postgres's own catalogs. Largest tables after `VACUUM FULL`: {largest}.

Target (issue 9): at most 1 GB per 10,000 emails after retention: **{target}**.
"""  # noqa: E501  (the title's placeholders)
STORAGE_ROW = "| {label} | {database:.1f} MB | {tables:.1f} MB | {per_10k:.0f} MB |"
RENDERED = ("storage", "problems", "effects", "statuses", "model")
LABELS = {
    "after_run": "after the run",
    "after_retention": "after retention and VACUUM",
    "after_vacuum_full": "after VACUUM FULL",
}


def section(command: str, result: dict[str, Any], *, machine: str) -> str:
    storage, emails = result["storage"], result["emails"]
    rows = []
    for key, label in LABELS.items():
        size = storage[key]
        rows.append(
            STORAGE_ROW.format(
                label=label,
                database=size["database"] / 1e6,
                tables=size["mailspine_tables"] / 1e6,
                per_10k=size["database"] / 1e6 * 10_000 / emails,
            )
        )
    retained = storage["after_retention"]["database"] * 10_000 / emails
    problems = result["problems"]
    return SECTION.format(
        command=command,
        machine=machine,
        settled=emails - result["unsettled"],
        statuses=", ".join(f"{n:,} {s}" for s, n in sorted(result["statuses"].items())),
        problems=len(problems),
        problem_list=("\nBroken:\n\n" + "\n".join(f"- {p}" for p in problems[:20])) if problems else "",
        effects=", ".join(f"{a} {n:,}" for a, n in sorted(result["effects"].items())),
        model_calls=result["model"]["completed_model_calls"],
        model_nodes=result["model"]["model_nodes_checkpointed"],
        recorded=", ".join(f"{n:,}" for _, n in sorted(result["runs_per_recorded_worker"].items())),
        storage_rows="\n".join(rows),
        largest=", ".join(f"{t} {n / 1e6:.1f} MB" for t, n in storage["largest_tables_compacted"].items()),
        target=f"{retained / 1e9:.2f} GB on disk after retention, {'met' if retained <= 1e9 else 'not met'}",
        **{k: v for k, v in result.items() if k not in RENDERED},
    )
