"""The guard benchmark (``bench.guard``) and its section of docs/benchmarks.md: the shape of what
it measures and how a section is rewritten. No timing is asserted."""

from __future__ import annotations

import socket
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from app.settings_guard import GuardSettings
from bench import guard as guard_bench
from bench import run
from gateway.guards.pipeline import GuardPipeline


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the guard benchmark's unit tests must not touch the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.fixture(scope="module")
def rows() -> list[dict[str, Any]]:
    # Heuristics only: llm-guard and the embedding model take seconds to load; the shape is the same.
    pipeline = GuardPipeline(GuardSettings(llm_guard_enabled=False, semantic_enabled=False))
    return guard_bench.measure(pipeline, sizes=(1024,), rounds=2)


def test_measure_returns_one_row_per_size_with_positive_figures(rows: list[dict[str, Any]]) -> None:
    assert len(rows) == 1
    row = rows[0]
    assert row["size_bytes"] == 1024
    assert row["emails"] == 2
    assert sum(row["decisions"].values()) == 2
    assert isinstance(row["flagged_by"], dict)
    for key in ("p50_ms", "p95_ms", "mean_ms", "emails_per_s", "cpu_p50_ms", "cpu_p95_ms"):
        assert row[key] > 0, key
    assert row["p50_ms"] <= row["p95_ms"]
    assert row["scanners"], "no per-scanner figures"
    for stats in [*row["scanners"].values(), row["rest"]]:
        assert set(stats) == {"p50_ms", "p95_ms", "mean_ms"}
        assert all(v >= 0 for v in stats.values())


def test_tables_render_every_size_and_scanner(rows: list[dict[str, Any]]) -> None:
    latency = guard_bench.latency_table(rows)
    assert "| 1 KB | 2 |" in latency
    scanners = guard_bench.scanner_table(rows, order_by=10 * 1024)
    for name in rows[0]["scanners"]:
        assert f"`{name}`" in scanners
    assert "rest: MIME parse" in scanners


def test_synthetic_email_is_about_the_requested_size() -> None:
    import random

    raw = guard_bench.synthetic_email(10 * 1024, random.Random(1), ["Hello, where is my order?"])
    body = raw.split(b"\r\n\r\n", 1)[1]
    assert 10 * 1024 <= len(body) <= 11 * 1024  # CRLF line ends add a little


def test_offline_settings_drop_only_the_model_directories() -> None:
    settings = GuardSettings(prompt_injection_model_dir=Path("/m/pi"), ner_model_dir=Path("/m/ner"))
    offline = guard_bench.offline_settings(settings)
    assert offline.prompt_injection_model_dir is None and offline.ner_model_dir is None
    assert offline.semantic_enabled and offline.llm_guard_enabled
    assert set(guard_bench.model_dirs(settings)) == {
        "MAILSPINE_GUARD__PROMPT_INJECTION_MODEL_DIR",
        "MAILSPINE_GUARD__NER_MODEL_DIR",
    }


def test_target_line_says_whether_the_10_kb_p95_is_met() -> None:
    def row(p95: float) -> dict[str, Any]:
        scanners = {"a": {"mean_ms": 1.0}, "b": {"mean_ms": 5.0}}
        return {
            "size_bytes": 10 * 1024,
            "p95_ms": p95,
            "p50_ms": 1.0,
            "mean_ms": 7.0,
            "emails": 3,
            "scanners": scanners,
        }

    assert ": met: p95 49.0 ms" in run.guard_target([row(49.0)])
    assert "NOT met: p95 51.0 ms" in run.guard_target([row(51.0)])
    assert "`b` (mean 5.0" in run.guard_target([row(51.0)])
    assert "not measured" in run.guard_target([])


def test_model_backed_scanners_are_reported_as_not_measured_without_a_model_directory() -> None:
    text = run.guard_models(SimpleNamespace(guard=GuardSettings()), rounds=1)  # type: ignore[arg-type]
    assert "not measured: no local model directory configured" in text
    assert "MAILSPINE_GUARD__PROMPT_INJECTION_MODEL_DIR" in text
    assert "MAILSPINE_GUARD__NER_MODEL_DIR" in text


def test_rewriting_one_section_keeps_the_others() -> None:
    text = run.update_sections(None, {"scan": "## Scan\n\nscan v1", "imap": "## IMAP\n\nimap v1"})
    text = run.update_sections(text, {"guard": "## Guard\n\nguard v1"})
    text = run.update_sections(text, {"guard": "## Guard\n\nguard v2"})
    assert "scan v1" in text and "imap v1" in text and "guard v2" in text
    assert "guard v1" not in text
    assert text.count(run.begin("guard")) == 1 and text.count(run.end("guard")) == 1
    order = [text.index(run.begin(name)) for name in run.ORDER]
    assert order == sorted(order)
    assert "## Reading the figures" in text


def test_a_missing_section_is_inserted_in_order_and_unmarked_text_is_kept() -> None:
    scan = f"{run.begin('scan')}\nscan\n{run.end('scan')}"
    imap = f"{run.begin('imap')}\nimap\n{run.end('imap')}"
    text = f"# Benchmarks\n\n{scan}\n\n{imap}\n"
    text = run.update_sections(text, {"guard": "guard"})
    assert text.index("scan") < text.index("guard") < text.index("imap")
    legacy = run.update_sections("# Benchmarks\n\nold figures\n", {"guard": "guard"})
    assert "old figures" in legacy and run.begin("guard") + "\nguard\n" in legacy
