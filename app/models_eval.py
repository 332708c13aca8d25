"""One row per offline evaluation run (``mailspine eval run``): what ran, on what, and how it scored.

A prompt promotion links to a passing run by id; ``passed_gate`` stays null until a gate judges it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, DateTime, Index, String, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.models import Base


class EvalRun(Base):
    __tablename__ = "eval_runs"
    __table_args__ = (Index("ix_eval_runs_dataset", "dataset_sha256", "started_at"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    dataset_path: Mapped[str] = mapped_column(Text)
    dataset_sha256: Mapped[str] = mapped_column(String(64))
    prompts: Mapped[dict[str, Any]] = mapped_column(JSONB)  # {name: version} in effect for the run
    provider: Mapped[str] = mapped_column(String(32))
    model: Mapped[str] = mapped_column(String(200))  # "fast" or "fast / strong" when the tiers differ
    metrics: Mapped[dict[str, Any]] = mapped_column(JSONB)
    cases: Mapped[list[Any]] = mapped_column(JSONB)  # per-case results, as in the JSON report
    passed_gate: Mapped[bool | None] = mapped_column(Boolean)
    # What `mailspine eval gate` decided, per metric (evals/gate.py); null until a gate judges it.
    gate_report: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
