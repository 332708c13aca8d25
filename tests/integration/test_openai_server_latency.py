"""The in-process test model server sleeps each call's drawn delay (over real HTTP on localhost);
the draws themselves are unit-tested in tests/unit/test_openai_server_latency.py."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.support.openai_server import OpenAIServer

pytestmark = pytest.mark.integration

REQUEST = {"model": "mailspine-test", "messages": [{"role": "user", "content": "hi"}]}


def test_the_server_sleeps_the_drawn_delay_before_answering() -> None:
    with OpenAIServer(latency_range_s=(0.01, 0.03), seed=1) as server:
        elapsed = []
        with httpx.Client(base_url=server.base_url, timeout=10) as client:
            for _ in range(6):
                start = time.perf_counter()
                client.post("/chat/completions", json=REQUEST).raise_for_status()
                elapsed.append(time.perf_counter() - start)
        calls = server.completed_calls()
        assert len(calls) == 6
        assert all(0.01 <= c.delay_s <= 0.03 for c in calls)
        assert len({c.delay_s for c in calls}) > 1
        assert all(took >= c.delay_s for took, c in zip(elapsed, calls, strict=True))
        answer = httpx.post(f"{server.url}/_admin/config", json={"latency_range_s": [0.0, 0.01]}).json()
        assert answer["latency_range_s"] == [0.0, 0.01]
        assert server.state.latency_range_s == (0.0, 0.01)
