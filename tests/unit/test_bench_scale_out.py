"""The scale-out benchmarks' pure parts: the profile's grouping by component, the soak's and the
scale section's rendering (targets met or not, the offline rows), and the chaos checks' index from
a model prompt back to its email. No timing is asserted and nothing here starts a process."""

from __future__ import annotations

import cProfile
import json
import pstats
import sysconfig
from typing import Any

import pytest

from app.settings import REPO_ROOT
from bench import email_profile, scale_report, soak_report
from tests.chaos.model import BodyIndex, email_for_body


@pytest.mark.parametrize(
    ("filename", "expected"),
    [
        ("~", "built-ins (C)"),
        ("<frozen importlib._bootstrap>", "built-ins (C)"),
        (str(REPO_ROOT / "gateway" / "scan.py"), "mailspine gateway"),
        (str(REPO_ROOT / "agent" / "nodes" / "plan.py"), "mailspine agent"),
        (str(REPO_ROOT / "bench" / "run.py"), "other"),
        ("/x/.venv/lib/python3.11/site-packages/langgraph/pregel/main.py", "langgraph"),
        ("/x/.venv/lib/python3.11/site-packages/six.py", "six"),
        (sysconfig.get_paths()["stdlib"] + "/asyncio/events.py", "stdlib asyncio"),
        (sysconfig.get_paths()["stdlib"] + "/json/decoder.py", "stdlib json"),
    ],
)
def test_profile_groups_functions_by_component(filename: str, expected: str) -> None:
    assert email_profile.component(filename) == expected


def test_profile_summary_adds_up() -> None:
    profiler = cProfile.Profile()
    profiler.enable()
    json.loads(json.dumps({"k": list(range(2000))}))
    profiler.disable()
    summary = email_profile.summarise(pstats.Stats(profiler), top=3)
    components = dict(summary["by_component"])
    assert "stdlib json" in components
    assert sum(components.values()) == pytest.approx(summary["total_s"])
    assert len(summary["functions"]) == 3
    own = [f["own_s"] for f in summary["functions"]]
    assert own == sorted(own, reverse=True)
    assert summary["idle_s"] == 0.0  # nothing waited on a socket


def _soak(*, problems: list[str], retained_bytes: int) -> dict[str, Any]:
    size = {"database": retained_bytes, "mailspine_tables": retained_bytes // 2}
    return {
        "emails": 10_000,
        "workers": 2,
        "concurrency": 8,
        "latency_s": 0.05,
        "seconds": 1200.0,
        "emails_per_s": 8.3,
        "statuses": {"done": 6_700, "review": 2_800, "quarantined": 500},
        "unsettled": 0,
        "sigkills": 6,
        "pg_restarts": 1,
        "worker_exits": 2,
        "worker_processes": 10,
        "jobs_cut": 40,
        "retried_as_stalled": 40,
        "redelivered": 50,
        "job_runs": 11_000,
        "settled_per_worker": {},
        "runs_per_recorded_worker": {"a": 5_000, "b": 4_500},
        "effects": {"send_reply": 5_000},
        "replies_received": 5_000,
        "replies_lost_in_window": 0,
        "model": {"completed_model_calls": 19_000, "model_nodes_checkpointed": 19_000},
        "problems": problems,
        "storage": {
            "after_run": size,
            "after_retention": size,
            "after_vacuum_full": size,
            "largest_tables_after_run": {"spans": 1},
            "largest_tables_compacted": {"spans": 1},
        },
    }


def test_soak_section_states_the_target_and_lists_broken_promises() -> None:
    good = soak_report.section("make bench", _soak(problems=[], retained_bytes=600_000_000), machine="M")
    assert "| lost (not terminal) | **0** |" in good
    assert "0.60 GB on disk after retention, met" in good
    assert "Broken:" not in good
    bad = soak_report.section(
        "make bench", _soak(problems=["email 7 never settled"], retained_bytes=1_200_000_000), machine="M"
    )
    assert "| broken promises (see below) | **1** |" in bad
    assert "- email 7 never settled" in bad
    assert "1.20 GB on disk after retention, not met" in bad


def _row(workers: int, concurrency: int, *, ideal: float, latency: str) -> dict[str, Any]:
    return {
        "latency": latency,
        "workers": workers,
        "concurrency": concurrency,
        "emails": 120,
        "seconds": 10.0,
        "emails_per_s": 5.0 * workers,
        "ideal_per_s": ideal,
        "share_of_ideal": 5.0 * workers / ideal if ideal else 0.0,
        "p50_ms": 100.0,
        "p95_ms": 200.0,
        "model_calls_per_email": 2.0 if ideal else 0.0,
        "model_delay_mean_s": 1.0 if ideal else 0.0,
        "worker_cpu_ms_per_email": 170.0,
        "peak_rss_mb": 900.0,
    }


def test_scale_section_shows_no_ideal_for_the_offline_model() -> None:
    offline = [_row(w, 64, ideal=0.0, latency="offline") for w in (1, 2)]
    served = [_row(w, 64, ideal=64.0 * w, latency="1 s") for w in (1, 2)]
    sets = [
        {"label": "offline", "fixed": True, "latency": {"lo": 0.0, "hi": 0.0}, "rows": offline},
        {"label": "1 s", "fixed": True, "latency": {"lo": 1.0, "hi": 1.0}, "rows": served},
    ]
    for s in sets:
        s["speedup"] = [{"workers": 2, "concurrency": 64, "x": 2.0}]
    text = scale_report.section("make bench", {"sets": sets}, machine="M")
    assert "The offline model, in-process:" in text
    assert "| 1 | 64 | 120 | 10.0 | 5.00 | — | — |" in text
    assert "| 1 | 64 | 120 | 10.0 | 5.00 | 64.00 | 8% |" in text
    assert "8%, not met" in text  # the 1 s set's one worker at concurrency 64
    assert "2.00 calls per email" in text  # the offline rows make no model server calls


def test_body_index_finds_the_same_email_as_a_scan_of_all() -> None:
    bodies = {1: "[MS0001] hello there, my order", 2: "[MS0002] hello", 3: "short", 4: ""}
    bodies[5] = "[MS0001] hello"
    index = BodyIndex(bodies)
    for prompt, expected in [
        ("[MS0001] hello there, my order is late", 1),  # the longest matching text wins over 5
        ("[MS0002] hello and more", 2),
        ("short text", 3),
        ("[MS0003] nothing", None),
    ]:
        assert email_for_body(prompt, index) == expected
        assert email_for_body(prompt, bodies) == expected
