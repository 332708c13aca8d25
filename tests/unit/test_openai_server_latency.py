"""The test model server's latency: fixed by default, or drawn per call from a seeded range."""

from __future__ import annotations

import pytest

from tests.support.openai_server import ServerState

REQUEST = {"model": "mailspine-test", "messages": [{"role": "user", "content": "hi"}]}


def _delays(state: ServerState, n: int) -> list[float]:
    return [state.begin(REQUEST, authorized=True)[0].delay_s for _ in range(n)]


def test_without_a_range_every_call_waits_the_fixed_latency() -> None:
    assert _delays(ServerState(latency_s=0.25), 5) == [0.25] * 5


def test_a_range_draws_each_delay_from_it_and_a_seed_repeats_the_draws() -> None:
    delays = _delays(ServerState(latency_s=9.0, latency_range_s=(0.5, 2.0), seed=7), 50)
    assert all(0.5 <= d <= 2.0 for d in delays)
    assert len(set(delays)) > 1
    assert _delays(ServerState(latency_range_s=(0.5, 2.0), seed=7), 50) == delays
    assert _delays(ServerState(latency_range_s=(0.5, 2.0), seed=8), 50) != delays


def test_configure_switches_between_a_range_and_a_fixed_latency() -> None:
    state = ServerState(latency_s=0.1)
    state.configure(latency_range_s=(1.0, 1.5))
    assert all(1.0 <= d <= 1.5 for d in _delays(state, 10))
    state.configure(latency_s=0.2)
    assert state.latency_range_s is None
    assert _delays(state, 3) == [0.2] * 3
    with pytest.raises(ValueError):
        state.configure(latency_range_s=(2.0, 1.0))
