"""What nodes get injected through ``Runtime[Context]`` (tests swap any of it)."""

from __future__ import annotations

from dataclasses import dataclass

from agent.models.factory import ModelSet
from app.db import Database
from app.settings import Settings
from tools.crm import CrmClient


@dataclass(frozen=True)
class Context:
    db: Database
    models: ModelSet
    crm: CrmClient
    settings: Settings
