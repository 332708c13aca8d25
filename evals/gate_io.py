"""What the gate reads and writes: baseline files, prompt files, eval runs (new or stored) and verdicts.

New runs are ``mailspine eval run --json`` in a child process each: a run sets up telemetry for its
own eval database, which a process can do once, so repeats cannot share one process.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from agent.prompts import Prompt, add_prompt_file, load_prompt, prompt_files
from app.db import Database
from app.errors import ConfigurationError, MailspineError
from app.repo import eval_runs
from evals.gate import DEFAULT_TOLERANCES, tolerances_of
from evals.report import baseline_of

_KEYS = ("dataset", "metrics")
_RELEASE = re.compile(r"^\d+(?:\.\d+)*$")


@dataclass(frozen=True)
class RunOptions:
    """The ``mailspine eval run`` options a gate forwards to each of its runs."""

    dataset: Path | None = None
    prompts: list[str] = field(default_factory=list)  # name@version
    prompt_files: list[Path] = field(default_factory=list)
    model: str | None = None
    store: bool = True

    def argv(self) -> list[str]:
        args = ["eval", "run", "--json"]
        if self.dataset is not None:
            args += ["--dataset", str(self.dataset)]
        for pin in self.prompts:
            args += ["--prompt", pin]
        for path in self.prompt_files:
            args += ["--prompt-file", str(path)]
        if self.model:
            args += ["--model", self.model]
        if not self.store:
            args.append("--no-store")
        return args


def load_baseline(path: Path) -> dict[str, Any]:
    """A baseline file, checked: it must have ``dataset`` and ``metrics``, and valid tolerances."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigurationError(f"no baseline at {path}: write one with `mailspine eval baseline`") from exc
    except json.JSONDecodeError as exc:
        raise ConfigurationError(f"{path} is not JSON: {exc}") from exc
    if not isinstance(data, dict) or any(not isinstance(data.get(k), dict) for k in _KEYS):
        raise ConfigurationError(f"{path} is not a baseline: it needs 'dataset' and 'metrics' objects")
    tolerances_of(data)  # a malformed tolerance fails here, before any run
    return data


def write_baseline(report: dict[str, Any], path: Path, *, previous: dict[str, Any] | None) -> None:
    """The run's dataset, model, prompts and metrics as the new baseline, keeping the previous
    baseline's ``gate`` section (its tolerances), or the defaults when there was none."""
    gate = (previous or {}).get("gate") or {"tolerances": DEFAULT_TOLERANCES}
    data = {**baseline_of(report), "gate": gate}
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def register_prompt_file(path: Path) -> str:
    """Add a prompt version from a YAML file outside ``agent/prompts`` (a candidate, or a test
    fixture) to this process's prompt files and return its pin, ``name@version``. The registry's
    sync then stores it in the eval's own database like any file. A released version of the same
    name and number must be the same prompt: a file cannot shadow it."""
    try:
        prompt = Prompt.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
    except (OSError, yaml.YAMLError, ValidationError) as exc:
        raise ConfigurationError(f"{path} is not a prompt file: {exc}") from exc
    if not _RELEASE.match(prompt.version):
        raise ConfigurationError(f"{path}: a prompt file's version is like 1.2.0 (got {prompt.version!r})")
    if prompt.name not in prompt_files():
        raise ConfigurationError(f"{path}: there is no prompt named {prompt.name!r} to add a version to")
    try:
        released = load_prompt(prompt.name, prompt.version)
    except FileNotFoundError:
        released = None
    if released is not None and released != prompt:
        raise ConfigurationError(f"{path}: {prompt.ref} is already released with different content")
    add_prompt_file(path.resolve())
    return prompt.ref


def run_once(options: RunOptions) -> dict[str, Any]:
    """One ``mailspine eval run --json`` in a child process; its report."""
    argv = [sys.executable, "-m", "app.cli", *options.argv()]
    done = subprocess.run(argv, stdout=subprocess.PIPE, check=False)  # stderr: the run's progress
    if done.returncode != 0:
        raise MailspineError(f"`mailspine {' '.join(options.argv())}` exited {done.returncode}")
    try:
        report: dict[str, Any] = json.loads(done.stdout)
    except json.JSONDecodeError as exc:
        raise MailspineError(f"eval run printed no JSON report: {exc}") from exc
    return report


def _as_report(row: Any) -> dict[str, Any]:
    return {
        "eval_run_id": row.id,
        "dataset": {
            "path": row.dataset_path,
            "sha256": row.dataset_sha256,
            "cases": row.metrics.get("cases"),
        },
        "prompts": row.prompts,
        "provider": row.provider,
        "model": row.model,
        "metrics": row.metrics,
        "cases": row.cases,
    }


async def _stored(url: str, ids: Sequence[int]) -> list[dict[str, Any]]:
    db = Database(url)
    try:
        async with db.transaction() as session:
            rows = [await eval_runs.get_eval_run(session, eval_run_id=i) for i in ids]
    finally:
        await db.dispose()
    missing = [i for i, row in zip(ids, rows, strict=True) if row is None]
    if missing:
        raise ConfigurationError(f"no eval run with id {', '.join(map(str, missing))}")
    return [_as_report(row) for row in rows]


def stored_runs(url: str, ids: Sequence[int]) -> list[dict[str, Any]]:
    """Stored runs (``eval_runs``) in the shape of an eval report."""
    return asyncio.run(_stored(url, ids))


async def _record(url: str, ids: Sequence[int], report: dict[str, Any]) -> None:
    db = Database(url)
    try:
        async with db.transaction() as session:
            for i in ids:
                await eval_runs.set_gate_verdict(
                    session, eval_run_id=i, passed=bool(report["passed"]), report=report
                )
    finally:
        await db.dispose()


def record_verdict(url: str, report: dict[str, Any]) -> None:
    """``passed_gate`` and ``gate_report`` on every stored run the gate judged."""
    ids = [i for i in report["runs"] if i is not None]
    if ids:
        asyncio.run(_record(url, ids, report))
