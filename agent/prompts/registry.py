"""The prompt registry: prompt files synced to Postgres, labels, per-thread resolution, promotion.

- **Versions.** Every file ``agent/prompts/<name>/<version>.yaml`` is a version (``source`` file);
  ``sync_prompts`` stores the ones not stored yet and refuses when a stored file version's content
  hash differs from its file (a released file was edited in place: make a new version instead).
  A prompt edited outside code becomes a **draft** (``create_draft``), stored only in Postgres as
  ``<next patch>-draft.<N>``: drafting from 1.1.0 gives 1.1.1-draft.1, then 1.1.1-draft.2; drafting
  from 1.1.1-draft.2 gives 1.1.1-draft.3. Nothing is ever overwritten (a trigger refuses it).
- **Labels.** ``production``, ``staging`` and ``canary`` (with a percentage) point to versions.
  On a fresh database, and for a new prompt, sync points ``production`` to the latest file
  version. A label moves only by ``promote`` (which needs an eval run that passed the gate and ran
  that exact version) or ``rollback`` (back one step in the label's history); both are audited.
- **Resolution.** A thread gets the canary version when the canary label exists and
  ``int(sha256(thread_id + name)) % 100 < percentage``, else production, else the latest file. The
  result is stored per thread (``prompt_thread_versions``) the first time, so a resumed thread
  keeps its versions whatever the labels do in between. An explicit pin (``pinned_prompts``,
  e.g. ``mailspine eval run --prompt``) wins over both.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from agent.prompts import Prompt, current_pins, is_registered, prompt_files, register_prompt
from app.errors import MailspineError
from app.models_prompts import PromptVersion
from app.repo import eval_runs
from app.repo import prompts as repo
from app.repo.audit import append_audit

LABELS = ("production", "staging", "canary")
_RELEASE = re.compile(r"^\d+(?:\.\d+)*$")
_DRAFT = re.compile(r"^(?P<release>\d+(?:\.\d+)*)-draft\.(?P<n>\d+)$")


class PromptRegistryError(MailspineError):
    """A registry request that cannot be done as asked (unknown version, bad content, ...)."""


class PromptFileEdited(PromptRegistryError):
    """A released prompt file no longer matches the version stored from it."""


class PromotionRefused(PromptRegistryError):
    """The eval run does not vouch for this exact version."""


def content_sha256(content: Mapping[str, Any]) -> str:
    """Hash of the parsed content, so comments and formatting are not an edit; any value is."""
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def version_key(version: str) -> tuple[tuple[int, ...], int, int]:
    """Sort key: releases by number; a draft sorts just before the release it leads to."""
    if m := _DRAFT.match(version):
        return tuple(int(p) for p in m["release"].split(".")), 0, int(m["n"])
    if _RELEASE.match(version):
        return tuple(int(p) for p in version.split(".")), 1, 0
    raise PromptRegistryError(f"{version!r} is not a prompt version (1.2.0 or 1.2.1-draft.3)")


def canary_bucket(thread_id: str, name: str) -> int:
    """0-99, fixed for a (thread, prompt) pair."""
    return int(hashlib.sha256((thread_id + name).encode("utf-8")).hexdigest(), 16) % 100


def choose_version(
    thread_id: str,
    name: str,
    *,
    production: str | None,
    canary: tuple[str, int] | None,
    latest_file: str | None,
) -> str | None:
    if canary is not None and canary_bucket(thread_id, name) < canary[1]:
        return canary[0]
    return production or latest_file


@dataclass(frozen=True)
class SyncReport:
    added: list[str] = field(default_factory=list)  # name@version stored by this sync
    labelled: list[str] = field(default_factory=list)  # production labels set by this sync


def read_prompt_files() -> dict[tuple[str, str], dict[str, Any]]:
    """Every prompt file's parsed content, checked: ``{(name, version): content}``."""
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for name, versions in prompt_files().items():
        for version, path in versions.items():
            content = yaml.safe_load(path.read_text(encoding="utf-8"))
            if not isinstance(content, dict):
                raise PromptRegistryError(f"{path}: a prompt file is a YAML mapping")
            if content.get("name") != name or str(content.get("version")) != version:
                raise PromptRegistryError(f"{path}: name and version must be {name!r} and {version!r}")
            _validated(content, where=str(path))
            found[(name, version)] = content
    return found


