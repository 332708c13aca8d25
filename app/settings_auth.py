"""Settings for the auth part of the gateway (nested under `Settings.auth`, env `MAILSPINE_AUTH__FIELD`)."""

from __future__ import annotations

from pydantic import BaseModel


class AuthSettings(BaseModel):
    pass
