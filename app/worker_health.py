"""Liveness and readiness of one worker process: ``GET /livez`` and ``GET /readyz`` over HTTP.

A worker pulls its jobs from Postgres, so nothing routes traffic to it; the endpoints exist for the
supervisor. ``/livez`` answers 503 once the job loop has ended (procrastinate stopped on its own,
e.g. its LISTEN connection died): restart the process. A blocked event loop answers nothing, which a
probe's timeout counts as a failure too. ``/readyz`` answers 200 only while the worker takes jobs:
guard pipeline loaded, job loop running, database reachable (``SELECT 1`` on a connection of its
own, so a pool busy with jobs is no false alarm), and not draining — after SIGTERM it answers 503
``draining`` while in-flight jobs finish (up to 30 s), so dashboards and rollouts stop counting it.

Off by default: ``MAILSPINE_WORKER_HEALTH_PORT=0``. N workers on one host need N ports (one
variable each); in Kubernetes every pod has its own network, so one fixed port fits all::

    env: [{name: MAILSPINE_WORKER_HEALTH_HOST, value: "0.0.0.0"},
          {name: MAILSPINE_WORKER_HEALTH_PORT, value: "8081"}]
    startupProbe:   {httpGet: {path: /readyz, port: 8081}, periodSeconds: 5, failureThreshold: 60}
    livenessProbe:  {httpGet: {path: /livez, port: 8081}, periodSeconds: 10, timeoutSeconds: 5}
    readinessProbe: {httpGet: {path: /readyz, port: 8081}, periodSeconds: 10, timeoutSeconds: 5}
    terminationGracePeriodSeconds: 45   # more than the 30 s the worker gives in-flight jobs

The server starts before the guard pipeline loads (which can take a minute with model-backed
scanners): ``/livez`` answers 200 ``starting`` then and ``/readyz`` 503 with the reason. A start
that hangs is caught by the startup probe on ``/readyz``: not ready within its 5 minutes, restarted.
It speaks just enough HTTP/1.1 for probes (GET/HEAD, one request per connection): no web framework
inside the worker, and no second set of signal handlers next to the worker's own.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, Literal, Protocol

import psycopg
from procrastinate import JobContext
from procrastinate.worker import Worker

from app.errors import ConfigurationError

log = logging.getLogger(__name__)

Phase = Literal["starting", "running", "draining", "stopped"]
DatabaseCheck = Callable[[], Awaitable[None]]  # returns when the database answers, raises otherwise

DATABASE_TIMEOUT_S = 2.0  # well inside a probe's usual 5 s timeout
_READ_TIMEOUT_S = 5.0  # a client that sends no request in this time is dropped
_MAX_LINE_BYTES = 8192
_MAX_HEADER_LINES = 64


@dataclass(frozen=True)
class Probe:
    """One probe's answer: ``ok`` becomes 200, else 503; ``body`` is the JSON shown to operators."""

    ok: bool
    body: dict[str, Any]


@dataclass
class WorkerHealth:
    """What the endpoints report; ``run_worker`` updates it as the worker starts, runs and stops."""

    concurrency: int
    check_database: DatabaseCheck
    database_cache_s: float = 1.0  # at most one extra connection a second, however often probed
    started: float = field(default_factory=time.monotonic)
    pipeline_loaded: bool = False
    draining: bool = False
    jobs_in_flight: int = 0
    worker: Worker | None = None
    run: asyncio.Task[None] | None = None
    _db_lock: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)
    _db_result: tuple[float, str | None] | None = field(default=None, repr=False)

    def attach(self, worker: Worker, run: asyncio.Task[None]) -> None:
        """The job loop is running: its procrastinate worker (for the id) and its task."""
        self.worker, self.run = worker, run

    def begin_draining(self) -> None:
        self.draining = True

    @property
    def phase(self) -> Phase:
        if self.run is None:
            return "starting"
        if self.run.done():
            return "stopped"
        return "draining" if self.draining else "running"

    def liveness(self) -> Probe:
        """Alive unless the job loop has ended: a process that only waits to exit should be replaced."""
        body = self._details()
        if self.phase == "stopped":
            body["reason"] = f"job loop stopped{self._loop_error()}"
            return Probe(ok=False, body={"status": "unavailable", **body})
        return Probe(ok=True, body={"status": "ok", **body})

    async def readiness(self) -> Probe:
        """Ready when the worker can take a job now; the reasons say what is missing."""
        reasons = self._phase_reasons()
        database = "not checked"
        if not reasons:  # only a worker that is otherwise ready costs a database round trip
            failure = await self._database_failure()
            database = "ok" if failure is None else f"unreachable: {failure}"
            if failure is not None:
                reasons.append(f"database {database}")
        body = {**self._details(), "database": database}
        if reasons:
            return Probe(ok=False, body={"status": "unavailable", "reasons": reasons, **body})
        return Probe(ok=True, body={"status": "ok", **body})

    async def track_job(
        self, call_next: Callable[[], Awaitable[Any]], context: JobContext, worker: Worker
    ) -> Any:
        """A procrastinate worker middleware: counts the jobs in flight."""
        self.jobs_in_flight += 1
        try:
            return await call_next()
        finally:
            self.jobs_in_flight -= 1

    def _phase_reasons(self) -> list[str]:
        phase = self.phase
        if phase == "starting":
            step = "job loop starting" if self.pipeline_loaded else "guard pipeline loading"
            return [f"starting: {step}"]
        if phase == "draining":
            return ["draining: stop requested, finishing in-flight jobs"]
        if phase == "stopped":
            return [f"job loop stopped{self._loop_error()}"]
        return [] if self.pipeline_loaded else ["guard pipeline not loaded"]

    async def _database_failure(self) -> str | None:
        async with self._db_lock:  # concurrent probes share one check
            now = time.monotonic()
            if self._db_result is not None and now - self._db_result[0] < self.database_cache_s:
                return self._db_result[1]
            failure = None
            try:
                await self.check_database()
            except Exception as exc:  # any failure means "not ready"; the body says which
                failure = _describe(exc)
            self._db_result = (time.monotonic(), failure)
            return failure

    def _loop_error(self) -> str:
        if self.run is None or not self.run.done() or self.run.cancelled():
            return ""
        exc = self.run.exception()
        return f" ({_describe(exc)})" if exc is not None else ""

    def _details(self) -> dict[str, Any]:
        return {
            "phase": self.phase,
            "worker_id": self.worker.worker_id if self.worker is not None else None,
            "pid": os.getpid(),
            "concurrency": self.concurrency,
            "jobs_in_flight": self.jobs_in_flight,
            "uptime_s": round(time.monotonic() - self.started, 1),
        }


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    detail = f": {text[0]}" if text else ""
    name = "timed out" if isinstance(exc, TimeoutError) else type(exc).__name__
    return f"{name}{detail}"[:200]