async def sync_prompts(session: AsyncSession, *, actor: str = "sync") -> SyncReport:
    """Store every file version not stored yet; label new prompts. Refuses edited files first."""
    files = read_prompt_files()
    for name in sorted({n for n, _ in files}):
        await repo.lock_prompt(session, name=name)
    stored = {(r.name, r.version): r for r in await repo.list_versions(session)}
    edited = [
        f"{n}@{v} (stored {stored[(n, v)].source} sha256 {stored[(n, v)].sha256[:12]}, "
        f"file {content_sha256(c)[:12]})"
        for (n, v), c in sorted(files.items())
        if (n, v) in stored and stored[(n, v)].sha256 != content_sha256(c)
    ]
    if edited:
        raise PromptFileEdited(
            "released prompt files differ from the versions stored from them: "
            + "; ".join(edited)
            + ". A released version never changes: restore the file and add the change as a new version."
        )
    report = SyncReport()
    for (name, version), content in sorted(files.items()):
        if (name, version) not in stored:
            await repo.add_version(
                session,
                name=name,
                version=version,
                content=content,
                sha256=content_sha256(content),
                source="file",
                created_by=actor,
            )
            report.added.append(f"{name}@{version}")
    for name in sorted({n for n, _ in files}):
        if await repo.get_label(session, name=name, label="production") is None:
            latest = max((v for n, v in files if n == name), key=version_key)
            await repo.move_label(
                session,
                name=name,
                label="production",
                version=latest,
                percentage=None,
                action="sync",
                actor=actor,
                replaces_id=None,
            )
            report.labelled.append(f"{name}@{latest}")
    return report


async def resolve_thread_prompts(session: AsyncSession, *, thread_id: str) -> dict[str, str]:
    """The version of every prompt for this thread, resolved once and then kept (see the module
    docstring); versions stored only in Postgres are loaded into this process for ``load_prompt``."""
    explicit = current_pins()
    files = prompt_files()
    labels = await repo.list_labels(session)
    kept = await repo.thread_versions(session, thread_id=thread_id)
    new: dict[str, str] = {}
    for name in sorted(set(files) | {label.name for label in labels}):
        if name in explicit or name in kept:
            continue
        by_label = {label.label: label for label in labels if label.name == name}
        canary = by_label.get("canary")
        production = by_label.get("production")
        chosen = choose_version(
            thread_id,
            name,
            production=production.version if production else None,
            canary=(canary.version, canary.percentage or 0) if canary else None,
            latest_file=max(files[name], key=version_key) if name in files else None,
        )
        if chosen is not None:
            new[name] = chosen
    kept = await repo.keep_thread_versions(session, thread_id=thread_id, versions=new)
    pins = {**kept, **explicit}
    for name, version in pins.items():
        if version not in files.get(name, {}) and not is_registered(name, version):
            row = await repo.get_version(session, name=name, version=version)
            if row is None:
                raise PromptRegistryError(f"thread {thread_id} uses {name}@{version}, which is not stored")
            register_prompt(Prompt.model_validate(row.content))
    return pins


async def promote(
    session: AsyncSession,
    *,
    name: str,
    version: str,
    label: str,
    eval_run_id: int,
    actor: str,
    percentage: int | None = None,
) -> str | None:
    """Point ``label`` at ``name@version``; returns the version it pointed to before."""
    _check_label(label, percentage)
    _check_actor(actor)
    row = await _stored(session, name, version)
    run = await eval_runs.get_eval_run(session, eval_run_id=eval_run_id)
    if run is None:
        raise PromotionRefused(f"there is no eval run {eval_run_id}")
    if run.passed_gate is not True:
        state = "has not been judged by the gate" if run.passed_gate is None else "failed the gate"
        raise PromotionRefused(f"eval run {eval_run_id} {state}")
    if run.prompts.get(name) != version:
        ran = f"{name}@{run.prompts[name]}" if name in run.prompts else f"no version of {name}"
        raise PromotionRefused(f"eval run {eval_run_id} ran {ran}, not {name}@{version}")
    await repo.lock_prompt(session, name=name)
    current = await repo.get_label(session, name=name, label=label)
    if current is not None and (current.version, current.percentage) == (version, percentage):
        raise PromptRegistryError(f"{label} already points to {name}@{version}")
    previous, replaces = (current.version, current.history_id) if current else (None, None)
    await repo.move_label(
        session,
        name=name,
        label=label,
        version=version,
        percentage=percentage,
        action="promote",
        actor=actor,
        replaces_id=replaces,
        eval_run_id=eval_run_id,
    )
    await _audit(
        session, "prompt.promote", actor, name, version, label, previous, percentage, row.sha256, eval_run_id
    )
    return previous


