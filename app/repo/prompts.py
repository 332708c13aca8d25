"""The prompt registry's rows (``app.models_prompts``); the rules live in ``agent.prompts.registry``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import delete, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.models_prompts import PromptLabel, PromptLabelHistory, PromptThreadVersion, PromptVersion

_LOCK = "mailspine:prompt:"


async def lock_prompt(session: AsyncSession, *, name: str) -> None:
    """Serialise changes to one prompt's versions and labels until the transaction ends."""
    await session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": _LOCK + name})


async def list_versions(session: AsyncSession, *, name: str | None = None) -> list[PromptVersion]:
    stmt = select(PromptVersion)
    if name is not None:
        stmt = stmt.where(PromptVersion.name == name)
    return list((await session.execute(stmt)).scalars())


async def get_version(session: AsyncSession, *, name: str, version: str) -> PromptVersion | None:
    return await session.get(PromptVersion, (name, version))


async def add_version(
    session: AsyncSession,
    *,
    name: str,
    version: str,
    content: dict[str, Any],
    sha256: str,
    source: str,
    created_by: str,
    derived_from: str | None = None,
) -> PromptVersion:
    """Insert a new version; an existing (name, version) is an IntegrityError, never an update."""
    row = PromptVersion(
        name=name,
        version=version,
        content=content,
        sha256=sha256,
        source=source,
        derived_from=derived_from,
        created_by=created_by[:200],
    )
    session.add(row)
    await session.flush()
    return row


async def list_labels(session: AsyncSession, *, name: str | None = None) -> list[PromptLabel]:
    # populate_existing: ``move_label`` writes labels with Core statements, past the identity map.
    stmt = (
        select(PromptLabel)
        .order_by(PromptLabel.name, PromptLabel.label)
        .execution_options(populate_existing=True)
    )
    if name is not None:
        stmt = stmt.where(PromptLabel.name == name)
    return list((await session.execute(stmt)).scalars())


async def get_label(session: AsyncSession, *, name: str, label: str) -> PromptLabel | None:
    return await session.get(PromptLabel, (name, label), populate_existing=True)


async def get_history(session: AsyncSession, *, history_id: int) -> PromptLabelHistory | None:
    return await session.get(PromptLabelHistory, history_id)


async def label_history(session: AsyncSession, *, name: str, label: str) -> list[PromptLabelHistory]:
    stmt = (
        select(PromptLabelHistory)
        .where(PromptLabelHistory.name == name, PromptLabelHistory.label == label)
        .order_by(PromptLabelHistory.id)
    )
    return list((await session.execute(stmt)).scalars())


async def move_label(
    session: AsyncSession,
    *,
    name: str,
    label: str,
    version: str | None,
    percentage: int | None,
    action: str,
    actor: str,
    replaces_id: int | None,
    eval_run_id: int | None = None,
) -> PromptLabelHistory:
    """Record the change in the history, then point the label (``version`` None removes it)."""
    entry = PromptLabelHistory(
        name=name,
        label=label,
        version=version,
        percentage=percentage,
        action=action,
        replaces_id=replaces_id,
        eval_run_id=eval_run_id,
        actor=actor[:200],
    )
    session.add(entry)
    await session.flush()
    if version is None:
        await session.execute(delete(PromptLabel).where(PromptLabel.name == name, PromptLabel.label == label))
    else:
        values = {"version": version, "percentage": percentage, "history_id": entry.id}
        stmt = insert(PromptLabel).values(name=name, label=label, **values)
        await session.execute(stmt.on_conflict_do_update(index_elements=["name", "label"], set_=values))
    return entry


async def thread_versions(session: AsyncSession, *, thread_id: str) -> dict[str, str]:
    stmt = select(PromptThreadVersion.name, PromptThreadVersion.version).where(
        PromptThreadVersion.thread_id == thread_id
    )
    return {name: version for name, version in (await session.execute(stmt)).tuples()}


async def keep_thread_versions(
    session: AsyncSession, *, thread_id: str, versions: Mapping[str, str]
) -> dict[str, str]:
    """Store each version not stored yet for this thread; return what is stored (a concurrent
    first resolution of the same thread may have won)."""
    if versions:
        rows = [{"thread_id": thread_id, "name": n, "version": v} for n, v in versions.items()]
        await session.execute(insert(PromptThreadVersion).values(rows).on_conflict_do_nothing())
    return await thread_versions(session, thread_id=thread_id)
