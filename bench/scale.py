"""Scale-out: emails/s and per-email latency for 1, 2 and 4 worker processes and several in-worker
concurrencies, behind a model server that answers every call after a fixed delay or after a delay
drawn per call from a range.

``python -m bench.run --only scale`` (1 s fixed and 0.5–2 s range, into docs/benchmarks.md) or
``python -m bench.scale`` (prints the rows; ``--print-section`` also the rendered section). Each run
is a fresh stack (its own database, the reference CRM, N ``mailspine worker`` processes) with the
model provider pointed at the local OpenAI-compatible server (``tests/support/openai_server.py``)
answering like the offline model after the latency. Workers are started and waited for until
``/readyz`` says ready (guard models loaded), then the mailbox is ingested and the clock runs until
every email is settled.

The *concurrency-bound ideal* is what the model latency alone allows: each email's model calls run
one after another, so ``workers × concurrency`` emails in flight finish at most
``workers × concurrency / (calls per email × mean latency)`` emails per second, the mean of a
range being ``(lo + hi) / 2``. Its share is the measured rate over that ideal. The shared tool rate
limits are switched off (``MAILSPINE_TOOLS__RATE_LIMITS=false``): they model the CRM's and mail
server's quotas, not mailspine's own capacity, and would cap every row at the same figure.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from app.settings import REPO_ROOT
from bench.settle import settle_sampling_rss
from tests.chaos.mailbox import write_mailbox
from tests.support.offline_responder import offline_responder
from tests.support.openai_server import OpenAIServer
from tests.support.stack import free_port, running_stack

LOGS = REPO_ROOT / "var" / "bench" / "logs" / "scale"
# 4 workers × concurrency 64 open about 4 × (2 × 64 + 10) connections (docs/operations.md,
# "Scaling"); the default 100 is refused with "too many clients" and the run stalls.
MAX_CONNECTIONS = 700
POSTGRES = f"its own (pgserver 16, max_connections {MAX_CONNECTIONS})"
WORKERS = (1, 2, 4)
CONCURRENCIES = (1, 8, 64)


@dataclass(frozen=True)
class Latency:
    """The model server's delay per call: fixed when ``lo == hi``, else uniform in ``[lo, hi]``."""

    lo: float
    hi: float

    @property
    def mean(self) -> float:
        return (self.lo + self.hi) / 2

    @property
    def fixed(self) -> bool:
        return self.lo == self.hi

    @property
    def offline(self) -> bool:
        """No model server: the workers run the in-process offline model (``OFFLINE``)."""
        return self.hi == 0.0

    @property
    def label(self) -> str:
        if self.offline:
            return "offline"
        return f"{self.lo:g} s" if self.fixed else f"{self.lo:g}–{self.hi:g} s"

    @property
    def slug(self) -> str:  # a directory name
        return self.label.replace("–", "-").replace(" ", "")


OFFLINE = Latency(0.0, 0.0)
DEFAULT_LATENCIES = (OFFLINE, Latency(1.0, 1.0), Latency(0.5, 2.0))  # the targets are at 1 s
OFFLINE_EMAILS = 120  # per row with the offline model: no model latency, so every row is CPU-bound


@dataclass(frozen=True)
class Config:
    workers: int
    concurrency: int
    emails: int
    latency: Latency


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else 0.0


def measure(server_url: str, config: Config, *, seed: int = 0) -> dict[str, Any]:
    """One stack, ``config.workers`` workers, ``config.emails`` emails; the row's figures."""
    latency = config.latency
    with (
        tempfile.TemporaryDirectory() as tmp,
        contextlib.nullcontext(None)
        if latency.offline
        else OpenAIServer(
            responder=offline_responder,
            latency_s=latency.lo,
            latency_range_s=None if latency.fixed else (latency.lo, latency.hi),
            seed=seed,
        ) as model,
    ):
        write_mailbox(Path(tmp), config.emails)
        env = {
            "MAILSPINE_TOOLS__RATE_LIMITS": "false",
            "MAILSPINE_WORKER_CONCURRENCY": str(config.concurrency),
            "MAILSPINE_MODEL_PROVIDER": "offline",
        }
        if model is not None:
            env |= {
                "MAILSPINE_MODEL_PROVIDER": "openai",
                "MAILSPINE_OPENAI_BASE_URL": model.base_url,
                "MAILSPINE_MODEL": "mailspine-bench",
                "MAILSPINE_MODEL_TIMEOUT_S": str(max(30.0, latency.hi * 10)),
            }
        log_dir = LOGS / latency.slug / f"w{config.workers}-c{config.concurrency}"
        with running_stack(server_url, log_dir, env=env) as stack:
            procs = []
            for n in range(config.workers):
                port = free_port()
                name = f"worker-{n + 1}"
                proc = stack.group.start(
                    name, ["worker", "--no-poll"], env={"MAILSPINE_WORKER_HEALTH_PORT": str(port)}
                )
                procs.append(psutil.Process(proc.pid))
                stack.group.wait_http(name, f"http://127.0.0.1:{port}/readyz", timeout_s=300)
            calls_before = len(model.completed_calls()) if model else 0
            cpu_before = sum(_cpu_s(p) for p in procs)
            start = time.perf_counter()
            ids = stack.ingest(Path(tmp))
            peak = settle_sampling_rss(stack.url, ids, procs)
            elapsed = time.perf_counter() - start
            cpu = sum(_cpu_s(p) for p in procs) - cpu_before
            answered = model.completed_calls()[calls_before:] if model else []
            calls = len(answered)
            durations = [
                float(d) for (d,) in stack.sql("SELECT duration_ms FROM spans WHERE name = 'process_email'")
            ]
    per_email_calls = calls / len(ids)
    ideal = config.workers * config.concurrency / (per_email_calls * latency.mean) if calls else 0.0
    rate = len(ids) / elapsed
    return {
        "latency": latency.label,
        "latency_mean_s": latency.mean,
        "workers": config.workers,
        "concurrency": config.concurrency,
        "emails": len(ids),
        "seconds": elapsed,
        "emails_per_s": rate,
        "p50_ms": statistics.median(durations) if durations else 0.0,
        "p95_ms": percentile(durations, 0.95),
        "model_calls_per_email": per_email_calls,
        "model_delay_mean_s": statistics.mean(c.delay_s for c in answered) if answered else 0.0,
        "ideal_per_s": ideal,
        "share_of_ideal": rate / ideal if ideal else 0.0,
        "peak_rss_mb": peak / 2**20,
        "worker_cpu_ms_per_email": 1000 * cpu / len(ids),
    }


