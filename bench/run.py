"""``make bench``: throughput, latency, memory and storage of the pipeline on this machine.

Runs the real stack (own database on the configured server, CRM, one worker process) with the
offline model, for several in-worker concurrencies, plus the gateway scan alone in-process.
Writes ``docs/benchmarks.md``. Nothing here asserts a timing: the figures are for reading.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import re
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import psutil

from app.db import Database, drop_database, fresh_database, resolve_database_url
from app.demo import wait_settled
from app.errors import MessageRejected
from app.migrate import upgrade
from app.settings import REPO_ROOT, get_settings
from bench.imap_ingest import measure as measure_imap
from gateway.scan import scan_raw
from tests.support.stack import DEMO_MAILBOX, running_stack

OUT = REPO_ROOT / "docs" / "benchmarks.md"


def synthetic_mailbox(target: Path, count: int) -> None:
    """``count`` emails cycling through the demo mailbox, each with a unique Message-ID."""
    sources = sorted(DEMO_MAILBOX.glob("*.eml"))
    for i in range(count):
        raw = sources[i % len(sources)].read_bytes()
        raw = re.sub(
            rb"(?im)^Message-ID:.*$",
            f"Message-ID: <bench-{i}-{uuid.uuid4().hex[:8]}@bench.test>".encode(),
            raw,
            count=1,
        )
        (target / f"{i:05d}.eml").write_bytes(raw)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def bench_scan(rounds: int) -> dict[str, float]:
    raws = [p.read_bytes() for p in sorted(DEMO_MAILBOX.glob("*.eml"))]
    start = time.perf_counter()
    for _ in range(rounds):
        for i, raw in enumerate(raws):
            with contextlib.suppress(MessageRejected):  # a rejected email is timed too
                scan_raw(raw, email_id=i, max_bytes=25 * 1024 * 1024)
    elapsed = time.perf_counter() - start
    n = rounds * len(raws)
    return {"emails": n, "per_email_ms": elapsed / n * 1000, "emails_per_s": n / elapsed}


def bench_pipeline(server_url: str, count: int, concurrency: int) -> dict[str, Any]:
    with (
        tempfile.TemporaryDirectory() as tmp,
        running_stack(server_url, REPO_ROOT / "var" / "bench" / "logs") as stack,
    ):
        synthetic_mailbox(Path(tmp), count)
        size_before = stack.sql("SELECT pg_database_size(current_database())")[0][0]
        stack.group.start("worker", ["worker", "--concurrency", str(concurrency)])
        worker = psutil.Process(stack.group.children["worker"].pid)
        time.sleep(3)  # let the worker import and connect before the clock starts
        start = time.perf_counter()
        ids = stack.ingest(Path(tmp))
        peak = 0
        db = Database(stack.url)

        async def settle() -> None:
            nonlocal peak
            task = asyncio.create_task(wait_settled(db, ids, timeout_s=1800, progress=False))
            while not task.done():
                peak = max(peak, worker.memory_info().rss)
                await asyncio.sleep(0.2)
            await task
            await db.dispose()

        asyncio.run(settle())
        elapsed = time.perf_counter() - start
        stack.group.stop("worker")
        durations = [
            float(d) for (d,) in stack.sql("SELECT duration_ms FROM spans WHERE name = 'process_email'")
        ]
        size_after = stack.sql("SELECT pg_database_size(current_database())")[0][0]
        breakdown = stack.sql(
            "SELECT name, count(*), avg(duration_ms) FROM spans WHERE name <> 'ingest' "
            "GROUP BY name ORDER BY avg(duration_ms) DESC"
        )
        return {
            "emails": len(ids),
            "concurrency": concurrency,
            "seconds": elapsed,
            "emails_per_s": len(ids) / elapsed,
            "p50_ms": statistics.median(durations),
            "p95_ms": percentile(durations, 0.95),
            "peak_rss_mb": peak / 2**20,
            "db_bytes_per_email": (size_after - size_before) / len(ids),
            "breakdown": breakdown,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--emails", type=int, default=200)
    parser.add_argument("--concurrency", default="1,4,16")
    parser.add_argument(
        "--imap-sizes", default="1000,10000", help="mailbox sizes for the IMAP ingest benchmark"
    )
    parser.add_argument("--imap-batch", type=int, default=50, help="fetch batch (the account default is 50)")
    args = parser.parse_args()
    settings = get_settings()
    server_url = resolve_database_url(settings)
    scan = bench_scan(rounds=20)
    rows = [bench_pipeline(server_url, args.emails, int(c)) for c in args.concurrency.split(",")]
    imap = bench_imap(server_url, [int(n) for n in args.imap_sizes.split(",")], args.imap_batch)
    command = (
        f"make bench  (python -m bench.run --emails {args.emails} --concurrency {args.concurrency} "
        f"--imap-sizes {args.imap_sizes} --imap-batch {args.imap_batch})"
    )
    write_report(command, scan, rows, imap, embedded=not settings.database_url)


def bench_imap(server_url: str, sizes: list[int], batch: int) -> list[dict[str, Any]]:
    name = f"mailspine_bench_imap_{uuid.uuid4().hex[:6]}"
    url = fresh_database(server_url, name)
    try:
        upgrade(url)
        return measure_imap(url, sizes, batch)
    finally:
        drop_database(server_url, name)


REPORT = """# Benchmarks

