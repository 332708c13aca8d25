"""The worker's /livez and /readyz: what each phase answers, and the bit of HTTP around them (no sockets)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any, cast

import pytest
from procrastinate.worker import Worker
from pydantic import ValidationError

from app.settings import Settings
from app.worker_health import WorkerHealth, handle_connection, respond, serve_health


class FakeDatabase:
    """A ``check_database`` that fails while ``failure`` is set, and counts its calls."""

    def __init__(self) -> None:
        self.calls = 0
        self.failure: BaseException | None = None

    async def __call__(self) -> None:
        self.calls += 1
        if self.failure is not None:
            raise self.failure


class FakeWriter:
    def __init__(self) -> None:
        self.data = b""
        self.closed = False

    def write(self, data: bytes) -> None:
        self.data += data

    async def drain(self) -> None:
        return None

    def close(self) -> None:
        self.closed = True

    async def wait_closed(self) -> None:
        return None


@pytest.fixture
def database() -> FakeDatabase:
    return FakeDatabase()


@pytest.fixture
def health(database: FakeDatabase) -> WorkerHealth:
    return WorkerHealth(concurrency=4, check_database=database, database_cache_s=0.0)


@pytest.fixture
async def job_loop() -> AsyncIterator[asyncio.Task[None]]:
    """A stand-in for procrastinate's job loop: runs until cancelled."""

    async def forever() -> None:
        await asyncio.Event().wait()

    task = asyncio.create_task(forever(), name="fake job loop")
    yield task
    task.cancel()


def fake_worker(worker_id: int | None = 17) -> Worker:
    return cast(Worker, SimpleNamespace(worker_id=worker_id))


def running(health: WorkerHealth, job_loop: asyncio.Task[None]) -> WorkerHealth:
    health.pipeline_loaded = True
    health.attach(fake_worker(), job_loop)
    return health


async def crashed_loop() -> asyncio.Task[None]:
    async def fail() -> None:
        raise RuntimeError("LISTEN connection lost\nsecond line")

    task = asyncio.create_task(fail())
    await asyncio.gather(task, return_exceptions=True)
    return task


# ------------------------------------------------------------------ phases, liveness, readiness


async def test_while_the_guard_pipeline_loads_it_is_alive_but_not_ready(
    health: WorkerHealth, database: FakeDatabase
) -> None:
    assert health.phase == "starting"
    assert health.liveness().ok
    ready = await health.readiness()
    assert not ready.ok
    assert ready.body["reasons"] == ["starting: guard pipeline loading"]
    assert ready.body["database"] == "not checked" and database.calls == 0


async def test_a_running_worker_is_ready_and_says_who_it_is(
    health: WorkerHealth, database: FakeDatabase, job_loop: asyncio.Task[None]
) -> None:
    running(health, job_loop)
    ready = await health.readiness()
    assert ready.ok, ready.body
    assert ready.body["status"] == "ok" and ready.body["phase"] == "running"
    assert ready.body["database"] == "ok" and database.calls == 1
    assert ready.body["worker_id"] == 17
    assert ready.body["concurrency"] == 4 and ready.body["jobs_in_flight"] == 0
    assert ready.body["uptime_s"] >= 0 and ready.body["pid"] > 0
    assert health.liveness().ok


async def test_an_unreachable_database_makes_it_unready_but_not_dead(
    health: WorkerHealth, database: FakeDatabase, job_loop: asyncio.Task[None]
) -> None:
    running(health, job_loop)
    database.failure = OSError("connection refused")
    ready = await health.readiness()
    assert not ready.ok
    assert ready.body["reasons"] == ["database unreachable: OSError: connection refused"]
    assert health.liveness().ok  # restarting the worker would not bring the database back

    database.failure = TimeoutError()
    assert (await health.readiness()).body["database"] == "unreachable: timed out"

    database.failure = None
    assert (await health.readiness()).ok


async def test_after_sigterm_it_is_draining_without_asking_the_database(
    health: WorkerHealth, database: FakeDatabase, job_loop: asyncio.Task[None]
) -> None:
    running(health, job_loop)
    health.begin_draining()
    ready = await health.readiness()
    assert not ready.ok
    assert ready.body["phase"] == "draining"
    assert ready.body["reasons"][0].startswith("draining")
    assert database.calls == 0
    assert health.liveness().ok  # in-flight jobs are still finishing


async def test_a_job_loop_that_ended_makes_it_dead_with_the_error(health: WorkerHealth) -> None:
    health.pipeline_loaded = True
    health.attach(fake_worker(None), await crashed_loop())
    live = health.liveness()
    assert not live.ok
    assert live.body["phase"] == "stopped"
    assert live.body["reason"] == "job loop stopped (RuntimeError: LISTEN connection lost)"
    assert live.body["worker_id"] is None
    assert not (await health.readiness()).ok