def _cpu_s(proc: psutil.Process) -> float:
    times = proc.cpu_times()
    return float(times.user + times.system)


def configs(
    latency: Latency,
    *,
    workers: Sequence[int] = WORKERS,
    concurrencies: Sequence[int] = CONCURRENCIES,
    emails_per_slot: int = 3,
    max_emails: int = 300,
) -> list[Config]:
    """Every workers × concurrency pair, ``emails_per_slot`` emails per slot (24 to ``max_emails``)."""

    def emails(w: int, c: int) -> int:
        if latency.offline:
            return min(max_emails, OFFLINE_EMAILS)
        return min(max_emails, max(24, emails_per_slot * w * c))

    return [Config(w, c, emails(w, c), latency) for w in workers for c in concurrencies]


def speedups(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each multi-worker row's emails/s over the one-worker row's at the same concurrency."""
    one = {r["concurrency"]: r["emails_per_s"] for r in rows if r["workers"] == 1}
    pairs = [(r, one.get(r["concurrency"])) for r in rows if r["workers"] != 1]
    return [
        {"workers": r["workers"], "concurrency": r["concurrency"], "x": r["emails_per_s"] / base}
        for r, base in pairs
        if base
    ]


def run(
    server_url: str,
    *,
    latencies: Sequence[Latency] = DEFAULT_LATENCIES,
    workers: Sequence[int] = WORKERS,
    concurrencies: Sequence[int] = CONCURRENCIES,
    emails_per_slot: int = 3,
    max_emails: int = 300,
    seed: int = 0,
) -> dict[str, Any]:
    """One set of rows per latency, each with its speedups against one worker."""
    sets = []
    sizes = {"emails_per_slot": emails_per_slot, "max_emails": max_emails}
    for latency in latencies:
        rows = []
        for config in configs(latency, workers=workers, concurrencies=concurrencies, **sizes):
            print(
                f"scale: model {latency.label}, {config.workers} worker(s) × concurrency "
                f"{config.concurrency}, {config.emails} emails",
                flush=True,
            )
            rows.append(measure(server_url, config, seed=seed))
            print(json.dumps(rows[-1]), flush=True)
        bounds = {"lo": latency.lo, "hi": latency.hi, "mean": latency.mean}
        sets.append({"latency": bounds, "label": latency.label, "fixed": latency.fixed, "rows": rows})
        sets[-1]["speedup"] = speedups(rows)
    return {"sets": sets}


@contextlib.contextmanager
def scale_postgres() -> Iterator[str]:
    """A Postgres 16 of the benchmark's own (pgserver, as the chaos suite's) with
    ``max_connections`` sized for the largest row; yields its URL."""
    from tests.chaos.postgres import ChaosPostgres

    server = ChaosPostgres().start()
    try:
        server.configure(max_connections=MAX_CONNECTIONS)
        yield server.url
    finally:
        server.stop()


def _ints(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--latency", type=float, help="fixed seconds per model call (default 1.0)")
    parser.add_argument("--offline", action="store_true", help="also a set with the in-process offline model")
    parser.add_argument(
        "--latency-range", type=float, nargs=2, metavar=("LO", "HI"), help="seconds per call, uniform"
    )
    parser.add_argument("--workers", type=_ints, default=list(WORKERS), help="e.g. 1,2,4")
    parser.add_argument("--concurrency", type=_ints, default=list(CONCURRENCIES), help="e.g. 1,8,64")
    parser.add_argument("--emails-per-slot", type=int, default=3, help="emails per concurrent slot")
    parser.add_argument("--max-emails", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0, help="seed of the latency range's draws")
    parser.add_argument("--print-section", action="store_true", help="print the rendered section too")
    args = parser.parse_args(argv)
    latencies = [OFFLINE] if args.offline else []
    latencies += [Latency(args.latency, args.latency)] if args.latency is not None else []
    latencies += [Latency(*args.latency_range)] if args.latency_range else []
    with scale_postgres() as url:
        result = run(
            url,
            latencies=latencies or [Latency(1.0, 1.0)],
            workers=args.workers,
            concurrencies=args.concurrency,
            emails_per_slot=args.emails_per_slot,
            max_emails=args.max_emails,
            seed=args.seed,
        )
    print(json.dumps(result, indent=2))
    if args.print_section:
        from bench.run import machine
        from bench.scale_report import section

        command = " ".join(["python -m bench.scale", *(sys.argv[1:] if argv is None else argv)])
        print(section(command, result, machine=machine(postgres=POSTGRES)))


if __name__ == "__main__":
    main()