def database_check(database_url: str, *, timeout_s: float = DATABASE_TIMEOUT_S) -> DatabaseCheck:
    """``SELECT 1`` on a fresh connection within ``timeout_s`` (libpq URL, as the queue uses)."""

    async def check() -> None:
        async with asyncio.timeout(timeout_s):
            connection = await psycopg.AsyncConnection.connect(database_url, autocommit=True)
            async with connection:
                await connection.execute("SELECT 1")

    return check


# ----------------------------------------------------------------------------------- HTTP


class _Writer(Protocol):
    """The part of ``asyncio.StreamWriter`` the handler uses (tests pass a fake)."""

    def write(self, data: bytes) -> None: ...
    async def drain(self) -> None: ...
    def close(self) -> None: ...
    async def wait_closed(self) -> None: ...


async def respond(health: WorkerHealth, method: str, target: str) -> tuple[HTTPStatus, dict[str, Any]]:
    """The status and JSON body for one request (routing only; no I/O besides the probes)."""
    path = target.split("?", 1)[0]
    if path not in ("/livez", "/readyz"):
        return HTTPStatus.NOT_FOUND, {"error": f"no such endpoint {path[:100]!r}; try /livez or /readyz"}
    if method not in ("GET", "HEAD"):
        return HTTPStatus.METHOD_NOT_ALLOWED, {"error": f"{method[:20]} not allowed; use GET"}
    probe = health.liveness() if path == "/livez" else await health.readiness()
    return (HTTPStatus.OK if probe.ok else HTTPStatus.SERVICE_UNAVAILABLE), probe.body


async def handle_connection(health: WorkerHealth, reader: asyncio.StreamReader, writer: _Writer) -> None:
    """Read one request, answer it, close. A slow, oversized or garbled request is dropped or 400."""
    try:
        try:
            async with asyncio.timeout(_READ_TIMEOUT_S):
                method, target = await _read_request(reader)
        except (TimeoutError, ConnectionError, asyncio.IncompleteReadError):
            return
        except ValueError as exc:  # garbled request line, or a line over the stream's limit
            status, body = HTTPStatus.BAD_REQUEST, {"error": str(exc)[:200]}
            method = "GET"
        else:
            status, body = await respond(health, method, target)
        writer.write(_response(status, body, head_only=method == "HEAD"))
        await writer.drain()
    except ConnectionError:
        pass  # the prober went away; nothing to tell it
    except Exception:
        log.exception("worker health endpoint failed")
    finally:
        writer.close()
        with suppress(Exception):
            await writer.wait_closed()


async def _read_request(reader: asyncio.StreamReader) -> tuple[str, str]:
    """The method and target of an HTTP/1.x request line; the headers are read and ignored."""
    line = await reader.readline()
    if not line:
        raise ConnectionResetError("closed before the request line")
    parts = line.decode("latin-1").split()
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise ValueError("malformed request line")
    for _ in range(_MAX_HEADER_LINES):
        header = await reader.readline()
        if header in (b"\r\n", b"\n", b""):
            return parts[0], parts[1]
    raise ValueError("too many header lines")


def _response(status: HTTPStatus, body: dict[str, Any], *, head_only: bool) -> bytes:
    payload = json.dumps(body, sort_keys=True).encode()
    extra = "Allow: GET, HEAD\r\n" if status == HTTPStatus.METHOD_NOT_ALLOWED else ""
    head = (
        f"HTTP/1.1 {status.value} {status.phrase}\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(payload)}\r\n"
        "Cache-Control: no-store\r\n"
        f"{extra}Connection: close\r\n\r\n"
    )
    return head.encode("latin-1") + (b"" if head_only else payload)


@asynccontextmanager
async def serve_health(health: WorkerHealth, *, host: str, port: int) -> AsyncIterator[int | None]:
    """Serve the endpoints on ``host:port`` for the duration; yields the bound port (None: port 0, off)."""
    if port == 0:
        yield None
        return

    async def on_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await handle_connection(health, reader, writer)

    try:
        server = await asyncio.start_server(on_connection, host, port, limit=_MAX_LINE_BYTES)
    except OSError as exc:
        raise ConfigurationError(
            f"worker health endpoints cannot listen on {host}:{port} ({exc.strerror or exc}); "
            "each worker on one host needs its own MAILSPINE_WORKER_HEALTH_PORT (0 turns them off)"
        ) from exc
    bound = int(server.sockets[0].getsockname()[1])
    log.info("worker health endpoints on http://%s:%d/livez and /readyz", host, bound)
    try:
        yield bound
    finally:
        server.close()
        await server.wait_closed()
