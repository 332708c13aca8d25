"""``mailspine eval gate`` and ``mailspine eval baseline`` (registered on ``eval_cli`` in app/cli.py).

Exit codes of the gate: 0 passed, 1 regression (a metric beyond its tolerance or a hard rule
broken), 2 anything else: bad options or baseline, a run that could not be made, no database.
Heavy imports stay inside the commands so ``--help`` is instant.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from app.errors import MailspineError
from app.settings import REPO_ROOT, get_settings

log = logging.getLogger("evals.gate")
_DEFAULT_BASELINE = REPO_ROOT / "evals" / "baseline.json"


def _logging() -> None:
    settings = get_settings()
    logging.basicConfig(
        level=logging.WARNING,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s [eval] %(name)s: %(message)s",
    )
    logging.getLogger("evals").setLevel(settings.log_level.upper())


def _dataset_of(baseline: dict[str, Any]) -> Path:
    path = Path(str(baseline["dataset"].get("path", "")))
    return path if path.is_absolute() else REPO_ROOT / path


def _gate(
    *,
    run_ids: list[int],
    dataset: Path | None,
    prompts: list[str],
    prompt_files: list[Path],
    model: str | None,
    repeats: int,
    baseline_path: Path,
    store: bool,
) -> dict[str, Any]:
    from app.db import resolve_database_url
    from app.errors import ConfigurationError
    from evals.gate import judge
    from evals.gate_io import (
        RunOptions,
        load_baseline,
        record_verdict,
        register_prompt_file,
        run_once,
        stored_runs,
    )
    from evals.runner import parse_pins, register_stored_pins

    baseline = load_baseline(baseline_path)
    url = resolve_database_url(get_settings())
    if run_ids:
        if dataset or prompts or prompt_files or model or repeats != 1:
            raise ConfigurationError(
                "--run judges stored runs: it takes no --dataset/--prompt/--model/--repeats"
            )
        runs = stored_runs(url, run_ids)
    else:
        asyncio.run(register_stored_pins(url, prompts))  # drafts, from this deployment's registry
        parse_pins([*prompts, *(register_prompt_file(p) for p in prompt_files)])  # bad pins fail now
        options = RunOptions(
            dataset=dataset or _dataset_of(baseline),
            prompts=prompts,
            prompt_files=[p.resolve() for p in prompt_files],
            model=model,
            store=store,
        )
        runs = []
        for n in range(1, repeats + 1):
            log.info("gate: run %d of %d", n, repeats)
            runs.append(run_once(options))
    report = judge(baseline, runs)
    report["baseline"]["path"] = str(baseline_path)
    if store:
        record_verdict(url, report)
    return report


def eval_gate(
    run: Annotated[
        list[int] | None, typer.Option(help="Judge this stored eval run instead of running one (repeatable)")
    ] = None,
    dataset: Annotated[
        Path | None, typer.Option(help="Labelled JSONL; default: the baseline's dataset")
    ] = None,
    prompt: Annotated[
        list[str] | None, typer.Option(help="Pin a prompt version, name@version (repeatable)")
    ] = None,
    prompt_file: Annotated[
        list[Path] | None,
        typer.Option(help="Pin a prompt version from a YAML file outside agent/prompts (repeatable)"),
    ] = None,
    model: Annotated[
        str | None, typer.Option(help="Model for both tiers (overrides MAILSPINE_MODEL)")
    ] = None,
    repeats: Annotated[
        int, typer.Option(min=1, help="Runs to make (non-deterministic models): means and 95% intervals")
    ] = 1,
    baseline: Annotated[Path, typer.Option(help="Baseline file with the tolerances")] = _DEFAULT_BASELINE,
    json_out: Annotated[bool, typer.Option("--json", help="Print the gate's JSON report")] = False,
    store: Annotated[
        bool, typer.Option("--store/--no-store", help="Record the runs and the verdict in eval_runs")
    ] = True,
) -> None:
    """Compare eval runs with the baseline: exit 0 passed, 1 regression, 2 usage or infrastructure error."""
    from evals.gate import render

    _logging()
    try:
        report = _gate(
            run_ids=run or [],
            dataset=dataset,
            prompts=prompt or [],
            prompt_files=prompt_file or [],
            model=model,
            repeats=repeats,
            baseline_path=baseline,
            store=store,
        )
    except MailspineError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    except Exception as exc:  # a database or process failure is not a regression: exit 2, loudly
        log.exception("the gate could not run")
        typer.echo(f"error: {type(exc).__name__}: {exc}", err=True)
        raise typer.Exit(2) from exc
    if json_out:
        typer.echo(json.dumps(report, indent=2))
    else:
        typer.echo(render(report), nl=False)
    if not report["passed"]:
        raise typer.Exit(1)


def eval_baseline(
    run: Annotated[int, typer.Option(help="The stored eval run to make the baseline")],
    baseline: Annotated[Path, typer.Option(help="Baseline file to write")] = _DEFAULT_BASELINE,
) -> None:
    """Write a baseline from a stored run, keeping the file's tolerances (its "gate" section)."""
    from app.db import resolve_database_url
    from evals.gate_io import stored_runs, write_baseline

    _logging()
    previous: dict[str, Any] | None = None
    if baseline.is_file():
        from evals.gate_io import load_baseline

        previous = load_baseline(baseline)
    (report,) = stored_runs(resolve_database_url(get_settings()), [run])
    write_baseline(report, baseline, previous=previous)
    m = report["metrics"]
    typer.echo(
        f"wrote {baseline} from eval run {run}: {m.get('passed')}/{m.get('cases')} cases passed, "
        f"high-stakes recall {m.get('high_stakes_recall')}, "
        f"unreviewed attack effects {m.get('unreviewed_attack_effects')}"
    )
