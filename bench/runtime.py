"""What the spine costs per email: the full runtime against a bare LangGraph graph.

    python -m bench.runtime                     # needs DATABASE_URL or starts the embedded Postgres
    python -m bench.runtime --json

Both sides get the same emails (the demo mailbox, already scanned and PII-redacted, so the
gateway is not part of either figure), the same model and the same CRM (an in-process fake
answering at once, so the CRM's own speed is not part of either figure).

- **bare**: a LangGraph graph with the same nodes (extract, history, plan, risk, act) and the same
  prompts, model calls, review policy and tools (the history node is the production one, its read
  tools without the shared rate limiter), but no checkpointer, no ledger, no audit log, no budgets,
  no rate limits, no ``model_calls`` / ``runs`` rows and no spans (a sampler drops every span
  started on the bare side).
- **full**: ``agent.runner.run_email`` on the production graph: Postgres checkpoints written
  synchronously after every step, the side-effect ledger and audit chain, budgets, prompt
  resolution per thread, the shared per-tool rate limits, spans exported to Postgres, the PII vault
  read at the tool boundary.

Run twice: with the offline model (the overhead is everything) and with the model behind the local
OpenAI-compatible server answering after ``--latency`` seconds (what a real provider adds). The
figures are per-email means over sequential emails (concurrency 1), after one warm-up email per side;
each email goes through both sides back to back, alternating which side goes first, so that a drift
in the machine's speed during the run reaches both sides alike.
Checkpoint bytes per finished email are measured on the full run, before and after pruning.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, TypedDict, cast

import httpx
from langchain_core.language_models import BaseChatModel
from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult
from sqlalchemy import text

from agent.checkpoint_stats import threads_bytes
from agent.checkpointer import open_checkpointer
from agent.context import Context
from agent.graph import build_graph
from agent.inputs import GuardedEmail
from agent.models.factory import ModelSet
from agent.models.offline import OfflineChatModel
from agent.nodes.history import history as history_node
from agent.nodes.history import history_block
from agent.policy import assess
from agent.prompting import email_block
from agent.prompts import load_prompt
from agent.retention import prune_checkpoints
from agent.runner import run_email, thread_id_for
from agent.schemas import Extraction
from agent.state import EmailState, HistoryItem, RiskAssessment
from app.db import Database
from app.ingest import ingest_messages
from app.pipeline import index_for_history, store_scanned
from app.repo import emails
from app.services import tool_box
from app.settings import Settings
from app.telemetry import flush_telemetry, setup_telemetry, shutdown_telemetry
from gateway.scan import scan_raw
from tools.actions import CrmAddNote, CrmUpsertContact, DraftReply, Plan
from tools.crm import CrmClient
from tools.drafts import save_draft
from tools.mailbox_dir import iter_directory_mailbox
from tools.pii_boundary import load_entries, restore_model

MAX_BYTES = 25 << 20


def fake_crm() -> httpx.MockTransport:
    ids = iter(range(1, 10**9))

    def handle(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path.endswith("/contacts/batch/upsert"):
            return httpx.Response(200, json={"results": [{"id": str(next(ids))}]})
        if path.endswith("/contacts/search"):
            return httpx.Response(200, json={"results": [{"id": "1"}]})
        if path.endswith("/objects/notes"):
            return httpx.Response(201, json={"id": str(next(ids))})
        return httpx.Response(404, json={"message": path})

    return httpx.MockTransport(handle)


class BareState(TypedDict, total=False):
    email: GuardedEmail
    extraction: Extraction | None
    history: list[HistoryItem]
    plan: Plan | None
    risk: RiskAssessment


def bare_graph(model: BaseChatModel, db: Database, crm: CrmClient, settings: Settings) -> Any:
    """The same nodes, doing the same work, with nothing around them."""

    async def ask(schema: type[Any], prompt_name: str, **variables: str) -> Any:
        prompt = load_prompt(prompt_name)
        structured = model.with_structured_output(schema, include_raw=True, method="function_calling")
        out: Any = await structured.ainvoke(prompt.render(**variables))
        return out.get("parsed")

    async def extract(state: BareState) -> dict[str, Any]:
        email = state["email"]
        found = await ask(Extraction, "extract", email_block=email_block(email))
        if found is not None:
            found = found.model_copy(update={"sender_email": email.sender_address})
        return {"extraction": found}

    # The history node itself: its tools read the same tables; the bare context has no rate limiter.
    bare_ctx = Context(
        db=db, models=ModelSet(fast=model, strong=model, provider="bare"), crm=crm, settings=settings
    )

    async def history(state: BareState) -> dict[str, Any]:
        runtime = Runtime(context=bare_ctx, store=None, stream_writer=lambda _: None, previous=None)
        return await history_node(cast(EmailState, state), runtime)

    async def plan(state: BareState) -> dict[str, Any]:
        extraction = state.get("extraction")
        if extraction is None:
            return {"plan": None}
        lines = history_block(state.get("history", []))
        found = await ask(
            Plan,
            "plan",
            email_block=email_block(state["email"]),
            extraction_json=extraction.model_dump_json(),
            history_block=lines,
        )
        return {"plan": found}

    async def risk(state: BareState) -> dict[str, Any]:
        assessment = assess(
            email=state["email"],
            extraction=state.get("extraction"),
            plan=state.get("plan"),
            unsure=[],
            refund_threshold=settings.review_refund_threshold,
            min_confidence=settings.review_min_confidence,
        )
        return {"risk": assessment}

    async def act(state: BareState) -> dict[str, Any]:
        plan_, email = state.get("plan"), state["email"]
        if plan_ is None or state["risk"].route != "auto":
            return {}
        entries = await load_entries(
            db, email_id=email.email_id, key=settings.pii.vault_key.get_secret_value()
        )
        for action in plan_.actions:
            real = restore_model(action, entries)
            key = uuid.uuid4().hex
            if isinstance(real, CrmUpsertContact):
                await crm.upsert_contact(real, idempotency_key=key)
            elif isinstance(real, CrmAddNote):
                await crm.add_note(real, idempotency_key=key, timestamp="2026-01-01T00:00:00Z")
            elif isinstance(real, DraftReply):
                await save_draft(
                    db,
                    real,
                    email_id=email.email_id,
                    thread_id=f"bare-{key}",
                    in_reply_to=email.message_id,
                    references=email.references,
                    idempotency_key=key,
                )
        return {}

    graph = StateGraph(BareState)
    for name, node in (
        ("extract", extract),
        ("history", history),
        ("plan", plan),
        ("risk", risk),
        ("act", act),
    ):
        graph.add_node(name, node)
    graph.add_edge(START, "extract")
    graph.add_edge("extract", "history")
    graph.add_edge("history", "plan")
    graph.add_edge("plan", "risk")
    graph.add_edge("risk", "act")
    graph.add_edge("act", END)
    return graph.compile()


async def prepare(db: Database, settings: Settings) -> list[GuardedEmail]:
    """Ingest the mailbox; scan, redact, store and index every email once with the worker's own
    functions (app/pipeline.py). Not timed: the gateway is not part of either figure."""
    from tests.support.stack import DEMO_MAILBOX

    report = await ingest_messages(
        db, iter_directory_mailbox(DEMO_MAILBOX, max_bytes=MAX_BYTES), account="bench", queue="bench"
    )
    prepared: list[GuardedEmail] = []
    for email_id in report.new_ids:
        async with db.transaction() as session:
            row = await emails.get_email(session, email_id=email_id)
            assert row is not None
        try:
            _, guarded = scan_raw(row.raw, email_id=email_id, max_bytes=MAX_BYTES)
        except Exception:
            continue
        if guarded.verdict.decision == "quarantine":
            continue
        seen = await store_scanned(db, settings, email_id=email_id, guarded=guarded)
        await index_for_history(db, settings, email_id)
        prepared.append(seen)
    return prepared


_bare: ContextVar[bool] = ContextVar("bench_bare", default=False)


class _FullOnly(Sampler):
    """Records the full side's spans only: the bare side pays for no span (a dropped span is a
    non-recording one, which costs next to nothing)."""

    def should_sample(self, *args: Any, **kwargs: Any) -> SamplingResult:
        return SamplingResult(Decision.DROP if _bare.get() else Decision.RECORD_AND_SAMPLE)

    def get_description(self) -> str:
        return "bench: full side only"


Run = Callable[[GuardedEmail], Awaitable[Any]]


async def _paired(items: list[GuardedEmail], bare: Run, full: Run) -> tuple[list[float], list[float]]:
    """Each email through both sides, one after the other, alternating which goes first: both
    see the machine in the same state (a shared host's speed drifts by tens of percent within a
    minute), so their ratio is one run's, not two runs'."""

    async def run_bare(email: GuardedEmail) -> None:
        token = _bare.set(True)
        try:
            await bare(email)
        finally:
            _bare.reset(token)

    await run_bare(items[0])  # warm-up: imports, connections, prepared statements
    await full(items[0])
    durations: dict[str, list[float]] = {"bare": [], "full": []}
    for i, email in enumerate(items[1:]):
        sides = [("bare", run_bare), ("full", full)]
        for side, run in sides if i % 2 == 0 else reversed(sides):
            start = time.perf_counter()
            await run(email)
            durations[side].append((time.perf_counter() - start) * 1000)
    return durations["bare"], durations["full"]


@dataclass
class Side:
    mean_ms: float
    p50_ms: float
    emails: int


def _side(durations: list[float]) -> Side:
    return Side(
        mean_ms=statistics.fmean(durations), p50_ms=statistics.median(durations), emails=len(durations)
    )


async def compare(
    url: str, *, model: BaseChatModel, provider: str, count: int | None, telemetry: bool
) -> dict[str, Any]:
    """Both sides over the same emails, interleaved (``url`` is a fresh database)."""
    settings = Settings(env="test", database_url=url, crm_token="bench", _env_file=None)
    db = Database(url)
    crm = CrmClient(base_url="http://crm.bench", token="bench", timeout_s=10, transport=fake_crm())
    try:
        items = (await prepare(db, settings))[: (count or 10**6) + 1]
        gc.freeze()  # as the worker does once it has loaded everything (app/worker.py)
        bare_graph_ = bare_graph(model, db, crm, settings)
        if telemetry:
            setup_telemetry(
                service_name="mailspine-bench", database_url=url, otlp_endpoint=None, sampler=_FullOnly()
            )
        models = ModelSet(fast=model, strong=model, provider=provider, endpoint="bench")
        async with open_checkpointer(url) as saver:
            ctx = Context(db=db, models=models, crm=crm, settings=settings, tools=tool_box(settings, db))
            graph = build_graph(saver)
            bare_ms, full_ms = await _paired(
                items,
                lambda email: bare_graph_.ainvoke({"email": email}),
                lambda email: run_email(graph, ctx, email),
            )
        bare, full = _side(bare_ms), _side(full_ms)
        flush_telemetry()
        async with db.transaction() as session:
            rows = await session.execute(
                text("SELECT thread_id FROM runs WHERE finished_at IS NOT NULL AND thread_id = ANY(:t)"),
                {"t": [thread_id_for(e.email_id) for e in items]},
            )
            finished = [r[0] for r in rows]
            before = await threads_bytes(session, thread_ids=finished)
        await prune_checkpoints(db, older_than_s=0)
        async with db.transaction() as session:
            after = await threads_bytes(session, thread_ids=finished)
        return {
            "provider": provider,
            "emails": full.emails,
            "bare_mean_ms": bare.mean_ms,
            "bare_p50_ms": bare.p50_ms,
            "full_mean_ms": full.mean_ms,
            "full_p50_ms": full.p50_ms,
            "ratio": full.mean_ms / bare.mean_ms,
            "overhead_ms": full.mean_ms - bare.mean_ms,
            "finished": len(finished),
            "checkpoint_bytes_per_email": before / max(1, len(finished)),
            "checkpoint_bytes_per_email_pruned": after / max(1, len(finished)),
        }
    finally:
        await crm.aclose()
        await db.dispose()


def _one(kind: str, url: str, *, count: int | None, latency_s: float) -> dict[str, Any]:
    """One comparison in this process (telemetry can be set up once per process)."""
    from tests.support.offline_responder import offline_responder
    from tests.support.openai_server import OpenAIServer

    if kind == "offline":
        model = OfflineChatModel(model_name="offline-fast")
        return asyncio.run(
            compare(url, model=model, provider="mailspine-offline", count=count, telemetry=True)
        )
    from langchain_openai import ChatOpenAI

    with OpenAIServer(responder=offline_responder, latency_s=latency_s) as server:
        remote = ChatOpenAI(model="mailspine-test", base_url=server.base_url, api_key="bench", max_retries=0)
        result = asyncio.run(compare(url, model=remote, provider="openai", count=count, telemetry=True))
    result["model_latency_s"] = latency_s
    return result


def measure(
    server_url: str,
    *,
    count: int | None = None,
    latency_s: float = 1.0,
    latency_count: int = 8,
    offline_runs: int = 3,
) -> dict[str, Any]:
    """The comparisons, each in its own process on a fresh database of the Postgres at
    ``server_url``: ``offline_runs`` offline ones (a shared host's speed varies from run to run,
    so one ratio is shown per run), then one behind the model server."""
    import subprocess
    import sys

    from app.db import drop_database, fresh_database
    from app.migrate import upgrade

    results: dict[str, Any] = {"offline_runs": []}
    for kind, n in [*(("offline", count) for _ in range(offline_runs)), ("latency", latency_count)]:
        name = f"mailspine_bench_runtime_{kind}_{uuid.uuid4().hex[:6]}"
        url = fresh_database(server_url, name)
        try:
            upgrade(url)
            argv = [
                sys.executable,
                "-m",
                "bench.runtime",
                "--one",
                kind,
                "--url",
                url,
                "--latency",
                str(latency_s),
            ]
            if n is not None:
                argv += ["--count", str(n)]
            out = subprocess.run(argv, check=True, capture_output=True, text=True, timeout=1800).stdout
            result = json.loads(out.strip().splitlines()[-1])
            if kind == "offline":
                results["offline_runs"].append(result)
            else:
                results["latency"] = result
        finally:
            drop_database(server_url, name)
    ratios = sorted(r["ratio"] for r in results["offline_runs"])
    results["offline"] = next(r for r in results["offline_runs"] if r["ratio"] == ratios[len(ratios) // 2])
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.runtime", description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=None, help="emails per side, offline (default: all)")
    parser.add_argument("--latency", type=float, default=1.0, help="model server latency, seconds")
    parser.add_argument("--latency-count", type=int, default=8, help="emails per side with latency")
    parser.add_argument("--offline-runs", type=int, default=3, help="offline comparisons, one process each")
    parser.add_argument("--one", choices=("offline", "latency"), help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        result = _one(args.one, args.url, count=args.count, latency_s=args.latency)
        shutdown_telemetry()
        print(json.dumps(result))
        return
    from app.db import resolve_database_url
    from app.settings import get_settings

    server_url = resolve_database_url(get_settings())
    results = measure(
        server_url,
        count=args.count,
        latency_s=args.latency,
        latency_count=args.latency_count,
        offline_runs=args.offline_runs,
    )
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
