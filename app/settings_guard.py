"""Settings of the guard pipeline (nested under `Settings.guard`, env `MAILSPINE_GUARD__FIELD`)."""

from __future__ import annotations

from pydantic import BaseModel


class GuardSettings(BaseModel):
    pass
