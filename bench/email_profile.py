"""Where one email's time goes: ``cProfile`` over the worker's per-email function.

``python -m bench.run --only profile`` (writes the ``profile`` section of docs/benchmarks.md) or
``python -m bench.email_profile`` (prints it; ``--json`` the figures).

A fresh stack (its own database on the configured
Postgres, the reference CRM as a process) and, in this process, what a worker sets up before its
first job: telemetry exporting spans to Postgres, the guard pipeline with its models, the services
(``app.services.open_services``), ``gc.freeze()``. Then ``app.pipeline.process_email`` (load the
raw email, the gateway scan, store and redact, embed for history, the LangGraph run with its
checkpoints, ledger, CRM calls, audit and spans) runs on emails written from the demo mailbox:
``--warmup`` to warm imports, connections and caches, ``--timed`` measured without the profiler
(wall time per email), and one under ``cProfile``. The model is the offline one: no model latency
hides the spine's own cost.

``cProfile`` records the event loop's thread, which is where a worker spends its CPU: the gateway
scan runs on the loop too, and span export runs on the SDK's batch thread, which is not profiled.
The profile's own overhead inflates the total; read the shares, not the milliseconds.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import json
import os
import pstats
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path
from typing import Any

from app.settings import REPO_ROOT, Settings
from tests.chaos.mailbox import write_mailbox
from tests.support.stack import running_stack

LOGS = REPO_ROOT / "var" / "bench" / "logs" / "profile"
STDLIB = sysconfig.get_paths()["stdlib"]
OURS = ("gateway", "agent", "app", "tools", "infra")


def component(filename: str) -> str:
    """Which part of the stack a profiled function belongs to: a mailspine package, a third-party
    distribution, a standard-library module, or C built-ins."""
    if filename.startswith("~") or filename.startswith("<"):
        return "built-ins (C)"
    path = Path(filename)
    if "site-packages" in path.parts:
        after = path.parts[path.parts.index("site-packages") + 1 :]
        return after[0].removesuffix(".py") if after else "site-packages"
    if filename.startswith(STDLIB):
        rel = Path(filename).relative_to(STDLIB).parts
        return f"stdlib {rel[0].removesuffix('.py')}" if rel else "stdlib"
    try:
        rel = path.relative_to(REPO_ROOT).parts
    except ValueError:
        return "other"
    return f"mailspine {rel[0]}" if rel and rel[0] in OURS else "other"


# The event loop's wait for sockets: time spent idle (Postgres, the CRM, SMTP answering), not CPU.
IDLE = ("~", 0, "<method 'poll' of 'select.epoll' objects>")


def summarise(stats: pstats.Stats, *, top: int = 14) -> dict[str, Any]:
    """Own time by component and the functions with the most own time, both without the event
    loop's idle wait (``IDLE``), which is reported apart. Own time, not cumulative: in async code a
    coroutine's cumulative time is counted again at every resume, and the loop's callbacks nest."""
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]  # pstats keeps it untyped
    own: dict[str, float] = {}
    idle = 0.0
    functions = []
    for key, (_, _, tottime, _, _) in raw.items():
        if key == IDLE:
            idle += tottime
            continue
        own[component(key[0])] = own.get(component(key[0]), 0.0) + tottime
        functions.append((tottime, *key))
    functions.sort(reverse=True)
    return {
        "total_s": sum(own.values()),
        "idle_s": idle,
        "by_component": sorted(own.items(), key=lambda kv: kv[1], reverse=True),
        "functions": [
            {"function": _where(filename, line, name), "own_s": tottime}
            for tottime, filename, line, name in functions[:top]
        ],
    }


def _where(filename: str, line: int, name: str) -> str:
    if filename.startswith("~"):
        return name
    path = Path(filename)
    if "site-packages" in path.parts:
        path = Path(*path.parts[path.parts.index("site-packages") + 1 :])
    elif path.is_relative_to(REPO_ROOT):
        path = path.relative_to(REPO_ROOT)
    return f"{path}:{line} {name}"


async def _run(settings: Settings, url: str, ids: list[int], *, warmup: int, timed: int) -> dict[str, Any]:
    from app.pipeline import process_email
    from app.services import open_services
    from app.telemetry import flush_telemetry
    from gateway.guards.pipeline import configure_default_pipeline

    configure_default_pipeline(settings, database_url=url)
    async with open_services(settings, database_url=url) as services:
        gc.freeze()  # as the worker does once everything is loaded
        for email_id in ids[:warmup]:
            await process_email(services, email_id=email_id)
        wall, outcomes = [], []
        for email_id in ids[warmup : warmup + timed]:
            start = time.perf_counter()
            outcomes.append(await process_email(services, email_id=email_id))
            wall.append((time.perf_counter() - start) * 1000)
        profiler = cProfile.Profile()
        profiler.enable()
        outcome = await process_email(services, email_id=ids[warmup + timed])
        profiler.disable()
        flush_telemetry()
    return {
        "wall_ms": wall,
        "outcomes": outcomes,
        "profiled_outcome": outcome,
        "profile": summarise(pstats.Stats(profiler)),
    }


def profile(server_url: str, *, warmup: int = 5, timed: int = 10) -> dict[str, Any]:
    from app.telemetry import setup_telemetry, shutdown_telemetry

    with tempfile.TemporaryDirectory() as tmp, running_stack(server_url, LOGS) as stack:
        # Emails that take the agent's whole path: a new sender each, so none is a duplicate.
        write_mailbox(Path(tmp), warmup + timed + 1)
        ids = stack.ingest(Path(tmp))  # queued, but no worker runs: this process does the work
        env = {k: v for k, v in stack.group.env.items() if k.startswith(("MAILSPINE_", "DATABASE_URL"))}
        os.environ.update(env | {"MAILSPINE_MODEL_PROVIDER": "offline"})
        settings = Settings(_env_file=None)
        setup_telemetry(service_name="mailspine-bench-profile", database_url=stack.url, otlp_endpoint=None)
        try:
            result = asyncio.run(_run(settings, stack.url, ids, warmup=warmup, timed=timed))
        finally:
            shutdown_telemetry()
            for key in env:
                os.environ.pop(key, None)
    wall = result["wall_ms"]
    result |= {
        "warmup": warmup,
        "wall_p50_ms": statistics.median(wall),
        "wall_mean_ms": statistics.fmean(wall),
    }
    return result


def in_subprocess(*, warmup: int = 5, timed: int = 10) -> dict[str, Any]:
    """``profile`` in a process of its own: OpenTelemetry's tracer provider can be set once per
    process, and the profile must see the worker's span export, not an earlier section's."""
    argv = [
        sys.executable,
        "-m",
        "bench.email_profile",
        "--json",
        "--warmup",
        str(warmup),
        "--timed",
        str(timed),
    ]
    out = subprocess.run(argv, check=True, capture_output=True, text=True, timeout=1800).stdout
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


SECTION = """## Where one email's time goes (cProfile of the worker's per-email function)

