"""Prometheus metrics of the whole deployment, read from Postgres at scrape time (``GET /metrics``).

Every worker and API process shares one database, so the figures an operator alerts on — queue
depth, emails by status, latency, tokens and cost, review backlog, ingest lag, live workers — are
read from it in one short transaction when Prometheus scrapes, rather than kept in one process's
memory where a scrape of one replica would see only its share. Counters (``*_total``) are sums over
tables that only grow (``model_calls``, ``runs``), so they behave as Prometheus expects; the rest
are gauges. Retention deletes checkpoints, not these rows.

Circuit breakers live in each worker's memory (``agent.resilience``); the database knows only the
model calls an open breaker refused, so the breaker figure is "refused calls in the last
``BREAKER_WINDOW_S``" per provider, a breaker that is open right now refuses every call it gets.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

# Upper bounds (seconds) of the processing-latency histogram: from the offline model's tens of
# milliseconds to a slow real model's minutes.
LATENCY_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
BREAKER_WINDOW_S = 300
LIVE_WORKER_S = 60  # a worker whose heartbeat is older is not counted live (procrastinate: 10 s beat)
STATEMENT_TIMEOUT_MS = 5000  # a scrape must not pile up on a slow database

_QUEUE = text("SELECT queue_name, status::text, count(*) FROM procrastinate_jobs GROUP BY 1, 2")
_EMAILS = text("SELECT status, count(*) FROM emails GROUP BY 1")
_LATENCY = text(
    "SELECT coalesce(route, 'none'), "
    + ", ".join(f"count(*) FILTER (WHERE d <= {b})" for b in LATENCY_BUCKETS)
    + ", count(*), coalesce(sum(d), 0) FROM ("
    " SELECT route, extract(epoch FROM finished_at - started_at) AS d FROM runs"
    " WHERE finished_at IS NOT NULL AND status IN ('done', 'rejected', 'failed')"
    ") r GROUP BY 1"
)
_MODEL = text(
    "SELECT provider, model, status, count(*), coalesce(sum(input_tokens), 0),"
    " coalesce(sum(output_tokens), 0), coalesce(sum(cost_micro_usd), 0) FROM model_calls GROUP BY 1, 2, 3"
)
_BREAKER = text(
    "SELECT provider, count(*) FROM model_calls WHERE status = 'circuit_open'"
    " AND created_at >= now() - make_interval(secs => :window) GROUP BY 1"
)
_REVIEWS = text(
    "SELECT count(*), coalesce(extract(epoch FROM now() - min(created_at)), 0)"
    " FROM reviews WHERE status = 'pending'"
)
_INGEST = text(
    "SELECT account, count(*), coalesce(extract(epoch FROM now() - min(received_at)), 0)"
    " FROM emails WHERE status IN ('queued', 'processing') GROUP BY 1"
)
_CURSORS = text(
    "SELECT account, folder, extract(epoch FROM now() - updated_at), last_error IS NOT NULL"
    " FROM mailbox_cursors"
)
_WORKERS = text(
    "SELECT count(*) FILTER (WHERE last_heartbeat >= now() - make_interval(secs => :live)), count(*)"
    " FROM procrastinate_workers"
)


@dataclass
class Snapshot:
    """What one scrape read, as plain values (built by ``read_snapshot``, rendered by ``render``)."""

    at: datetime
    queue: list[tuple[str, str, int]] = field(default_factory=list)
    emails: list[tuple[str, int]] = field(default_factory=list)
    # route, cumulative counts per LATENCY_BUCKETS bound, count, sum of seconds
    latency: list[tuple[str, list[int], int, float]] = field(default_factory=list)
    # provider, model, status, calls, input tokens, output tokens, cost in micro-USD
    model_calls: list[tuple[str, str, str, int, int, int, int]] = field(default_factory=list)
    breaker_refusals: list[tuple[str, int]] = field(default_factory=list)
    reviews_pending: int = 0
    review_oldest_s: float = 0.0
    ingest_backlog: list[tuple[str, int, float]] = field(default_factory=list)  # account, emails, oldest s
    cursors: list[tuple[str, str, float, bool]] = field(default_factory=list)  # account, folder, age s, error
    workers_live: int = 0
    workers_registered: int = 0


async def read_snapshot(session: AsyncSession) -> Snapshot:
    """Every figure in one read-only transaction (``SET LOCAL`` bounds each statement)."""
    await session.execute(text(f"SET LOCAL statement_timeout = {STATEMENT_TIMEOUT_MS}"))
    snap = Snapshot(at=datetime.now(UTC))
    snap.queue = [(q, s, int(n)) for q, s, n in (await session.execute(_QUEUE)).tuples()]
    snap.emails = [(s, int(n)) for s, n in (await session.execute(_EMAILS)).tuples()]
    for row in (await session.execute(_LATENCY)).tuples():
        route, *counts, total, seconds = row
        snap.latency.append((str(route), [int(c) for c in counts], int(total), float(seconds)))
    snap.model_calls = [
        (p, m, s, int(n), int(i), int(o), int(c))
        for p, m, s, n, i, o, c in (await session.execute(_MODEL)).tuples()
    ]
    snap.breaker_refusals = [
        (p, int(n)) for p, n in (await session.execute(_BREAKER, {"window": BREAKER_WINDOW_S})).tuples()
    ]
    pending, oldest = (await session.execute(_REVIEWS)).one()
    snap.reviews_pending, snap.review_oldest_s = int(pending), float(oldest)
    snap.ingest_backlog = [(a, int(n), float(s)) for a, n, s in (await session.execute(_INGEST)).tuples()]
    snap.cursors = [(a, f, float(s), bool(e)) for a, f, s, e in (await session.execute(_CURSORS)).tuples()]
    live, registered = (await session.execute(_WORKERS, {"live": LIVE_WORKER_S})).one()
    snap.workers_live, snap.workers_registered = int(live), int(registered)
    return snap


class _SnapshotCollector(Collector):
    def __init__(self, snap: Snapshot) -> None:
        self.snap = snap

    def collect(self) -> Iterable[Metric]:
        return list(families(self.snap))


def _gauge(
    name: str, doc: str, labels: list[str], rows: Iterable[tuple[list[str], float]]
) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, doc, labels=labels)
    for values, value in rows:
        family.add_metric(values, value)
    return family


def families(snap: Snapshot) -> Iterator[Metric]:
    """The metric families of one snapshot (names and labels are documented in docs/operations.md)."""
    yield _gauge(
        "mailspine_queue_jobs",
        "Jobs in the procrastinate queue by queue and status (successful jobs are deleted).",
        ["queue", "status"],
        (([q, s], n) for q, s, n in snap.queue),
    )
    yield _gauge(
        "mailspine_emails",
        "Emails by status (queued, processing, review, done, rejected, quarantined, failed).",
        ["status"],
        (([s], n) for s, n in snap.emails),
    )
    latency = HistogramMetricFamily(
        "mailspine_processing_seconds",
        "Agent run time of finished emails, from the run's start to its end (a review's wait "
        "included), by route.",
        labels=["route"],
    )
    for route, counts, total, seconds in snap.latency:
        buckets = [(str(b), float(c)) for b, c in zip(LATENCY_BUCKETS, counts, strict=True)]
        latency.add_metric([route], [*buckets, ("+Inf", float(total))], seconds)
    yield latency
    calls = CounterMetricFamily(
        "mailspine_model_calls",
        "Model requests by provider, model and outcome.",
        labels=["provider", "model", "status"],
    )
    tokens = CounterMetricFamily(
        "mailspine_model_tokens",
        "Model tokens by provider, model and direction.",
        labels=["provider", "model", "direction"],
    )
    cost = CounterMetricFamily(
        "mailspine_model_cost_usd", "Model cost in USD from the price table.", labels=["provider", "model"]
    )
    spent: dict[tuple[str, str], int] = {}
    used: dict[tuple[str, str, str], int] = {}
    for provider, model, status, n, tin, tout, micro in snap.model_calls:
        calls.add_metric([provider, model, status], n)
        used[(provider, model, "input")] = used.get((provider, model, "input"), 0) + tin
        used[(provider, model, "output")] = used.get((provider, model, "output"), 0) + tout
        spent[(provider, model)] = spent.get((provider, model), 0) + micro
    for labels, n in sorted(used.items()):
        tokens.add_metric(list(labels), n)
    for (provider, model), micro in sorted(spent.items()):
        cost.add_metric([provider, model], micro / 1_000_000)
    yield from (calls, tokens, cost)
    yield _gauge(
        "mailspine_breaker_refused_calls",
        f"Model calls refused by an open circuit breaker in the last {BREAKER_WINDOW_S} s, by provider "
        "(above 0: a breaker is or was recently open).",
        ["provider"],
        (([p], n) for p, n in snap.breaker_refusals),
    )
    yield _gauge(
        "mailspine_review_backlog", "Reviews waiting for a person.", [], [([], snap.reviews_pending)]
    )
    yield _gauge(
        "mailspine_review_oldest_seconds",
        "Age of the oldest pending review (0: none).",
        [],
        [([], snap.review_oldest_s)],
    )
    yield _gauge(
        "mailspine_ingest_backlog_emails",
        "Ingested emails not yet processed (queued or processing), by mailbox account.",
        ["account"],
        (([a], n) for a, n, _ in snap.ingest_backlog),
    )
    yield _gauge(
        "mailspine_ingest_lag_seconds",
        "Age of the oldest ingested email not yet processed, by mailbox account (0 when none waits).",
        ["account"],
        (([a], s) for a, _, s in snap.ingest_backlog),
    )
    yield _gauge(
        "mailspine_mailbox_cursor_age_seconds",
        "Time since a mailbox folder's cursor last moved or recorded an error (IMAP pollers).",
        ["account", "folder"],
        (([a, f], s) for a, f, s, _ in snap.cursors),
    )
    yield _gauge(
        "mailspine_mailbox_error",
        "1 when the folder's last poll recorded an error.",
        ["account", "folder"],
        (([a, f], 1.0 if e else 0.0) for a, f, _, e in snap.cursors),
    )
    yield _gauge(
        "mailspine_workers_live",
        f"Workers whose heartbeat is under {LIVE_WORKER_S} s old.",
        [],
        [([], snap.workers_live)],
    )
    yield _gauge(
        "mailspine_workers_registered",
        "Workers registered in procrastinate's table.",
        [],
        [([], snap.workers_registered)],
    )


def render(snap: Snapshot) -> bytes:
    """The Prometheus text exposition format of one snapshot (``CONTENT_TYPE_LATEST``)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_SnapshotCollector(snap))
    return generate_latest(registry)