async def test_database_answers_are_cached_between_close_probes(
    database: FakeDatabase, job_loop: asyncio.Task[None]
) -> None:
    health = running(WorkerHealth(concurrency=1, check_database=database, database_cache_s=3600), job_loop)
    answers = await asyncio.gather(*(health.readiness() for _ in range(5)))
    assert all(a.ok for a in answers)
    assert database.calls == 1


async def test_jobs_in_flight_are_counted_even_when_a_job_fails(health: WorkerHealth) -> None:
    started, release = asyncio.Event(), asyncio.Event()

    async def job() -> str:
        started.set()
        await release.wait()
        return "done"

    async def failing_job() -> None:
        raise ValueError("boom")

    context: Any = SimpleNamespace()
    first = asyncio.create_task(health.track_job(job, context, fake_worker()))
    await started.wait()
    assert health.jobs_in_flight == 1
    with pytest.raises(ValueError):
        await health.track_job(failing_job, context, fake_worker())
    assert health.jobs_in_flight == 1
    release.set()
    assert await first == "done"
    assert health.jobs_in_flight == 0


# ------------------------------------------------------------------ routing and HTTP


async def test_routes(health: WorkerHealth, job_loop: asyncio.Task[None]) -> None:
    assert (await respond(health, "GET", "/readyz"))[0] == 503
    running(health, job_loop)
    assert (await respond(health, "GET", "/readyz?verbose=1"))[0] == 200
    assert (await respond(health, "HEAD", "/livez"))[0] == 200
    assert (await respond(health, "GET", "/health"))[0] == 404
    status, body = await respond(health, "POST", "/livez")
    assert status == 405 and "GET" in body["error"]


async def exchange(
    health: WorkerHealth, request: bytes, *, limit: int = 8192
) -> tuple[str, dict[str, str], bytes]:
    reader = asyncio.StreamReader(limit=limit)
    reader.feed_data(request)
    reader.feed_eof()
    writer = FakeWriter()
    await handle_connection(health, reader, writer)
    assert writer.closed
    head, _, body = writer.data.partition(b"\r\n\r\n")
    status, *header_lines = head.decode("latin-1").split("\r\n") if head else [""]
    headers = dict(line.split(": ", 1) for line in header_lines)
    return status, headers, body


async def test_a_probe_gets_json_and_the_connection_closes(
    health: WorkerHealth, job_loop: asyncio.Task[None]
) -> None:
    running(health, job_loop)
    status, headers, body = await exchange(
        health, b"GET /livez HTTP/1.1\r\nHost: pod\r\nUser-Agent: kube-probe\r\n\r\n"
    )
    assert status == "HTTP/1.1 200 OK"
    assert headers["Content-Type"] == "application/json" and headers["Connection"] == "close"
    assert int(headers["Content-Length"]) == len(body)
    assert json.loads(body)["phase"] == "running"

    health.begin_draining()
    status, _, body = await exchange(health, b"GET /readyz HTTP/1.0\r\n\r\n")
    assert status == "HTTP/1.1 503 Service Unavailable"
    assert json.loads(body)["phase"] == "draining"


async def test_head_sends_no_body(health: WorkerHealth, job_loop: asyncio.Task[None]) -> None:
    running(health, job_loop)
    status, headers, body = await exchange(health, b"HEAD /livez HTTP/1.1\r\n\r\n")
    assert status.startswith("HTTP/1.1 200") and int(headers["Content-Length"]) > 0 and body == b""


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"nonsense\r\n\r\n",
        b"GET /livez SPDY/3\r\n\r\n",
        b"GET /livez HTTP/1.1\r\n" + b"X-A: b\r\n" * 100 + b"\r\n",
        b"GET /" + b"a" * 10_000 + b" HTTP/1.1\r\n\r\n",
    ],
    ids=["garbled", "not-http", "too-many-headers", "line-too-long"],
)
async def test_bad_requests_get_400(health: WorkerHealth, request_bytes: bytes) -> None:
    status, _, body = await exchange(health, request_bytes)
    assert status == "HTTP/1.1 400 Bad Request"
    assert json.loads(body)["error"]


async def test_a_client_that_says_nothing_gets_nothing(health: WorkerHealth) -> None:
    status, _, _ = await exchange(health, b"")
    assert status == ""


# ------------------------------------------------------------------ settings and serving


async def test_port_zero_serves_nothing(health: WorkerHealth) -> None:
    async with serve_health(health, host="127.0.0.1", port=0) as port:
        assert port is None


def test_health_server_is_off_by_default_and_ports_are_checked() -> None:
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.worker_health_port == 0
    assert settings.worker_health_host == "127.0.0.1"
    with pytest.raises(ValidationError):
        Settings(_env_file=None, worker_health_port=70000)  # type: ignore[call-arg]
