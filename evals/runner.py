"""``mailspine eval run``: the real graph over a labelled dataset, in a database of its own.

    mailspine eval run [--dataset PATH] [--prompt name@version ...] [--model M] [--limit N] [--json]

One run:

1. creates a fresh database on the configured Postgres (``DATABASE_URL`` or the embedded one),
   migrates it and seeds the guard's injection corpus, so production data is never touched;
2. ingests each case's raw email (``app.ingest.ingest_messages``), then runs exactly what a worker
   runs for it, ``app.pipeline.process_email``: the gateway scan, PII redaction into the vault and
   the production graph, with the sandbox CRM and no SMTP (``evals.sandbox``). Cases run one at a
   time, in dataset order, so sender history is what a worker would have seen;
3. reads back what happened (``evals.collect``), scores it (``evals.metrics``), stores the run in
   ``eval_runs`` of the configured database and drops the eval database (unless ``keep_db``).

Telemetry is set up for this process with the eval database as its span store (trajectories come
from its ``spans`` table), so run it in a process of its own, as the command does.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from agent.prompts import PROMPTS_DIR, load_prompt, pinned_prompts
from app.db import Database, drop_database, fresh_database
from app.errors import ConfigurationError
from app.ingest import ingest_messages
from app.pipeline import process_email
from app.repo import eval_runs
from app.settings import REPO_ROOT, Settings
from app.telemetry import flush_telemetry, setup_telemetry, shutdown_telemetry
from evals.collect import observe
from evals.golden import GOLDEN, GoldenCase, load_golden
from evals.metrics import summarize
from evals.observed import Observed, Pair
from evals.report import case_row, model_label
from evals.sandbox import eval_settings, sandbox_services
from tools.mailbox_dir import MailboxMessage

log = logging.getLogger(__name__)
_PIN = re.compile(r"^(?P<name>[a-z][a-z0-9_-]*)@(?P<version>\d+(?:\.\d+)*(?:-draft\.\d+)?)$")


@dataclass(frozen=True)
class EvalRequest:
    dataset: Path = GOLDEN
    prompts: dict[str, str] = field(default_factory=dict)  # pins: {name: version}
    model: str | None = None
    limit: int | None = None
    keep_db: bool = False
    store: bool = True


def parse_pins(values: list[str]) -> dict[str, str]:
    """``["extract@1.0.0"]`` -> ``{"extract": "1.0.0"}``; an unknown prompt or version is an error."""
    pins: dict[str, str] = {}
    for value in values:
        m = _PIN.match(value.strip())
        if m is None:
            raise ConfigurationError(f"--prompt takes name@version, e.g. extract@1.0.0 (got {value!r})")
        pins[m["name"]] = m["version"]
    try:
        with pinned_prompts(pins):
            pass
    except FileNotFoundError as exc:
        raise ConfigurationError(str(exc)) from exc
    return pins


async def register_stored_pins(database_url: str, values: list[str]) -> None:
    """A pinned version that is no file (a draft: ``mailspine prompts draft``) is read from the
    registry in ``database_url`` and made loadable in this process, so that it can be evaluated
    (and then promoted with that run). An unknown version is reported by ``parse_pins``."""
    from agent.prompts import Prompt, prompt_files, register_prompt
    from app.repo import prompts as prompt_repo

    files = prompt_files()
    wanted = [(m["name"], m["version"]) for v in values if (m := _PIN.match(v.strip()))]
    wanted = [(n, v) for n, v in wanted if v not in files.get(n, {})]
    if not wanted:
        return
    db = Database(database_url)
    try:
        async with db.transaction() as session:
            for name, version in wanted:
                row = await prompt_repo.get_version(session, name=name, version=version)
                if row is not None:
                    register_prompt(Prompt.model_validate(row.content))
    finally:
        await db.dispose()


def prompts_in_effect(pins: dict[str, str]) -> dict[str, str]:
    """Every prompt in the registry and the version a node gets with these pins."""
    names = sorted(p.name for p in PROMPTS_DIR.iterdir() if p.is_dir() and any(p.glob("*.yaml")))
    with pinned_prompts(pins):
        return {name: load_prompt(name).version for name in names}


def dataset_label(path: Path) -> str:
    resolved = path.resolve()
    return str(resolved.relative_to(REPO_ROOT)) if resolved.is_relative_to(REPO_ROOT) else str(resolved)


async def _ingest(db: Database, cases: list[GoldenCase]) -> dict[str, int]:
    """Each case's email id; a case whose message is already stored (a duplicate) gets none."""
    ids: dict[str, int] = {}
    for case in cases:
        message = MailboxMessage(ref=f"eval/{case.id}", raw=case.raw.encode("utf-8"))
        report = await ingest_messages(db, [message], account="eval", queue="eval")
        if report.new_ids:
            ids[case.id] = report.new_ids[0]
    return ids


