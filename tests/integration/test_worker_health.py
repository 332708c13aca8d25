"""A real ``mailspine worker`` process answers /livez and /readyz, drains on SIGTERM and exits 0."""

from __future__ import annotations

import signal
import socket
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.errors import ConfigurationError
from app.worker_health import WorkerHealth, serve_health
from tests.integration.test_pipeline import LOGS, email_status, wait_for
from tests.support import openai_server as fake
from tests.support.offline_responder import offline_responder
from tests.support.stack import DEMO_MAILBOX, Stack, free_port, running_stack

pytestmark = pytest.mark.integration

STARTUP_S = 180.0  # the guard pipeline loads first (about 20 s here, more on a busy machine)


def probe(port: int, path: str) -> tuple[int, dict[str, Any]] | None:
    """The status and JSON body, or None when nothing answers (not started yet, or gone)."""
    try:
        answer = httpx.get(f"http://127.0.0.1:{port}{path}", timeout=5.0)
    except httpx.TransportError:
        return None
    return answer.status_code, answer.json()


def wait_until_ready(stack: Stack, port: int) -> dict[str, Any]:
    answers: list[tuple[int, dict[str, Any]] | None] = []

    def ready() -> bool:
        stack.group.check_alive()
        answers.append(probe(port, "/readyz"))
        return answers[-1] is not None and answers[-1][0] == 200

    wait_for(ready, timeout_s=STARTUP_S, what=f"/readyz 200 (last answer: {answers[-1:]})")
    answer = answers[-1]
    assert answer is not None
    return answer[1]


def start_worker(stack: Stack) -> subprocess.Popen[bytes]:
    stack.start_worker()
    return stack.group.children["worker"]


def test_probes_of_a_running_worker_and_a_clean_exit_on_sigterm(pg_server_url: str) -> None:
    port = free_port()
    env = {"MAILSPINE_WORKER_HEALTH_PORT": str(port)}
    with running_stack(pg_server_url, LOGS / "worker-health", env=env) as stack:
        worker = start_worker(stack)
        ready = wait_until_ready(stack, port)
        assert ready["status"] == "ok" and ready["phase"] == "running" and ready["database"] == "ok"
        assert ready["pid"] == worker.pid and ready["concurrency"] == 4
        [(registered,)] = stack.sql(
            "SELECT count(*) FROM procrastinate_workers WHERE id = %s", ready["worker_id"]
        )
        assert registered == 1  # the id is procrastinate's own

        live = probe(port, "/livez")
        assert live is not None and live[0] == 200 and live[1]["phase"] == "running"
        assert probe(port, "/nope") == (404, {"error": "no such endpoint '/nope'; try /livez or /readyz"})

        worker.send_signal(signal.SIGTERM)
        assert worker.wait(60) == 0, "an idle worker stops cleanly on SIGTERM"
        assert probe(port, "/livez") is None  # the endpoints go with the process
        [(left,)] = stack.sql("SELECT count(*) FROM procrastinate_workers WHERE id = %s", ready["worker_id"])
        assert left == 0  # it unregistered: nothing waits for its heartbeat to go stale


def test_sigterm_drains_in_flight_work_while_readyz_says_so(pg_server_url: str, tmp_path: Path) -> None:
    port = free_port()
    one = sorted(DEMO_MAILBOX.glob("01-*.eml"))[0]
    (tmp_path / one.name).write_bytes(one.read_bytes())
    # Every model call takes 2 s, so the job is still running while the probes below ask.
    with fake.OpenAIServer(responder=offline_responder, latency_s=2.0) as server:
        env = {
            "MAILSPINE_WORKER_HEALTH_PORT": str(port),
            "MAILSPINE_MODEL_PROVIDER": "openai",
            "MAILSPINE_OPENAI_BASE_URL": server.base_url,
            "MAILSPINE_MODEL": "mailspine-test",
            "MAILSPINE_MODEL_TIMEOUT_S": "20",
        }
        with running_stack(pg_server_url, LOGS / "worker-health-drain", env=env) as stack:
            worker = start_worker(stack)
            wait_until_ready(stack, port)
            [email_id] = stack.ingest(tmp_path)
            wait_for(lambda: len(server.calls()) > 0, what="the job's first model call")

            worker.send_signal(signal.SIGTERM)
            answers: list[tuple[int, dict[str, Any]] | None] = []

            def draining() -> bool:  # the signal arrives asynchronously: ask until it has
                answers.append(probe(port, "/readyz"))
                assert answers[-1] is not None, f"the endpoints went away before draining: {answers}"
                return answers[-1][1]["phase"] == "draining"

            wait_for(draining, timeout_s=10, what="/readyz to say draining")
            status, body = answers[-1]  # type: ignore[misc]
            assert status == 503 and body["status"] == "unavailable", body
            assert body["reasons"] == ["draining: stop requested, finishing in-flight jobs"]
            live = probe(port, "/livez")  # alive: the job is still running (each model call takes 2 s)
            assert live is not None and live[0] == 200 and live[1]["jobs_in_flight"] >= 1, live

            assert worker.wait(60) == 0
            assert email_status(stack, email_id) not in ("queued", "processing", "failed")
            assert stack.sql("SELECT status FROM procrastinate_jobs WHERE task_name = 'process_email'") == []


async def test_a_taken_port_is_a_clear_configuration_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        health = WorkerHealth(concurrency=1, check_database=_never_called)
        with pytest.raises(ConfigurationError, match="MAILSPINE_WORKER_HEALTH_PORT"):
            async with serve_health(health, host="127.0.0.1", port=port):
                pass


async def _never_called() -> None:
    raise AssertionError("no probe was made")