async def rollback(session: AsyncSession, *, name: str, label: str, actor: str) -> str | None:
    """Move ``label`` back one step in its history; returns the version it points to now
    (None: a canary or staging label that had no earlier version is removed)."""
    if label not in LABELS:
        raise PromptRegistryError(f"label {label!r} is not one of {', '.join(LABELS)}")
    _check_actor(actor)
    await repo.lock_prompt(session, name=name)
    current = await repo.get_label(session, name=name, label=label)
    if current is None:
        raise PromptRegistryError(f"{name} has no {label} label to roll back")
    was = current.version
    entry = await repo.get_history(session, history_id=current.history_id)
    assert entry is not None  # a foreign key
    target = await repo.get_history(session, history_id=entry.replaces_id) if entry.replaces_id else None
    if (target is None or target.version is None) and label == "production":
        raise PromptRegistryError(f"production of {name} has no earlier version to roll back to")
    version = target.version if target else None
    percentage = target.percentage if target else None
    await repo.move_label(
        session,
        name=name,
        label=label,
        version=version,
        percentage=percentage,
        action="rollback",
        actor=actor,
        replaces_id=target.replaces_id if target else None,
    )
    sha = (await _stored(session, name, version)).sha256 if version else None
    await _audit(session, "prompt.rollback", actor, name, version, label, was, percentage, sha)
    return version


async def create_draft(
    session: AsyncSession, *, name: str, base_version: str, content: Mapping[str, Any], actor: str
) -> str:
    """Store edited content as a new draft version derived from ``base_version``; returns it."""
    _check_actor(actor)
    base = await _stored(session, name, base_version)
    if content.get("name", name) != name:
        raise PromptRegistryError(f"the content is for prompt {content.get('name')!r}, not {name!r}")
    await repo.lock_prompt(session, name=name)
    m = _DRAFT.match(base_version)
    release = m["release"] if m else _next_patch(base_version)
    taken = [
        int(d["n"])
        for r in await repo.list_versions(session, name=name)
        if (d := _DRAFT.match(r.version)) and d["release"] == release
    ]
    version = f"{release}-draft.{max(taken, default=0) + 1}"
    data = {**content, "name": name, "version": version}
    prompt = _validated(data, where=f"the draft of {name}")
    _check_compatible(prompt, Prompt.model_validate(base.content))
    if {k: v for k, v in data.items() if k != "version"} == {
        k: v for k, v in base.content.items() if k != "version"
    }:
        raise PromptRegistryError(f"the content is the same as {name}@{base_version}: nothing to draft")
    sha = content_sha256(data)
    await repo.add_version(
        session,
        name=name,
        version=version,
        content=data,
        sha256=sha,
        source="draft",
        created_by=actor,
        derived_from=base_version,
    )
    await append_audit(
        session,
        actor=actor,
        action="prompt.draft",
        subject_type="prompt",
        subject_id=f"{name}@{version}"[:100],
        details={"derived_from": base_version, "content_sha256": sha},
    )
    return version


def render_yaml(content: Mapping[str, Any]) -> str:
    """Content as YAML in the files' field order, multi-line templates as blocks (for show/diff)."""
    order = list(Prompt.model_fields)
    ordered = {
        k: content[k] for k in sorted(content, key=lambda k: (order.index(k) if k in order else 99, k))
    }
    return str(yaml.dump(ordered, Dumper=_BlockDumper, sort_keys=False, allow_unicode=True, width=120))


