"""Roles and scopes: the vocabulary of authorization.

Users have one role; service keys have a list of scopes. A role stands for a fixed set of
scopes, so every route checks one scope whoever calls it.
"""

from __future__ import annotations

from typing import Literal, get_args

Role = Literal["reviewer", "admin", "auditor"]
Scope = Literal["ingest", "review:read", "review:write", "emails:read", "stats:read", "admin"]

ROLES: tuple[Role, ...] = get_args(Role)
SCOPES: tuple[Scope, ...] = get_args(Scope)

SCOPE_HELP: dict[Scope, str] = {
    "ingest": "push raw messages (POST /v1/messages)",
    "review:read": "list and read reviews",
    "review:write": "approve or reject reviews",
    "emails:read": "list emails and their status; runs, timelines and traces",
    "stats:read": "read pipeline statistics, quality and cost, eval runs and prompt versions",
    "admin": "manage users and API keys; draft, promote and roll back prompts",
}

ROLE_SCOPES: dict[Role, frozenset[Scope]] = {
    "reviewer": frozenset({"review:read", "review:write", "emails:read", "stats:read"}),
    "auditor": frozenset({"review:read", "emails:read", "stats:read"}),
    "admin": frozenset(SCOPES),
}

# The static dev keys (MAILSPINE_REVIEWER_API_KEY / MAILSPINE_GATEWAY_API_KEY).
BOOTSTRAP_REVIEWER_SCOPES: frozenset[Scope] = frozenset(
    {"review:read", "review:write", "emails:read", "stats:read"}
)
BOOTSTRAP_GATEWAY_SCOPES: frozenset[Scope] = frozenset({"ingest"})


def roles_with(scope: Scope) -> list[Role]:
    return [r for r in ROLES if scope in ROLE_SCOPES[r]]


def parse_scopes(values: list[str]) -> list[Scope]:
    """Validate scope names (``ValueError`` naming the unknown ones); returned in canonical order."""
    unknown = sorted(set(values) - set(SCOPES))
    if unknown:
        raise ValueError(f"unknown scope(s) {', '.join(unknown)}; known: {', '.join(SCOPES)}")
    return [s for s in SCOPES if s in values]
