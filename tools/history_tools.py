"""The history read tools in the tool registry (``tools/registry.py``), bound to the ``history`` node.

Importing this module registers them (the history node imports it); ``sender_history`` is in
the registry's own list. Typed input and output models document each call; the CRM timeline uses
the read-only credential ``crm_read`` and takes one token of its shared rate limit per timeline
(which makes up to seven CRM requests).
"""

from __future__ import annotations

import dataclasses

from pydantic import BaseModel

from tools.base import ToolSpec
from tools.history import HistoryEntry
from tools.history_crm import CRM_TIMELINE
from tools.history_emails import COMPANY_HISTORY, THREAD_HISTORY
from tools.history_semantic import SIMILAR_EMAILS
from tools.registry import HistoryQuery, register


class HistoryEntries(BaseModel):
    items: list[HistoryEntry]


def _typed(
    spec: ToolSpec, *, credential: str | None = None, rate_per_s: float | None = None, burst: int = 1
) -> ToolSpec:
    return dataclasses.replace(
        spec,
        input_model=HistoryQuery,
        output_model=HistoryEntries,
        credential=credential,
        rate_per_s=rate_per_s,
        burst=burst,
    )


HISTORY_TOOLS: tuple[ToolSpec, ...] = (
    _typed(THREAD_HISTORY),
    _typed(COMPANY_HISTORY),
    _typed(SIMILAR_EMAILS),
    _typed(CRM_TIMELINE, credential="crm_read", rate_per_s=10.0, burst=20),
)
for _spec in HISTORY_TOOLS:
    register(_spec, nodes=("history",))