Command: `{command}` (or `python -m bench.email_profile` to print it alone)

{machine}

`app.pipeline.process_email` in one process set up as a worker (telemetry to Postgres, the guard
pipeline and its models loaded, services open, `gc.freeze()`), on a fresh stack with the reference
CRM as a process and the offline model: {warmup} emails to warm up, {timed} timed without the
profiler (wall time per email: p50 {wall_p50_ms:.0f} ms, mean {wall_mean_ms:.0f} ms; outcomes
{outcomes}), then one under `cProfile` ({profiled_outcome}). `cProfile` records the event loop's
thread, where a worker spends its CPU (the gateway scan runs there too); span export runs on the
SDK's batch thread and is not in it. Of the profiled email's time, {idle_ms:.0f} ms is the event
loop waiting on its sockets (Postgres, the CRM): idle, left out below. The rest, {total_ms:.0f} ms, is
the email's CPU time on the loop, inflated by the profiler's overhead: read the shares.

Own time by component (a function's own time, without what it calls):

| component | ms | share |
|---|---|---|
{components}

The functions with most own time:

| function | ms |
|---|---|
{functions}
"""


def section(command: str, result: dict[str, Any], *, machine: str) -> str:
    prof = result["profile"]
    total = prof["total_s"] or 1.0
    shown = [(name, s) for name, s in prof["by_component"] if s / total >= 0.01]
    rest = sum(s for _, s in prof["by_component"]) - sum(s for _, s in shown)
    rows = [f"| {name} | {s * 1000:.1f} | {s / total:.0%} |" for name, s in shown]
    rows.append(f"| everything under 1% each | {rest * 1000:.1f} | {rest / total:.0%} |")
    outcomes: dict[str, int] = {}
    for outcome in result["outcomes"]:
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    return SECTION.format(
        command=command,
        machine=machine,
        warmup=result["warmup"],
        timed=len(result["wall_ms"]),
        wall_p50_ms=result["wall_p50_ms"],
        wall_mean_ms=result["wall_mean_ms"],
        outcomes=", ".join(f"{n} {o}" for o, n in sorted(outcomes.items())),
        profiled_outcome=result["profiled_outcome"],
        total_ms=total * 1000,
        idle_ms=prof["idle_s"] * 1000,
        components="\n".join(rows),
        functions="\n".join(f"| `{f['function']}` | {f['own_s'] * 1000:.1f} |" for f in prof["functions"]),
    )


def main(argv: list[str] | None = None) -> None:
    from app.db import resolve_database_url
    from app.settings import get_settings
    from bench.run import machine

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--timed", type=int, default=10)
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON line")
    args = parser.parse_args(argv)
    settings = get_settings()
    result = profile(resolve_database_url(settings), warmup=args.warmup, timed=args.timed)
    if args.json:
        print(json.dumps(result))
        return
    postgres = "DATABASE_URL" if settings.database_url else "embedded (pgserver 16)"
    print(section("python -m bench.email_profile", result, machine=machine(postgres=postgres)))


if __name__ == "__main__":
    main()
