"""Settings for the pii part of the gateway (nested under `Settings.pii`, env `MAILSPINE_PII__FIELD`)."""

from __future__ import annotations

from pydantic import BaseModel


class PiiSettings(BaseModel):
    pass
