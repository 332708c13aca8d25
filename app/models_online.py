"""Online evaluation: scores of live runs, drift alarms and shadow-run comparisons.

Nothing here holds personal data: details and shadow outputs keep the placeholders the agent saw
(``gateway/pii.py``), never the vault's real values.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, DateTime, Float, Index, String, UniqueConstraint, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.models import Base


class OnlineScore(Base):
    """One score of one finished run. ``value`` None: the check was skipped (``details`` says why)."""

    __tablename__ = "online_scores"
    __table_args__ = (
        UniqueConstraint("run_id", "name", name="uq_online_scores_run_name"),
        Index("ix_online_scores_name", "name", "id"),
        Index("ix_online_scores_trace", "trace_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    trace_id: Mapped[str | None] = mapped_column(String(32))
    email_id: Mapped[int] = mapped_column(BigInteger)
    run_id: Mapped[int] = mapped_column(BigInteger)
    name: Mapped[str] = mapped_column(String(64))
    value: Mapped[float | None] = mapped_column(Float)
    details: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class DriftAlarm(Base):
    """A rolling mean that fell below its threshold; open while ``cleared_at`` is null."""

    __tablename__ = "drift_alarms"
    __table_args__ = (Index("ix_drift_alarms_open", "name", "cleared_at"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64))
    window_mean: Mapped[float] = mapped_column(Float)
    window_size: Mapped[int] = mapped_column(BigInteger)
    threshold: Mapped[float] = mapped_column(Float)
    raised_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    cleared_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    cleared_mean: Mapped[float | None] = mapped_column(Float)


class ShadowRun(Base):
    """A candidate prompt version's run on a live email, side effects disabled, next to production's."""

    __tablename__ = "shadow_runs"
    __table_args__ = (
        UniqueConstraint("email_id", "candidate", name="uq_shadow_runs_email_candidate"),
        Index("ix_shadow_runs_created", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    email_id: Mapped[int] = mapped_column(BigInteger)
    run_id: Mapped[int] = mapped_column(BigInteger)
    candidate: Mapped[str] = mapped_column(String(200))  # name@version under test
    production_prompts: Mapped[dict[str, Any]] = mapped_column(JSONB)  # {name: version}
    candidate_prompts: Mapped[dict[str, Any]] = mapped_column(JSONB)
    production_output: Mapped[dict[str, Any]] = mapped_column(JSONB)  # intent, route, plan (placeholders)
    candidate_output: Mapped[dict[str, Any]] = mapped_column(JSONB)
    intent_agrees: Mapped[bool] = mapped_column(Boolean)
    route_agrees: Mapped[bool] = mapped_column(Boolean)
    actions_agree: Mapped[bool] = mapped_column(Boolean)
    field_diffs: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
