"""What nodes get injected through ``Runtime[Context]`` (tests swap any of it)."""

from __future__ import annotations

from dataclasses import dataclass, field

from agent.models.factory import ModelSet
from app.db import Database
from app.settings import Settings
from tools.crm import CrmClient
from tools.registry import ToolBox


@dataclass(frozen=True)
class Context:
    db: Database
    models: ModelSet
    crm: CrmClient
    settings: Settings
    # Which tools each node may call, and their shared rate limits (tools/registry.py). The
    # default binds the standard nodes and limits nothing; app/services.py adds the limiter.
    tools: ToolBox = field(default_factory=ToolBox)
    # The CRM client of the read tools, with the read-only credential ``crm_read``; None: unset.
    crm_reader: CrmClient | None = None
