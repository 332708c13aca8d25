"""OpenTelemetry, set up once per process.

Spans always go to the ``spans`` table (so the dashboard shows traces with no extra
infrastructure) and also to OTLP/HTTP when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set.
Span names and attributes follow the GenAI semantic conventions (``chat {model}``,
``execute_tool {name}``, ``gen_ai.usage.input_tokens`` ...). PII never goes into attributes:
callers record ids, counts and labels only, and ``_safe_attributes`` drops message-content keys
and clips long strings as a second line of defence.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import socket
import threading
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import psycopg
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import Sampler

log = logging.getLogger(__name__)

TRACER_NAME = "mailspine"
_CONTENT_KEYS = ("gen_ai.input.messages", "gen_ai.output.messages", "gen_ai.system_instructions")
_MAX_ATTR_CHARS = 256
_lock = threading.Lock()
_provider: TracerProvider | None = None
_instance_id: str | None = None


def instance_id() -> str:
    """This process's ``service.instance.id``: host name, pid and a random suffix (a pid is reused
    after a restart, in containers often as 1). Stamped on the spans it records and the runs it
    starts or finishes, so that Postgres tells which worker ran what."""
    global _instance_id
    if _instance_id is None:
        _instance_id = f"{socket.gethostname()[:60]}-{os.getpid()}-{secrets.token_hex(3)}"
    return _instance_id


def tracer() -> trace.Tracer:
    return trace.get_tracer(TRACER_NAME)


def setup_telemetry(
    *, service_name: str, database_url: str | None, otlp_endpoint: str | None, sampler: Sampler | None = None
) -> TracerProvider:
    """Install the global tracer provider (idempotent: the first call wins). ``sampler``: the SDK's
    default (every span) unless given."""
    global _provider
    with _lock:
        if _provider is not None:
            return _provider
        resource = Resource.create({"service.name": service_name, "service.instance.id": instance_id()})
        provider = TracerProvider(resource=resource, sampler=sampler)
        if database_url:
            provider.add_span_processor(BatchSpanProcessor(PostgresSpanExporter(database_url, service_name)))
        if otlp_endpoint:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            endpoint = otlp_endpoint.rstrip("/")
            if not endpoint.endswith("/v1/traces"):
                endpoint += "/v1/traces"
            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
        trace.set_tracer_provider(provider)
        _provider = provider
        return provider


def flush_telemetry(timeout_ms: int = 10_000) -> bool:
    return _provider.force_flush(timeout_ms) if _provider is not None else True


def shutdown_telemetry() -> None:
    global _provider
    with _lock:
        if _provider is not None:
            _provider.shutdown()
            _provider = None


def _safe_attributes(attrs: Mapping[str, Any] | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in (attrs or {}).items():
        if key in _CONTENT_KEYS:
            continue
        if isinstance(value, str) and len(value) > _MAX_ATTR_CHARS:
            value = value[:_MAX_ATTR_CHARS] + "…"
        elif isinstance(value, Sequence) and not isinstance(value, str):
            value = list(value)
        out[key] = value
    return out


def _ts(ns: int | None) -> datetime:
    return datetime.fromtimestamp((ns or 0) / 1e9, tz=UTC)


class PostgresSpanExporter(SpanExporter):
    """Writes finished spans to the ``spans`` table in batches (runs on the processor's thread)."""

    _SQL = (
        "INSERT INTO spans (span_id, trace_id, parent_span_id, name, kind, service_name, service_instance, "
        "start_time, end_time, duration_ms, status_code, status_message, attributes, events) VALUES "
        "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (span_id) DO NOTHING"
    )

    def __init__(self, database_url: str, service_name: str) -> None:
        self._url = database_url
        self._service = service_name
        self._conn: psycopg.Connection[Any] | None = None

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(self._url, autocommit=True, connect_timeout=5)
        return self._conn

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        rows = [self._row(s) for s in spans if s.context is not None]
        try:
            with self._connection().cursor() as cur:
                cur.executemany(self._SQL, rows)
        except psycopg.Error as exc:
            # Telemetry must never take the pipeline down; the failure itself is logged.
            log.warning("could not export %d spans to Postgres: %s", len(rows), exc)
            self._conn = None
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

    def _row(self, span: ReadableSpan) -> tuple[Any, ...]:
        ctx = span.context
        assert ctx is not None
        start, end = span.start_time or 0, span.end_time or span.start_time or 0
        events = [
            {"name": e.name, "at": _ts(e.timestamp).isoformat(), "attributes": _safe_attributes(e.attributes)}
            for e in span.events
        ]
        return (
            format(ctx.span_id, "016x"),
            format(ctx.trace_id, "032x"),
            format(span.parent.span_id, "016x") if span.parent else None,
            span.name[:300],
            span.kind.name.lower(),
            self._service,
            str(span.resource.attributes.get("service.instance.id", ""))[:100] or None,
            _ts(start),
            _ts(end),
            round((end - start) / 1e6, 3),
            span.status.status_code.name.lower(),
            span.status.description,
            json.dumps(_safe_attributes(span.attributes), default=str),
            json.dumps(events, default=str),
        )

    def shutdown(self) -> None:
        if self._conn is not None:
            self._conn.close()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True
