"""``GET /metrics`` against a database of its own with known contents: every family and value is exact.

The rows are what the pipeline would leave (emails, runs with their times, model calls, a pending
review, a mailbox cursor with an error, a queued job, a worker heartbeat); the scrape is parsed with
prometheus_client's own parser, as Prometheus would read it.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families

from app.db import Database
from app.models import EmailStatus
from app.queue import enqueue
from app.repo import emails, reviews, runs
from app.settings import Settings
from gateway.metrics import LATENCY_BUCKETS
from tests.integration.test_auth_flows import auth_settings, bearer, gateway, make_key
from tests.support.databases import migrated_database

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def metrics_url(pg_server_url: str) -> Iterator[str]:
    with migrated_database(pg_server_url, "mailspine_metrics") as url:
        yield url


@pytest.fixture
async def mdb(metrics_url: str) -> AsyncIterator[Database]:
    database = Database(metrics_url)
    yield database
    await database.dispose()


def _sql(url: str, query: str, *params: object) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(query, params)


async def _email(db: Database, account: str, status: EmailStatus, *, age_s: int = 0) -> int:
    tag = uuid.uuid4().hex
    async with db.transaction() as session:
        row = await emails.insert_email(
            session, account=account, message_id=f"<{tag}@m.example>", content_sha256=tag, raw=b"raw"
        )
        assert row is not None
        await emails.set_status(session, email_id=row.id, status=status)
        email_id = row.id
    _sql(
        db.url,
        "UPDATE emails SET received_at = now() - make_interval(secs => %s) WHERE id = %s",
        age_s,
        email_id,
    )
    return email_id


async def _run(db: Database, email_id: int, *, status: str, route: str, seconds: float) -> tuple[int, str]:
    thread = f"email-{uuid.uuid4().hex}"
    async with db.transaction() as session:
        run = await runs.start_run(session, email_id=email_id, thread_id=thread, trace_id=None)
        await runs.update_run(session, thread_id=thread, status=status, route=route)
        run_id = run.id
    _sql(
        db.url,
        "UPDATE runs SET started_at = now() - interval '1 hour',"
        " finished_at = now() - interval '1 hour' + make_interval(secs => %s) WHERE id = %s",
        seconds,
        run_id,
    )
    return run_id, thread


def _scrape(text: str) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """``{sample name: {sorted label pairs: value}}``."""
    out: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return out


async def test_metrics_report_the_database_as_prometheus_reads_it(
    test_settings: Settings, metrics_url: str, mdb: Database
) -> None:
    queued_a = await _email(mdb, "inbox-a", EmailStatus.QUEUED, age_s=90)
    await _email(mdb, "inbox-a", EmailStatus.QUEUED, age_s=10)
    await _email(mdb, "inbox-b", EmailStatus.PROCESSING, age_s=30)
    fast = await _email(mdb, "inbox-a", EmailStatus.DONE)
    slow = await _email(mdb, "inbox-a", EmailStatus.REVIEW)
    await _run(mdb, fast, status="done", route="auto", seconds=0.3)
    await _run(mdb, await _email(mdb, "inbox-a", EmailStatus.DONE), status="done", route="review", seconds=40)
    review_run, review_thread = await _run(mdb, slow, status="review", route="review", seconds=2)
    async with mdb.transaction() as session:
        await reviews.create_review(
            session,
            run_id=review_run,
            email_id=slow,
            thread_id=review_thread,
            reasons=["amount"],
            payload={"plan": {"actions": []}, "reasons": ["amount"]},
            payload_hash="a" * 64,
        )
        await enqueue(
            session, queue="mailspine", task="process_email", args={"email_id": queued_a}, lock="t1"
        )
    _sql(metrics_url, "UPDATE reviews SET created_at = now() - interval '120 seconds'")
    for status, tin, tout, micro in (("ok", 100, 20, 1500), ("ok", 50, 10, 500), ("circuit_open", 0, 0, 0)):
        _sql(
            metrics_url,
            "INSERT INTO model_calls (thread_id, node, provider, model, status, input_tokens, output_tokens,"
            " cost_micro_usd, latency_ms) VALUES ('t', 'plan', 'openai', 'm1', %s, %s, %s, %s, 5)",
            status,
            tin,
            tout,
            micro,
        )
    _sql(
        metrics_url,
        "INSERT INTO mailbox_cursors (account, folder, uidvalidity, last_uid, last_error, updated_at)"
        " VALUES ('inbox-a', 'INBOX', 1, 7, 'login failed', now() - interval '300 seconds')",
    )
    _sql(
        metrics_url,
        "INSERT INTO procrastinate_workers (last_heartbeat) VALUES (now()), (now() - interval '1 hour')",
    )

    key = await make_key(mdb, "stats:read")
    async with gateway(auth_settings(test_settings), metrics_url) as client:
        answer = await client.get("/metrics", headers=bearer(key))
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"].startswith("text/plain; version=")
        refused = await client.get("/metrics", headers={"X-API-Key": await make_key(mdb, "ingest")})
        assert refused.status_code == 403
        assert (await client.get("/metrics")).status_code == 401
    m = _scrape(answer.text)

    def one(name: str, **labels: str) -> float:
        return m[name][tuple(sorted(labels.items()))]

    assert one("mailspine_queue_jobs", queue="mailspine", status="todo") == 1
    assert one("mailspine_emails", status="queued") == 2
    assert one("mailspine_emails", status="done") == 2
    assert one("mailspine_emails", status="review") == 1
    # Finished runs only (a run waiting for review is not finished): one auto 0.3 s, one review 40 s.
    assert one("mailspine_processing_seconds_count", route="auto") == 1
    assert one("mailspine_processing_seconds_count", route="review") == 1
    assert one("mailspine_processing_seconds_sum", route="review") == pytest.approx(40, abs=0.01)
    assert one("mailspine_processing_seconds_bucket", route="auto", le="0.5") == 1
    assert one("mailspine_processing_seconds_bucket", route="auto", le="0.25") == 0
    assert one("mailspine_processing_seconds_bucket", route="review", le="30.0") == 0
    assert one("mailspine_processing_seconds_bucket", route="review", le="60.0") == 1
    assert one("mailspine_processing_seconds_bucket", route="review", le="+Inf") == 1
    assert (
        len([k for k in m["mailspine_processing_seconds_bucket"] if ("route", "auto") in k])
        == len(LATENCY_BUCKETS) + 1
    )
    assert one("mailspine_model_calls_total", provider="openai", model="m1", status="ok") == 2
    assert one("mailspine_model_calls_total", provider="openai", model="m1", status="circuit_open") == 1
    assert one("mailspine_model_tokens_total", provider="openai", model="m1", direction="input") == 150
    assert one("mailspine_model_tokens_total", provider="openai", model="m1", direction="output") == 30
    assert one("mailspine_model_cost_usd_total", provider="openai", model="m1") == pytest.approx(0.002)
    assert one("mailspine_breaker_refused_calls", provider="openai") == 1
    assert one("mailspine_review_backlog") == 1
    assert 119 <= one("mailspine_review_oldest_seconds") < 600
    assert one("mailspine_ingest_backlog_emails", account="inbox-a") == 2
    assert one("mailspine_ingest_backlog_emails", account="inbox-b") == 1
    assert 89 <= one("mailspine_ingest_lag_seconds", account="inbox-a") < 600
    assert one("mailspine_mailbox_error", account="inbox-a", folder="INBOX") == 1
    assert 299 <= one("mailspine_mailbox_cursor_age_seconds", account="inbox-a", folder="INBOX") < 900
    assert one("mailspine_workers_live") == 1
    assert one("mailspine_workers_registered") == 2


@pytest.fixture
def empty_url(pg_server_url: str) -> Iterator[str]:
    with migrated_database(pg_server_url, "mailspine_metrics") as url:
        yield url


async def test_an_empty_database_scrapes_cleanly(test_settings: Settings, empty_url: str) -> None:
    db = Database(empty_url)
    try:
        key = await make_key(db, "stats:read")
    finally:
        await db.dispose()
    async with gateway(auth_settings(test_settings), empty_url) as client:
        answer = await client.get("/metrics", headers=bearer(key))
    assert answer.status_code == 200, answer.text
    m: dict[str, Any] = _scrape(answer.text)
    assert m["mailspine_review_backlog"] == {(): 0.0}
    assert m["mailspine_workers_live"] == {(): 0.0}
    assert "mailspine_processing_seconds_count" not in m  # no finished run, no series
