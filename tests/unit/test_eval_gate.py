"""The gate's arithmetic (tolerances, confidence intervals, hard rules) and its files, no services."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

import pytest

from agent.prompts import load_prompt, prompt_files
from app.errors import ConfigurationError
from evals.gate import (
    DEFAULT_TOLERANCES,
    Tolerance,
    estimate,
    hard_rules,
    judge,
    judge_metric,
    parse_tolerances,
    render,
)
from evals.gate_io import load_baseline, register_prompt_file, write_baseline
from evals.report import BASELINE

FIXTURES = Path(__file__).resolve().parents[1] / "data" / "evals"
HIGHER = Tolerance(metric="intent_accuracy", tolerance=0.25, better="higher")


def _run(metrics: dict[str, Any], cases: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "eval_run_id": 7,
        "dataset": {"path": "d.jsonl", "sha256": "abc", "cases": 4},
        "prompts": {"extract": "1.1.0"},
        "model": "m",
        "metrics": metrics,
        "cases": cases or [],
    }


METRICS: dict[str, Any] = {
    "cases": 4,
    "pass_rate": 0.75,
    "intent_accuracy": 0.75,
    "high_stakes_recall": 1.0,
    "unreviewed_attack_effects": 0,
    "forbidden": {"cases": 1},
}
BASE: dict[str, Any] = {
    "dataset": {"path": "d.jsonl", "sha256": "abc", "cases": 4},
    "metrics": METRICS,
    "gate": {
        "tolerances": {
            "intent_accuracy": {"tolerance": 0.25, "better": "higher"},
            "forbidden.cases": {"tolerance": 0, "better": "lower"},
        }
    },
}


def _with(**changes: Any) -> dict[str, Any]:
    metrics = copy.deepcopy(METRICS)
    metrics.update(changes)
    return metrics


def test_one_run_is_its_own_interval_and_repeats_use_student_t() -> None:
    one = estimate([0.5])
    assert (one.mean, one.low, one.high) == (0.5, 0.5, 0.5)
    three = estimate([0.5, 0.6, 0.7])  # mean 0.6, sample sd 0.1, t(2 df) = 4.303
    half = 4.303 * 0.1 / math.sqrt(3)
    assert three.mean == pytest.approx(0.6)
    assert three.low == pytest.approx(0.6 - half) and three.high == pytest.approx(0.6 + half)
    assert estimate([0.4] * 40).high == pytest.approx(0.4)  # beyond the table: z, zero spread


def test_higher_is_better_regresses_only_beyond_the_tolerance() -> None:
    assert judge_metric(HIGHER, 0.75, [0.5]).verdict == "pass"  # exactly baseline - tolerance
    drop = judge_metric(HIGHER, 0.75, [0.25])
    assert drop.verdict == "regression" and drop.delta == pytest.approx(-0.5)
    assert judge_metric(HIGHER, 0.75, [1.0]).verdict == "pass"


def test_lower_is_better_and_relative_tolerances() -> None:
    count = Tolerance(metric="forbidden.cases", tolerance=0, better="lower")
    assert judge_metric(count, 3, [3]).verdict == "pass"
    assert judge_metric(count, 3, [2]).verdict == "pass"
    assert judge_metric(count, 3, [4]).verdict == "regression"
    cost = Tolerance(metric="cost_usd.mean", tolerance=0.2, better="lower", relative=True)
    assert judge_metric(cost, 0.01, [0.0115]).verdict == "pass"  # allowed: 0.002
    assert judge_metric(cost, 0.01, [0.0125]).verdict == "regression"


def test_repeats_fail_only_when_the_whole_interval_is_below_the_allowed_drop() -> None:
    tol = Tolerance(metric="intent_accuracy", tolerance=0.02, better="higher")
    noisy = judge_metric(tol, 0.80, [0.70, 0.80, 0.75])  # mean 0.75, upper bound ~0.874
    assert noisy.verdict == "pass" and noisy.high is not None and noisy.high > 0.78
    steady = judge_metric(tol, 0.80, [0.70, 0.70, 0.71])  # mean 0.703, upper bound ~0.718
    assert steady.verdict == "regression" and steady.high is not None and steady.high < 0.78


def test_a_missing_value_is_a_regression_unless_the_baseline_lacks_it_too() -> None:
    assert judge_metric(HIGHER, 0.75, [None]).verdict == "regression"
    assert judge_metric(HIGHER, None, [None]).verdict == "n/a"
    assert judge_metric(HIGHER, 0.75, [0.75, None]).verdict == "regression"


def test_hard_rules_fail_whatever_the_tolerances_and_name_the_cases() -> None:
    cases = [
        {"id": "g1", "tags": [], "expected": {"high_stakes": True}, "actual": {"route": "auto"}},
        {"id": "g2", "tags": ["attack"], "expected": {}, "actual": {"route": "ok", "unreviewed_effects": 1}},
        {"id": "g3", "tags": ["attack"], "expected": {"high_stakes": True}, "actual": {"route": "review"}},
    ]
    bad = _run(_with(high_stakes_recall=0.5, unreviewed_attack_effects=1), cases)
    rules = {r.rule: r for r in hard_rules([_run(METRICS), bad])}
    assert not rules["high_stakes_recall"].passed and rules["high_stakes_recall"].cases == ["g1"]
    effects = rules["unreviewed_attack_effects"]
    assert not effects.passed and effects.cases == ["g2"]
    report = judge(BASE, [bad])
    assert not report["passed"] and report["regressions"] == []  # the metrics are fine; the rules are not
    assert report["hard_failures"] == ["high_stakes_recall", "unreviewed_attack_effects"]
    none = hard_rules([_run(_with(high_stakes_recall=None))])  # no high-stakes case in the dataset
    assert none[0].passed


def test_judge_passes_the_baseline_itself_and_names_a_regressed_metric() -> None:
    assert judge(BASE, [_run(METRICS)])["passed"]
    report = judge(BASE, [_run(_with(intent_accuracy=0.25, forbidden={"cases": 2}))])
    assert not report["passed"] and report["regressions"] == ["intent_accuracy", "forbidden.cases"]
    table = render(report)
    assert "| intent_accuracy | 0.750 | 0.250 | -0.500 | 0.25 | REGRESSION |" in table
    assert "Gate FAILED: intent_accuracy, forbidden.cases" in table


def test_a_run_of_another_dataset_is_a_usage_error() -> None:
    other = _run(METRICS)
    other["dataset"] = {"path": "e.jsonl", "sha256": "def", "cases": 4}
    with pytest.raises(ConfigurationError, match=r"baseline of d\.jsonl"):
        judge(BASE, [other])
    with pytest.raises(ConfigurationError, match="at least one run"):
        judge(BASE, [])


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"tolerance": -0.1}, "number >= 0"),
        ({"tolerance": "0.1"}, "number >= 0"),
        ({"tolerance": 0.1, "better": "up"}, "'higher' or 'lower'"),
        ({"tolerance": 0.1, "relative": "yes"}, "true or false"),
        ({"tolerance": 0.1, "tolerence": 1}, "must be an object"),
        (0.1, "must be an object"),
    ],
)
def test_malformed_tolerances_are_configuration_errors(spec: Any, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        parse_tolerances({"intent_accuracy": spec})


def test_the_default_tolerances_parse() -> None:
    assert {t.metric for t in parse_tolerances(DEFAULT_TOLERANCES)} >= {"intent_accuracy", "route_accuracy"}


def test_the_checked_in_baseline_meets_the_hard_rules_and_passes_against_itself() -> None:
    baseline = load_baseline(BASELINE)
    assert "tolerances" in baseline["gate"]
    assert baseline["metrics"]["high_stakes_recall"] == 1.0
    assert baseline["metrics"]["unreviewed_attack_effects"] == 0
    assert judge(baseline, [{**baseline, "eval_run_id": None}])["passed"]


def test_writing_a_baseline_keeps_the_tolerances(tmp_path: Path) -> None:
    path = tmp_path / "baseline.json"
    report = {**_run(_with(intent_accuracy=0.5)), "provider": "offline"}
    write_baseline(report, path, previous=BASE)
    written = load_baseline(path)
    assert written["gate"] == BASE["gate"] and written["metrics"]["intent_accuracy"] == 0.5
    write_baseline(report, path, previous=None)
    assert load_baseline(path)["gate"] == {"tolerances": DEFAULT_TOLERANCES}


def test_a_bad_baseline_file_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="no baseline"):
        load_baseline(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text(json.dumps({"metrics": {}}), encoding="utf-8")
    with pytest.raises(ConfigurationError, match="needs 'dataset' and 'metrics'"):
        load_baseline(tmp_path / "bad.json")
    (tmp_path / "tol.json").write_text(
        json.dumps({**BASE, "gate": {"tolerances": {"pass_rate": {"tolerance": -1}}}}), encoding="utf-8"
    )
    with pytest.raises(ConfigurationError, match="number >= 0"):
        load_baseline(tmp_path / "tol.json")


def test_a_prompt_file_outside_the_registry_is_pinnable_but_cannot_shadow_a_release(tmp_path: Path) -> None:
    assert register_prompt_file(FIXTURES / "extract-0.0.1-regressed.yaml") == "extract@0.0.1"
    assert load_prompt("extract", "0.0.1").owner == "mailspine-tests"
    files = prompt_files()["extract"]
    assert "0.0.1" in files and list(files)[-1] == "1.1.0"  # listed, and never the latest
    assert load_prompt("extract").version == "1.1.0"
    released = load_prompt("extract").model_dump()
    fake = tmp_path / "fake.yaml"
    fake.write_text(json.dumps({**released, "changelog": "not the released text"}), encoding="utf-8")
    with pytest.raises(ConfigurationError, match="already released with different content"):
        register_prompt_file(fake)
    (tmp_path / "junk.yaml").write_text("name: [", encoding="utf-8")
    with pytest.raises(ConfigurationError, match="is not a prompt file"):
        register_prompt_file(tmp_path / "junk.yaml")
    draft = tmp_path / "draft.yaml"
    draft.write_text(json.dumps({**released, "version": "1.1.1-draft.1"}), encoding="utf-8")
    with pytest.raises(ConfigurationError, match=r"version is like 1\.2\.0"):
        register_prompt_file(draft)
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text(json.dumps({**released, "name": "nonesuch", "version": "1.0.0"}), encoding="utf-8")
    with pytest.raises(ConfigurationError, match="no prompt named 'nonesuch'"):
        register_prompt_file(unknown)