async def diff_versions(session: AsyncSession, *, name: str, old: str, new: str) -> str:
    a, b = await _stored(session, name, old), await _stored(session, name, new)
    return "".join(
        difflib.unified_diff(
            render_yaml(a.content).splitlines(keepends=True),
            render_yaml(b.content).splitlines(keepends=True),
            fromfile=f"{name}@{old}",
            tofile=f"{name}@{new}",
        )
    )


class _BlockDumper(yaml.SafeDumper):  # type: ignore[misc]  # PyYAML ships no type hints
    pass


def _str(dumper: Any, value: str) -> Any:
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if "\n" in value else None)


_BlockDumper.add_representer(str, _str)


def _validated(content: Mapping[str, Any], *, where: str) -> Prompt:
    try:
        prompt = Prompt.model_validate(content)
    except ValidationError as exc:
        raise PromptRegistryError(f"{where} is not a valid prompt: {exc}") from exc
    for message in prompt.messages:
        try:
            fields = {f for _, f, _, _ in string.Formatter().parse(message.template) if f is not None}
        except ValueError as exc:
            raise PromptRegistryError(f"{where}: a {message.role} template is malformed ({exc})") from exc
        roots = {re.split(r"[.\[]", f, maxsplit=1)[0] for f in fields}
        unknown = roots - set(prompt.input_variables)
        if "" in roots or unknown:
            raise PromptRegistryError(
                f"{where}: the {message.role} template uses {sorted(unknown) or ['{}']}, "
                f"not among input_variables {prompt.input_variables} (write {{{{ and }}}} for braces)"
            )
    return prompt


def _check_compatible(draft: Prompt, base: Prompt) -> None:
    """The node that renders the draft passes the base's variables and validates the base's schema."""
    extra = set(draft.input_variables) - set(base.input_variables)
    if extra:
        raise PromptRegistryError(
            f"a draft of {base.ref} may use only its input variables {base.input_variables}; "
            f"{sorted(extra)} would be missing when the node renders it"
        )
    if base.output_schema and draft.output_schema != base.output_schema:
        raise PromptRegistryError(
            f"a draft of {base.ref} keeps output_schema {base.output_schema!r} (the node validates it)"
        )


def _next_patch(version: str) -> str:
    parts = [int(p) for p in version.split(".")]
    return ".".join(map(str, [*parts[:-1], parts[-1] + 1]))


def _check_actor(actor: str) -> None:
    if not actor.strip():
        raise PromptRegistryError("an actor is required: who made this change")


def _check_label(label: str, percentage: int | None) -> None:
    if label not in LABELS:
        raise PromptRegistryError(f"label {label!r} is not one of {', '.join(LABELS)}")
    if label == "canary" and (percentage is None or not 0 <= percentage <= 100):
        raise PromptRegistryError("a canary needs a percentage from 0 to 100")
    if label != "canary" and percentage is not None:
        raise PromptRegistryError(f"only a canary takes a percentage, not {label}")


async def _stored(session: AsyncSession, name: str, version: str) -> PromptVersion:
    version_key(version)  # a malformed version is reported as such
    row = await repo.get_version(session, name=name, version=version)
    if row is None:
        known = sorted((r.version for r in await repo.list_versions(session, name=name)), key=version_key)
        raise PromptRegistryError(
            f"no version {version!r} of prompt {name!r} in the registry (known: {', '.join(known) or 'none'})"
        )
    return row


async def _audit(
    session: AsyncSession,
    action: str,
    actor: str,
    name: str,
    version: str | None,
    label: str,
    previous: str | None,
    percentage: int | None,
    sha: str | None,
    eval_run_id: int | None = None,
) -> None:
    details: dict[str, Any] = {
        "label": label,
        "version": version,
        "previous": previous,
        "percentage": percentage,
        "content_sha256": sha,
    }
    if eval_run_id is not None:
        details["eval_run_id"] = eval_run_id
    await append_audit(
        session,
        actor=actor,
        action=action,
        subject_type="prompt",
        subject_id=f"{name}@{version or previous}"[:100],
        details=details,
    )
