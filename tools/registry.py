"""Every tool, registered in one place, and which node may call which.

``TOOLS`` lists each tool's full contract (``ToolSpec``: typed input and output, read or write,
scopes, credential name, timeout, shared rate). ``NODE_TOOLS`` binds graph nodes to tool names;
a node reaches tools only through ``ToolBox.for_node(node)``, which refuses any other tool with
``ToolNotAllowed`` and takes a token from the tool's shared rate limit before each call. A model
is shown only the tools bound to the node that calls it (``BoundTools.model_tools``); the planner
names actions, which only ``act`` executes, and only those ``act`` is bound to.

Adding a tool: define its ``ToolSpec`` next to its code, append it to ``TOOLS`` (or call
``register`` from your module), add its name to the nodes that may use it in ``NODE_TOOLS``
(or ``bind``); docs/tools.md has a worked example.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import logging
import operator
import typing
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Annotated, Any, TypeVar

from opentelemetry import trace
from pydantic import BaseModel, ConfigDict, Field, SecretStr, create_model

from app.settings_tools import ToolRate
from tools.actions import Action, CrmAddNote, CrmUpsertContact, DraftReply, Plan
from tools.base import ToolNotAllowed, ToolSpec
from tools.crm import ADD_NOTE, FIND_CONTACT, READER_SCOPES, UPSERT_CONTACT
from tools.drafts import SAVE_DRAFT
from tools.history import SENDER_HISTORY
from tools.ledger import EffectCall
from tools.mailbox_smtp import SEND_REPLY
from tools.ratelimit import Rate, RateLimiter
from tools.secrets import SecretsProvider

log = logging.getLogger(__name__)
T = TypeVar("T")


# --- typed outputs (the inputs of the write tools are the plan's actions, tools/actions.py) ---
class _Out(BaseModel):
    model_config = ConfigDict(extra="allow")


class ContactRef(_Out):
    contact_id: str


class NoteRef(_Out):
    note_id: str
    contact_id: str


class DraftSaved(_Out):
    outbound_id: int
    message_id: str


class SendResult(_Out):
    message_id: str
    reconciled: bool


class HistoryQuery(BaseModel):
    before_id: int = Field(description="The email whose history is wanted")
    limit: int = Field(default=5, ge=1, le=50)


class HistoryResult(_Out):
    items: list[dict[str, Any]]


class ContactQuery(BaseModel):
    email: str = Field(max_length=320)


class ContactFound(_Out):
    contact_id: str | None


# Rates are conservative defaults (HubSpot allows about 100 requests per 10 s to a private app,
# shared by everything using it); MAILSPINE_TOOLS__RATES overrides any of them.
TOOLS: list[ToolSpec] = [
    dataclasses.replace(
        UPSERT_CONTACT,
        input_model=CrmUpsertContact,
        output_model=ContactRef,
        credential="crm_write",
        rate_per_s=5.0,
        burst=10,
    ),
    dataclasses.replace(
        ADD_NOTE,
        input_model=CrmAddNote,
        output_model=NoteRef,
        credential="crm_write",
        rate_per_s=5.0,
        burst=10,
    ),
    dataclasses.replace(SAVE_DRAFT, input_model=DraftReply, output_model=DraftSaved),
    dataclasses.replace(
        SEND_REPLY,
        input_model=DraftReply,
        output_model=SendResult,
        credential="smtp",
        timeout_s=30.0,
        rate_per_s=1.0,
        burst=5,
    ),
    dataclasses.replace(SENDER_HISTORY, input_model=HistoryQuery, output_model=HistoryResult),
    dataclasses.replace(
        FIND_CONTACT,
        input_model=ContactQuery,
        output_model=ContactFound,
        credential="crm_read",
        rate_per_s=10.0,
        burst=20,
    ),
    # Further tools go here, or call register() from a module listed in REGISTERING_MODULES.
]
# Modules that register() their tools when imported (ToolBox imports them, so every process sees
# the same registry whatever it imported first).
REGISTERING_MODULES: tuple[str, ...] = ("tools.history_tools",)

# The scopes the read-only CRM token carries (every CRM read tool shares it).
CRM_READ_SCOPES: tuple[str, ...] = READER_SCOPES

# node -> the tools it may call. Nodes not listed may call none.
NODE_TOOLS: dict[str, set[str]] = {
    "extract": set(),
    "history": {"sender_history", "crm_find_contact"},
    "plan": set(),  # proposes typed actions (tools/actions.py); only ``act`` executes them
    "risk": set(),
    "review": set(),
    "act": {"crm_upsert_contact", "crm_add_note", "draft_reply", "send_reply"},
    "finalize": set(),
}


def register(spec: ToolSpec, *, nodes: Iterable[str] = ()) -> ToolSpec:
    """Add ``spec`` to the registry (replacing one of the same name) and bind it to ``nodes``."""
    TOOLS[:] = [t for t in TOOLS if t.name != spec.name] + [spec]
    for node in nodes:
        bind(node, spec.name)
    return spec


def bind(node: str, *names: str) -> None:
    NODE_TOOLS.setdefault(node, set()).update(names)


def get(name: str) -> ToolSpec:
    for spec in TOOLS:
        if spec.name == name:
            return spec
    raise KeyError(f"no tool named {name!r} is registered")


def credential_names() -> list[str]:
    return sorted({t.credential for t in TOOLS if t.credential})


def tool_credential(provider: SecretsProvider, tool: str) -> SecretStr | None:
    """The credential of ``tool``, and only that one (None when the tool needs none or it is unset)."""
    name = get(tool).credential
    return provider.get(name) if name else None


# The plan's action models (tools/actions.py), each the typed input of the write tool of its kind.
ACTION_MODELS: tuple[type[BaseModel], ...] = typing.get_args(typing.get_args(Action)[0])


@functools.cache
def plan_schema(kinds: frozenset[str]) -> type[BaseModel]:
    """The planner's output schema offering only the action kinds in ``kinds`` (the tools ``act``
    is bound to), so the model is never shown a tool it may not use. Named ``Plan`` like the full
    schema (the model sees that name); its output converts with ``Plan.model_validate``."""
    members = [m for m in ACTION_MODELS if m.model_fields["kind"].default in kinds]
    if len(members) == len(ACTION_MODELS):
        return Plan
    union: Any = functools.reduce(operator.or_, members) if members else None
    actions: Any = list[Annotated[union, Field(discriminator="kind")]] if members else list[dict[str, Any]]
    return create_model(
        "Plan",
        __doc__=Plan.__doc__,
        actions=(actions, Field(default_factory=list, max_length=10 if members else 0)),
        rationale=(str, Plan.model_fields["rationale"]),
    )


class ToolBox:
    """The node bindings (defaults plus ``MAILSPINE_TOOLS__BINDINGS``) and the shared rate limits."""

    def __init__(
        self,
        *,
        bindings: Mapping[str, Iterable[str]] | None = None,
        limiter: RateLimiter | None = None,
        rates: Mapping[str, ToolRate] | None = None,
    ) -> None:
        for module in REGISTERING_MODULES:
            importlib.import_module(module)
        merged = {node: set(names) for node, names in NODE_TOOLS.items()}
        for node, names in (bindings or {}).items():
            merged[node] = set(names)
        known = {t.name for t in TOOLS}
        unknown = sorted({n for names in merged.values() for n in names} - known)
        if unknown:
            from app.errors import ConfigurationError

            raise ConfigurationError(f"tool bindings name unknown tools: {', '.join(unknown)}")
        self.bindings = {node: frozenset(names) for node, names in merged.items()}
        self.limiter = limiter
        self.rates = dict(rates or {})

    def for_node(self, node: str) -> BoundTools:
        return BoundTools(node=node, allowed=self.bindings.get(node, frozenset()), box=self)

    def nodes_for(self, tool: str) -> list[str]:
        return sorted(node for node, names in self.bindings.items() if tool in names)

    def rate(self, spec: ToolSpec) -> Rate | None:
        override = self.rates.get(spec.name)
        if override is not None:
            return Rate(per_s=override.rate_per_s, burst=override.burst)
        return Rate(per_s=spec.rate_per_s, burst=spec.burst) if spec.rate_per_s else None

    async def take(self, spec: ToolSpec) -> None:
        rate = self.rate(spec)
        if self.limiter is not None and rate is not None:
            await self.limiter.acquire(spec.name, rate, max_wait_s=spec.timeout_s)


class BoundTools:
    """The tools one node may call. Every call goes through ``call`` or ``effect``."""

    def __init__(self, *, node: str, allowed: frozenset[str], box: ToolBox) -> None:
        self.node, self.allowed, self._box = node, allowed, box

    def allows(self, name: str) -> bool:
        return name in self.allowed

    def specs(self) -> list[ToolSpec]:
        return [t for t in TOOLS if t.name in self.allowed]

    def model_tools(self) -> list[dict[str, Any]]:
        """The function definitions a model calling from this node may be shown: bound tools only."""
        return [
            {
                "type": "function",
                "function": {
                    "name": t.name,
                    "description": t.description,
                    "parameters": t.input_model.model_json_schema() if t.input_model else {"type": "object"},
                },
            }
            for t in self.specs()
        ]

    def require(self, name: str) -> ToolSpec:
        """The spec of ``name`` if this node is bound to it; else log and raise ``ToolNotAllowed``."""
        if name not in self.allowed:
            log.warning("node %s asked for tool %s, which it is not bound to: refused", self.node, name)
            trace.get_current_span().add_event(
                "tool.not_allowed", {"mailspine.node": self.node, "gen_ai.tool.name": name}
            )
            raise ToolNotAllowed(node=self.node, tool=name)
        return get(name)

    async def call(self, name: str, fn: Callable[[], Awaitable[T]]) -> T:
        """Run one call of tool ``name``: binding check, then a rate-limit token, then ``fn``."""
        spec = self.require(name)
        await self._box.take(spec)
        return await fn()

    def effect(self, name: str, call: EffectCall) -> EffectCall:
        """A ledger call (``tools/ledger.run_effect``) of tool ``name``: the binding is checked now,
        before the ledger records anything; the rate token is taken when the tool is really called
        (a replay of a recorded result takes none)."""
        spec = self.require(name)

        async def limited(key: str, attempt: int) -> dict[str, Any]:
            await self._box.take(spec)
            return await call(key, attempt)

        return limited
