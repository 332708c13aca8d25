"""``mailspine prompts ...``: the prompt registry (``agent.prompts.registry``) from the shell."""

from __future__ import annotations

import asyncio
import getpass
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from app.settings import get_settings

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

T = TypeVar("T")

prompts_cli = typer.Typer(help="The prompt registry: versions, labels, promotion.", no_args_is_help=True)
_Actor = Annotated[str | None, typer.Option(help="Who makes the change (default: cli:<your user name>)")]


def _run(work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run ``work`` in one transaction (committed if it returns); a registry error exits 1."""
    from agent.prompts.registry import PromptRegistryError
    from app.db import Database, resolve_database_url

    async def run() -> T:
        db = Database(resolve_database_url(get_settings()), pool_size=1)
        try:
            async with db.transaction() as session:
                return await work(session)
        finally:
            await db.dispose()

    try:
        return asyncio.run(run())
    except PromptRegistryError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc


def _split(ref: str) -> tuple[str, str | None]:
    name, _, version = ref.partition("@")
    return name, version or None


def _actor(actor: str | None) -> str:
    return actor or f"cli:{getpass.getuser()}"


@prompts_cli.command("list")
def prompts_list() -> None:
    """Each prompt: its versions (drafts marked) and where each label points."""
    from agent.prompts.registry import version_key
    from app.repo import prompts as repo

    async def work(session: AsyncSession) -> list[str]:
        versions, labels = await repo.list_versions(session), await repo.list_labels(session)
        lines = []
        for name in sorted({v.name for v in versions}):
            mine = sorted((v for v in versions if v.name == name), key=lambda v: version_key(v.version))
            listed = ", ".join(v.version + (" (draft)" if v.source == "draft" else "") for v in mine)
            marks = [
                f"{lb.label}={lb.version}" + (f" ({lb.percentage}%)" if lb.label == "canary" else "")
                for lb in labels
                if lb.name == name
            ]
            lines.append(f"{name}\tversions: {listed}\tlabels: {' '.join(marks) or 'none'}")
        return lines

    for line in _run(work):
        typer.echo(line)


@prompts_cli.command("show")
def prompts_show(
    ref: Annotated[str, typer.Argument(help="NAME or NAME@VERSION (default: the production version)")],
) -> None:
    """Print one version as YAML, with its source, hash and labels."""
    from agent.prompts.registry import PromptRegistryError, render_yaml
    from app.repo import prompts as repo

    name, version = _split(ref)

    async def work(session: AsyncSession) -> str:
        chosen = version
        if chosen is None:
            production = await repo.get_label(session, name=name, label="production")
            if production is None:
                raise PromptRegistryError(f"{name} has no production label: name a version ({name}@1.0.0)")
            chosen = production.version
        row = await repo.get_version(session, name=name, version=chosen)
        if row is None:
            raise PromptRegistryError(f"no version {chosen!r} of prompt {name!r} in the registry")
        labels = [lb.label for lb in await repo.list_labels(session, name=name) if lb.version == chosen]
        origin = f", from {row.derived_from}" if row.derived_from else ""
        head = (
            f"# {name}@{chosen}: {row.source}{origin}, by {row.created_by} "
            f"at {row.created_at.isoformat(timespec='seconds')}\n# sha256 {row.sha256}\n"
            f"# labels: {', '.join(labels) or 'none'}\n"
        )
        return head + render_yaml(row.content)

    typer.echo(_run(work), nl=False)


@prompts_cli.command("diff")
def prompts_diff(
    name: Annotated[str, typer.Argument(help="Prompt name")],
    old: Annotated[str, typer.Argument(help="From this version")],
    new: Annotated[str, typer.Argument(help="To this version")],
) -> None:
    """Unified diff of two versions (as YAML)."""
    from agent.prompts.registry import diff_versions

    out = _run(lambda s: diff_versions(s, name=name, old=old, new=new))
    typer.echo(out or f"{name}@{old} and {name}@{new} have the same content", nl=not out)


@prompts_cli.command("promote")
def prompts_promote(
    ref: Annotated[str, typer.Argument(help="NAME@VERSION")],
    eval_run: Annotated[int, typer.Option("--eval-run", help="An eval run that passed the gate with it")],
    label: Annotated[str, typer.Option(help="production, staging or canary")] = "production",
    percentage: Annotated[
        int | None, typer.Option(min=0, max=100, help="Canary only: share of threads, 0-100")
    ] = None,
    actor: _Actor = None,
) -> None:
    """Point a label at a version; refused unless the eval run passed the gate with that version."""
    from agent.prompts.registry import promote

    name, version = _split(ref)
    if version is None:
        typer.echo("error: promote takes NAME@VERSION", err=True)
        raise typer.Exit(2)
    previous = _run(
        lambda s: promote(
            s,
            name=name,
            version=version,
            label=label,
            eval_run_id=eval_run,
            actor=_actor(actor),
            percentage=percentage,
        )
    )
    share = f" ({percentage}%)" if label == "canary" else ""
    typer.echo(f"{name} {label}{share}: {previous or 'none'} -> {version} (eval run {eval_run})")


@prompts_cli.command("rollback")
def prompts_rollback(
    name: Annotated[str, typer.Argument(help="Prompt name")],
    label: Annotated[str, typer.Option(help="production, staging or canary")] = "production",
    actor: _Actor = None,
) -> None:
    """Move a label back to the version it had before its last change."""
    from agent.prompts.registry import rollback

    version = _run(lambda s: rollback(s, name=name, label=label, actor=_actor(actor)))
    typer.echo(f"{name} {label}: now {version}" if version else f"{name} {label}: removed")


@prompts_cli.command("draft")
def prompts_draft(
    name: Annotated[str, typer.Argument(help="Prompt name")],
    base: Annotated[str, typer.Option("--from", help="The version the edit starts from")],
    file: Annotated[Path, typer.Option(exists=True, dir_okay=False, help="The edited prompt (YAML)")],
    actor: _Actor = None,
) -> None:
    """Store edited content as a new draft version (next patch, -draft.N); never overwrites."""
    import yaml

    from agent.prompts.registry import create_draft

    try:
        content = yaml.safe_load(file.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        typer.echo(f"error: {file} is not valid YAML: {exc}", err=True)
        raise typer.Exit(1) from exc
    if not isinstance(content, dict):
        typer.echo(f"error: {file} must hold a YAML mapping (a prompt)", err=True)
        raise typer.Exit(1)
    version = _run(
        lambda s: create_draft(s, name=name, base_version=base, content=content, actor=_actor(actor))
    )
    typer.echo(f"created draft {name}@{version} (from {base})")
