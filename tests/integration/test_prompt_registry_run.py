"""A real run of the graph on a thread that the canary label picks: its model spans, exported to
Postgres, name the canary version, and the thread keeps that version."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from agent.checkpointer import open_checkpointer
from agent.context import Context
from agent.graph import build_graph
from agent.models.factory import build_models
from agent.prompts.registry import promote, rollback
from agent.runner import run_email, thread_id_for
from app.db import Database
from app.ingest import ingest_messages
from app.settings import REPO_ROOT, Settings
from app.settings_guard import GuardSettings
from app.telemetry import PostgresSpanExporter, setup_telemetry, tracer
from gateway.guards.pipeline import GuardPipeline
from gateway.scan import scan_raw
from tests.integration.test_prompt_registry import eval_run, latest_file, rdb, registry_url, sql
from tools.crm import CrmClient
from tools.mailbox_dir import MailboxMessage

pytestmark = pytest.mark.integration
__all__ = ["rdb", "registry_url"]  # fixtures, shared with the registry's own tests
NEWSLETTER = REPO_ROOT / "infra" / "demo" / "mailbox" / "18-newsletter-industry.eml"  # no CRM, no reply


class _WhileActive(SimpleSpanProcessor):
    """Exports spans to this module's database only during its test (the provider is global)."""

    active = True

    def on_end(self, span: ReadableSpan) -> None:
        if self.active:
            super().on_end(span)


@pytest.fixture
def span_store(registry_url: str) -> Iterator[None]:
    provider = setup_telemetry(service_name="mailspine-test", database_url=None, otlp_endpoint=None)
    processor = _WhileActive(PostgresSpanExporter(registry_url, "mailspine-test"))
    provider.add_span_processor(processor)
    yield
    processor.active = False
    processor.shutdown()


async def test_a_canary_thread_records_the_canary_version_on_its_model_spans(
    rdb: Database, registry_url: str, span_store: None
) -> None:
    plan = latest_file("plan")
    run = await eval_run(rdb, {"extract": "1.0.0", "plan": plan}, passed_gate=True)
    async with rdb.transaction() as session:
        await promote(
            session,
            name="extract",
            version="1.0.0",
            label="canary",
            eval_run_id=run,
            actor="t",
            percentage=100,
        )
    guard = GuardSettings(llm_guard_enabled=False, semantic_enabled=False)
    settings = Settings(env="test", database_url=registry_url, guard=guard, _env_file=None)  # type: ignore[call-arg]
    raw = re.sub(
        rb"(?im)^(Message-ID:\s*<)", rb"\g<1>" + uuid.uuid4().hex.encode() + b".", NEWSLETTER.read_bytes()
    )
    crm = CrmClient(base_url="http://127.0.0.1:9", token=None, timeout_s=1)
    try:
        report = await ingest_messages(
            rdb, [MailboxMessage(ref=NEWSLETTER.name, raw=raw)], account="canary", queue="canary"
        )
        [email_id] = report.new_ids
        _, email = scan_raw(
            raw, email_id=email_id, max_bytes=10**7, pipeline=GuardPipeline.from_settings(settings)
        )
        ctx = Context(db=rdb, models=build_models(settings), crm=crm, settings=settings)
        async with open_checkpointer(registry_url, max_size=2) as saver:
            with tracer().start_as_current_span("test canary run") as span:
                outcome = await run_email(build_graph(saver), ctx, email)
                trace_id = format(span.get_span_context().trace_id, "032x")
    finally:
        await crm.aclose()
        async with rdb.transaction() as session:
            await rollback(session, name="extract", label="canary", actor="t")
    assert outcome.status == "done"
    recorded = sql(
        registry_url,
        "SELECT attributes->>'mailspine.prompt' FROM spans WHERE trace_id = %s AND name LIKE 'chat %%'",
        trace_id,
    )
    assert sorted(p for (p,) in recorded) == ["extract@1.0.0", f"plan@{plan}"]
    kept = sql(
        registry_url,
        "SELECT name, version FROM prompt_thread_versions WHERE thread_id = %s",
        thread_id_for(email_id),
    )
    assert {"extract": "1.0.0", "plan": plan}.items() <= dict(kept).items()  # every prompt is kept
    with psycopg.connect(registry_url) as conn:  # the label is back; the thread's choice stays
        assert conn.execute("SELECT count(*) FROM prompt_labels WHERE label = 'canary'").fetchone() == (0,)
