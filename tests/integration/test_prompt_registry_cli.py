"""`mailspine prompts ...` through typer's CliRunner, against its own Postgres database."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner, Result

from agent.prompts.registry import read_prompt_files
from app.cli import cli
from app.settings import get_settings
from tests.integration.test_prompt_registry import latest_file, registry_url, sql

pytestmark = pytest.mark.integration
__all__ = ["registry_url"]  # a fixture, shared with the registry's own tests


@pytest.fixture
def mailspine(registry_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    monkeypatch.setenv("DATABASE_URL", registry_url)
    monkeypatch.setenv("USER", "tester")
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


def run(runner: CliRunner, *args: str) -> Result:
    return runner.invoke(cli, ["prompts", *args])


def eval_run(url: str, prompts: dict[str, str], passed_gate: bool | None) -> int:
    row = sql(
        url,
        "INSERT INTO eval_runs (started_at, finished_at, dataset_path, dataset_sha256, prompts, provider, "
        "model, metrics, cases, passed_gate) VALUES (now(), now(), 'golden', %s, %s, 'offline', "
        "'offline', '{}', '[]', %s) RETURNING id",
        "0" * 64,
        json.dumps(prompts),
        passed_gate,
    )
    return int(str(row[0][0]))


def test_list_show_and_diff(mailspine: CliRunner) -> None:
    listed = run(mailspine, "list")
    assert listed.exit_code == 0, listed.output
    extract = next(line for line in listed.output.splitlines() if line.startswith("extract\t"))
    assert "1.0.0, 1.1.0" in extract and f"production={latest_file('extract')}" in extract

    shown = run(mailspine, "show", "extract@1.0.0")
    assert shown.exit_code == 0, shown.output
    assert shown.output.startswith("# extract@1.0.0: file, by sync")
    body = yaml.safe_load(shown.output)  # the header is YAML comments: the rest is the prompt
    assert body == read_prompt_files()[("extract", "1.0.0")]
    production = run(mailspine, "show", "extract")
    assert (
        f"# extract@{latest_file('extract')}" in production.output
        and "# labels: production" in production.output
    )

    diff = run(mailspine, "diff", "extract", "1.0.0", "1.1.0")
    assert diff.exit_code == 0, diff.output
    assert diff.output.startswith("--- extract@1.0.0\n+++ extract@1.1.0\n")
    assert "-changelog: Initial extraction prompt." in diff.output
    same = run(mailspine, "diff", "extract", "1.0.0", "1.0.0")
    assert "have the same content" in same.output

    missing = run(mailspine, "show", "extract@4.0.0")
    assert missing.exit_code == 1 and "no version '4.0.0'" in missing.output


def test_promote_rollback_and_draft(mailspine: CliRunner, registry_url: str, tmp_path: Path) -> None:
    failed = eval_run(registry_url, {"extract": "1.0.0"}, passed_gate=False)
    passed = eval_run(registry_url, {"extract": "1.0.0"}, passed_gate=True)
    refused = run(mailspine, "promote", "extract@1.0.0", "--label", "staging", "--eval-run", str(failed))
    assert refused.exit_code == 1 and f"eval run {failed} failed the gate" in refused.output
    no_version = run(mailspine, "promote", "extract", "--eval-run", str(passed))
    assert no_version.exit_code == 2 and "NAME@VERSION" in no_version.output

    args = ["promote", "extract@1.0.0", "--label", "canary", "--percentage", "10", "--eval-run", str(passed)]
    promoted = run(mailspine, *args)
    assert promoted.exit_code == 0, promoted.output
    assert promoted.output.strip() == f"extract canary (10%): none -> 1.0.0 (eval run {passed})"
    assert "canary=1.0.0 (10%)" in run(mailspine, "list").output
    actors = sql(
        registry_url, "SELECT actor FROM audit_log WHERE action = 'prompt.promote' ORDER BY id DESC LIMIT 1"
    )
    assert actors == [("cli:tester",)]

    rolled = run(mailspine, "rollback", "extract", "--label", "canary", "--actor", "ops@example.test")
    assert rolled.exit_code == 0 and rolled.output.strip() == "extract canary: removed"
    assert "canary=" not in run(mailspine, "list").output
    nothing = run(mailspine, "rollback", "extract")
    assert nothing.exit_code == 1 and "no earlier version" in nothing.output

    edited = tmp_path / "extract.yaml"
    content = read_prompt_files()[("extract", "1.1.0")]
    edited.write_text(yaml.safe_dump({**content, "changelog": "Edited in the dashboard."}), encoding="utf-8")
    drafted = run(mailspine, "draft", "extract", "--from", "1.1.0", "--file", str(edited))
    assert drafted.exit_code == 0, drafted.output
    assert drafted.output.strip() == "created draft extract@1.1.1-draft.1 (from 1.1.0)"
    again = run(mailspine, "draft", "extract", "--from", "1.1.0", "--file", str(edited))
    assert again.output.strip() == "created draft extract@1.1.1-draft.2 (from 1.1.0)"  # never overwrites
    assert "1.1.1-draft.1 (draft), 1.1.1-draft.2 (draft)" in run(mailspine, "list").output
    edited.write_text("messages: [unclosed", encoding="utf-8")
    broken = run(mailspine, "draft", "extract", "--from", "1.1.0", "--file", str(edited))
    assert broken.exit_code == 1 and "not valid YAML" in broken.output


def test_a_draft_is_evaluated_by_the_gate_then_promoted(
    mailspine: CliRunner, registry_url: str, tmp_path: Path
) -> None:
    """The newcomer's path (README, "Evaluating"): draft a version, run the gate on it (the draft is
    read from this deployment's registry), promote it with the passing run."""
    import subprocess
    import sys

    from app.settings import REPO_ROOT

    edited = tmp_path / "plan.yaml"
    content = read_prompt_files()[("plan", "1.1.0")]
    edited.write_text(yaml.safe_dump({**content, "changelog": "Reworded in review."}), encoding="utf-8")
    drafted = run(mailspine, "draft", "plan", "--from", "1.1.0", "--file", str(edited))
    assert drafted.exit_code == 0, drafted.output
    draft = drafted.output.split()[2]
    assert draft.startswith("plan@1.1.1-draft.")

    data = REPO_ROOT / "tests" / "data" / "evals"
    gate = subprocess.run(
        [
            *(sys.executable, "-m", "app.cli", "eval", "gate", "--prompt", draft, "--json"),
            *("--dataset", str(data / "gate_subset.jsonl"), "--baseline", str(data / "gate_baseline.json")),
        ],
        env={**os.environ, "DATABASE_URL": registry_url, "MAILSPINE_MODEL_PROVIDER": "offline"},
        capture_output=True,
        text=True,
        timeout=600,
        stdin=subprocess.DEVNULL,
        cwd=REPO_ROOT,
    )
    assert gate.returncode == 0, gate.stderr[-3000:]
    report = json.loads(gate.stdout)
    assert report["passed"] and report["prompts"]["plan"] == draft.split("@")[1]
    (run_id,) = report["runs"]

    promoted = run(mailspine, "promote", draft, "--label", "production", "--eval-run", str(run_id))
    assert promoted.exit_code == 0, promoted.output
    assert "production=1.1.1-draft." in run(mailspine, "list").output
