"""Tables of the guard part of the gateway (same metadata as `app.models`)."""

from __future__ import annotations

from app.models import Base

__all__ = ["Base"]
