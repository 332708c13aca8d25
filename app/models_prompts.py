"""The prompt registry's tables: every version ever seen, labels, label history, thread pins.

Prompt files (``agent/prompts/<name>/<version>.yaml``) are synced into ``prompt_versions``; drafts
(edited outside code) exist only there. Rows are never updated: a change is a new version, a label
move is a new history row. ``agent.prompts.registry`` holds the rules; ``app.repo.prompts`` the SQL.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, ForeignKey, ForeignKeyConstraint, Index, Integer, String, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.models import Base


class PromptVersion(Base):
    __tablename__ = "prompt_versions"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    version: Mapped[str] = mapped_column(String(64), primary_key=True)
    content: Mapped[dict[str, Any]] = mapped_column(JSONB)  # the file's parsed YAML, as written
    sha256: Mapped[str] = mapped_column(String(64))  # of the canonical JSON of ``content``
    source: Mapped[str] = mapped_column(String(8))  # file | draft
    derived_from: Mapped[str | None] = mapped_column(String(64))  # a draft's base version
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    created_by: Mapped[str] = mapped_column(String(200))


class PromptLabelHistory(Base):
    """One row per label change. ``replaces_id`` is the row whose assignment this one replaced,
    so a rollback walks back one step at a time. ``version`` null: the label was removed."""

    __tablename__ = "prompt_label_history"
    __table_args__ = (
        Index("ix_prompt_label_history_label", "name", "label", "id"),
        ForeignKeyConstraint(["name", "version"], ["prompt_versions.name", "prompt_versions.version"]),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100))
    label: Mapped[str] = mapped_column(String(16))
    version: Mapped[str | None] = mapped_column(String(64))
    percentage: Mapped[int | None] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(16))  # sync | promote | rollback
    replaces_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("prompt_label_history.id"))
    eval_run_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("eval_runs.id"))
    actor: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class PromptLabel(Base):
    """Where a label points now (the latest history row of the label)."""

    __tablename__ = "prompt_labels"
    __table_args__ = (
        ForeignKeyConstraint(["name", "version"], ["prompt_versions.name", "prompt_versions.version"]),
    )

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    label: Mapped[str] = mapped_column(String(16), primary_key=True)  # production | staging | canary
    version: Mapped[str] = mapped_column(String(64))
    percentage: Mapped[int | None] = mapped_column(Integer)  # canary only: 0-100
    history_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("prompt_label_history.id"))


class PromptThreadVersion(Base):
    """The version a thread resolved for a prompt, once: a resumed thread keeps it."""

    __tablename__ = "prompt_thread_versions"

    thread_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    version: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