Command: `{command}`

Machine: {machine}, {cores} cores, {mem:.0f} GiB, Python {python}; Postgres: {postgres}; run {when}.

## Gateway scan alone (parse MIME + all model-free scanners, in-process)

| emails | ms per email | emails/s |
|---|---|---|
| {scan_emails:.0f} | {scan_ms:.2f} | {scan_rate:.0f} |

## Whole pipeline, one worker process, offline model

Ingest → scan → graph (extract, history, plan, risk, review/act, finalize) with CRM writes over
HTTP. Latency is the `process_email` span (worker side, per email); throughput counts from the
start of ingest until every email is settled (done, quarantined, failed or waiting for review).

| emails | concurrency | seconds | emails/s | p50 ms | p95 ms | worker peak RSS MB | DB bytes/email |
|---|---|---|---|---|---|---|---|
{rows}

## Where the time goes (concurrency {first_concurrency}: mean span duration per email)

Spans nest: `process_email` contains the scan and every node; `node act` contains the tool calls.

| span | count | mean ms |
|---|---|---|
{breakdown}

## IMAP ingest (dovecot → Postgres, with job enqueue)

One `sync_folder` over a folder of N messages, in its own process with telemetry on: UID SEARCH,
batched `BODY.PEEK[]` fetches, one transaction per batch (emails, jobs, cursor). Peak RSS is the
whole process (Python, SQLAlchemy, OpenTelemetry included); it should not grow with N.

| messages | fetch batch | seconds | messages/s | peak RSS MB |
|---|---|---|---|---|
{imap_rows}

## Reading the figures

- On this 2-core machine the worker, the CRM, Postgres and the benchmark share two cores. With the
  offline model every step is CPU work, so emails/s stays roughly flat as in-worker concurrency
  grows while latency rises: the run is CPU bound. With a real model each email mostly waits on
  the provider, and concurrency is what raises throughput (the simulated-latency runs belong to
  the scale-out issue).
- The machine is a shared VM: two runs of the same command differed by up to ~35% in emails/s
  (9.0 vs 6.1 at concurrency 1). Compare figures from one run, not across runs.
- IMAP ingest is measured at the account's default fetch batch (50). Peak RSS is flat from 1,000
  to 10,000 messages because UIDs are listed and messages are fetched, stored and dropped one
  batch at a time.

DB bytes/email is the growth of `pg_database_size` (raw email, parsed fields, checkpoints, spans,
ledger, audit, CRM rows) divided by the emails, before any retention.
"""
IMAP_ROW = "| {messages} | {batch} | {seconds:.1f} | {per_s:.0f} | {peak_rss_mb:.0f} |"
ROW = (
    "| {emails:.0f} | {concurrency:.0f} | {seconds:.1f} | {emails_per_s:.1f} | {p50_ms:.0f} | {p95_ms:.0f} "
    "| {peak_rss_mb:.0f} | {db_bytes_per_email:.0f} |"
)


def write_report(
    command: str,
    scan: dict[str, float],
    rows: list[dict[str, Any]],
    imap: list[dict[str, Any]],
    *,
    embedded: bool,
) -> None:
    text = REPORT.format(
        command=command,
        machine=platform.machine(),
        cores=os.cpu_count(),
        mem=psutil.virtual_memory().total / 2**30,
        python=platform.python_version(),
        postgres="embedded (pgserver 16)" if embedded else "DATABASE_URL",
        when=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        scan_emails=scan["emails"],
        scan_ms=scan["per_email_ms"],
        scan_rate=scan["emails_per_s"],
        rows="\n".join(ROW.format(**r) for r in rows),
        first_concurrency=rows[0]["concurrency"],
        imap_rows="\n".join(IMAP_ROW.format(**r) for r in imap),
        breakdown="\n".join(f"| `{name}` | {n} | {float(ms):.1f} |" for name, n, ms in rows[0]["breakdown"]),
    )
    OUT.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
