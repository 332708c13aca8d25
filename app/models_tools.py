"""The shared token buckets of the tools' rate limits (``tools/ratelimit.py``): one row per tool."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Float, String
from sqlalchemy.orm import Mapped, mapped_column

from app.models import Base


class ToolRateLimit(Base):
    __tablename__ = "tool_rate_limits"

    tool: Mapped[str] = mapped_column(String(100), primary_key=True)
    tokens: Mapped[float] = mapped_column(Float)  # what was in the bucket at ``updated_at``
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