async def _evaluate(settings: Settings, url: str, cases: list[GoldenCase]) -> list[Pair]:
    vault_key = settings.pii.vault_key.get_secret_value()
    async with sandbox_services(settings, database_url=url) as services:
        ids = await _ingest(services.db, cases)
        latency: dict[str, float] = {}
        errors: dict[str, str] = {}
        for n, case in enumerate(cases, start=1):
            if case.id not in ids:
                errors[case.id] = "not ingested: the same message is already in the dataset"
                continue
            start = time.perf_counter()
            try:
                await process_email(services, email_id=ids[case.id])
            except Exception as exc:  # recorded on the case; the run goes on
                log.exception("eval case %s failed", case.id)
                errors[case.id] = f"{type(exc).__name__}: {exc}"[:500]
            latency[case.id] = (time.perf_counter() - start) * 1000
            if n % 25 == 0:
                log.info("eval: %d of %d cases run", n, len(cases))
        await asyncio.to_thread(flush_telemetry)
        pairs = []
        for case in cases:
            if case.id in errors:
                got = Observed(
                    status="error", route="error", email_id=ids.get(case.id), detail=errors[case.id]
                )
            else:
                got = await observe(
                    services.db, email_id=ids[case.id], vault_key=vault_key, latency_ms=latency[case.id]
                )
            pairs.append(Pair(case=case, got=got))
        return pairs


async def _store(url: str, report: dict[str, Any]) -> int:
    db = Database(url)
    try:
        async with db.transaction() as session:
            row = await eval_runs.record_eval_run(
                session,
                started_at=datetime.fromisoformat(report["started_at"]),
                finished_at=datetime.fromisoformat(report["finished_at"]),
                dataset_path=report["dataset"]["path"],
                dataset_sha256=report["dataset"]["sha256"],
                prompts=report["prompts"],
                provider=report["provider"],
                model=report["model"],
                metrics=report["metrics"],
                cases=report["cases"],
            )
            return row.id
    finally:
        await db.dispose()


async def _storable(url: str) -> bool:
    db = Database(url)
    try:
        async with db.transaction() as session:
            return await eval_runs.table_exists(session)
    finally:
        await db.dispose()


def run_eval(settings: Settings, *, database_url: str, request: EvalRequest) -> dict[str, Any]:
    """One eval run (see the module docstring); returns the JSON report. ``database_url`` is the
    configured database: the run is stored there, and its own database is made on the same server."""
    if request.store and not asyncio.run(_storable(database_url)):
        raise ConfigurationError(
            "the database has no eval_runs table yet: run `mailspine db upgrade` first (or pass --no-store)"
        )
    digest = hashlib.sha256(request.dataset.read_bytes()).hexdigest()
    cases = load_golden(request.dataset)[: request.limit]
    if not cases:
        raise ConfigurationError(f"{request.dataset} has no cases")
    started, clock = datetime.now(UTC), time.perf_counter()
    name = f"mailspine_eval_{uuid.uuid4().hex[:10]}"
    url = fresh_database(database_url, name)
    try:
        run_settings = eval_settings(settings, database_url=url, model=request.model)
        pairs = _run_in(url, run_settings, cases, request.prompts)
    finally:
        shutdown_telemetry()
        if not request.keep_db:
            drop_database(database_url, name)
    report: dict[str, Any] = {
        "eval_run_id": None,
        "started_at": started.isoformat(),
        "finished_at": datetime.now(UTC).isoformat(),
        "seconds": round(time.perf_counter() - clock, 1),
        "dataset": {
            "path": dataset_label(request.dataset),
            "sha256": digest,
            "cases": len(cases),
            "limit": request.limit,
        },
        "prompts": prompts_in_effect(request.prompts),
        "provider": run_settings.model_provider,
        "model": model_label(run_settings),
        "database": url if request.keep_db else None,
        "metrics": summarize(pairs),
        "cases": [case_row(p) for p in pairs],
    }
    if request.store:
        report["eval_run_id"] = asyncio.run(_store(database_url, report))
    return report


def _run_in(url: str, settings: Settings, cases: list[GoldenCase], pins: dict[str, str]) -> list[Pair]:
    """Migrate the eval database, load the guard as a worker does, then run every case."""
    from app.migrate import upgrade
    from gateway.guards.corpus import sync_corpus
    from gateway.guards.pipeline import configure_default_pipeline

    upgrade(url)
    sync_corpus(url, settings=settings.guard)
    configure_default_pipeline(settings, database_url=url)
    if isinstance(trace.get_tracer_provider(), TracerProvider):
        log.warning("telemetry was set up before the eval: trajectories come from that span store")
    setup_telemetry(service_name=f"{settings.otel_service_name}-eval", database_url=url, otlp_endpoint=None)
    with pinned_prompts(pins):
        return asyncio.run(_evaluate(settings, url, cases))
