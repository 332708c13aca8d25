"""What the real graph did with one eval case, as read back from the eval database."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from evals.golden import GoldenCase

# Where an email ended up, as a route: the agent's (auto, review, ignore), the gateway's
# (quarantine), or none because it failed or the eval could not run it (error).
ObservedRoute = str


@dataclass(frozen=True)
class Observed:
    status: str  # the email's status: done | review | quarantined | failed | error
    route: ObservedRoute
    extraction: dict[str, Any] | None = None  # agent.schemas.Extraction as JSON, PII restored
    actions: list[dict[str, Any]] = field(default_factory=list)  # the proposed plan's actions, PII restored
    effects: int = 0  # rows in ``side_effects`` for the email's thread
    approved: bool = False  # a person approved a review of the thread (never, in an eval)
    trajectory: list[str] = field(default_factory=list)  # ``node <name>`` spans of its trace, in order
    cost_usd: float = 0.0
    latency_ms: float = 0.0  # wall time of the whole pipeline for this email (scan + graph)
    email_id: int | None = None
    detail: str | None = None  # the email's status detail (why it was quarantined, failed, ...)

    @property
    def intent(self) -> str | None:
        return None if self.extraction is None else self.extraction.get("intent")

    @property
    def action_kinds(self) -> list[str]:
        return [str(a.get("kind")) for a in self.actions]

    @property
    def unreviewed_effects(self) -> int:
        return 0 if self.approved else self.effects


@dataclass(frozen=True)
class Pair:
    case: GoldenCase
    got: Observed
