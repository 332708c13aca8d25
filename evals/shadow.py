"""Shadow runs: a candidate prompt version on a sample of live emails, side effects disabled.

The ``shadow_run`` job (``run_shadow``) takes a finished email's inputs from its production thread
(the redacted ``GuardedEmail`` and the sender history in its checkpoint) and runs the production
nodes again in a thread of its own, ``shadow:email-<id>``, with the versions production used for
that thread (``prompt_thread_versions``) pinned and the candidate in place of one of them:

    START → extract → plan → risk → END      (history: production's, as the thread saw it)

There is no ``history`` node (the candidate sees exactly production's history, and no tool reads
anything), no ``review`` (no interrupt, no pending review on the real email), no ``act`` (no CRM
write, no draft, no send) and no ``finalize`` (the real email's status and run are never
touched). The context is disarmed as well: its CRM clients have no credential and a transport
that refuses every request, and its settings carry no SMTP or IMAP account, so even a node that
tried could not reach the CRM or send. Model calls are recorded in ``model_calls`` under the
shadow thread, so their cost is visible and counts against the daily budget.

The candidate is ``MAILSPINE_ONLINE__SHADOW_CANDIDATE``: ``name@version`` (a file version or a
registry draft) or ``name@staging`` (the version the registry's ``staging`` label points to; no
shadow run while that label is unset). Production's proposal (intent, route, and the plan it
proposed: the review payload when a person decided) is compared with the candidate's: intent,
route and actions (kind and target) agree or not, and the extracted fields that differ
(``evals.fields``). Both outputs keep placeholders, never personal data. The comparison is stored
in ``shadow_runs`` (one per email and candidate version) and the shadow thread's checkpoints are
deleted.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from typing import Any

import httpx
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from sqlalchemy.ext.asyncio import AsyncSession

from agent.context import Context
from agent.nodes.extract import extract
from agent.nodes.plan import plan
from agent.nodes.risk import risk
from agent.prompts import Prompt, load_prompt, pinned_prompts, prompt_files, register_prompt
from agent.runner import thread_id_for
from agent.state import EmailState
from app.errors import ConfigurationError, ToolError
from app.models_online import ShadowRun
from app.repo import online_eval, runs
from app.repo import prompts as prompt_repo
from app.services import Services
from app.settings import Settings
from app.telemetry import tracer
from evals.fields import field_diffs, observed_items
from tools.actions import Plan
from tools.crm import CrmClient

log = logging.getLogger(__name__)
SHADOW_CRM_URL = "http://crm.shadow.invalid"
# The prompts a run of the graph loads (extract and plan nodes); the candidate replaces one of them.
GRAPH_PROMPTS = ("extract", "plan")
_CANDIDATE = re.compile(r"^(?P<name>[a-z][a-z0-9_-]*)@(?P<version>staging|\d+(?:\.\d+)*(?:-draft\.\d+)?)$")


def shadow_thread_id(email_id: int) -> str:
    return f"shadow:{thread_id_for(email_id)}"


def parse_candidate(value: str) -> tuple[str, str]:
    """``plan@1.1.0`` -> ``("plan", "1.1.0")``; ``plan@staging`` -> ``("plan", "staging")``."""
    m = _CANDIDATE.match(value.strip())
    if m is None:
        raise ConfigurationError(
            f"a shadow candidate is name@version or name@staging, e.g. plan@1.1.0 (got {value!r})"
        )
    if m["name"] not in GRAPH_PROMPTS:
        raise ConfigurationError(
            f"shadow candidate {value!r}: the graph loads only {', '.join(GRAPH_PROMPTS)}"
        )
    return m["name"], m["version"]


async def resolve_candidate(session: AsyncSession, value: str) -> tuple[str, str] | None:
    """(name, version) of the candidate, its version made loadable; ``None`` for ``name@staging``
    while the staging label is unset. An unknown version is a ``ConfigurationError``."""
    name, version = parse_candidate(value)
    if version == "staging":
        label = await prompt_repo.get_label(session, name=name, label="staging")
        if label is None:
            return None
        version = label.version
    await _make_loadable(session, name, version)
    return name, version


async def _make_loadable(session: AsyncSession, name: str, version: str) -> None:
    """A version stored only in the registry (a draft) is registered with ``load_prompt``."""
    if version in prompt_files().get(name, {}):
        return
    row = await prompt_repo.get_version(session, name=name, version=version)
    if row is None:
        raise ConfigurationError(f"prompt {name}@{version} is neither a file nor stored in the registry")
    register_prompt(Prompt.model_validate(row.content))


async def production_versions(session: AsyncSession, thread_id: str) -> dict[str, str]:
    """The versions of the graph's prompts production used for this thread (the registry keeps
    them per thread; the latest file for a prompt it has none of)."""
    kept = await prompt_repo.thread_versions(session, thread_id=thread_id)
    versions = {name: kept.get(name) or load_prompt(name).version for name in GRAPH_PROMPTS}
    for name, version in versions.items():
        await _make_loadable(session, name, version)
    return versions


def build_shadow_graph(
    checkpointer: BaseCheckpointSaver[Any] | None,
) -> CompiledStateGraph[Any, Any, Any, Any]:
    graph = StateGraph(EmailState, context_schema=Context)
    graph.add_node("extract", extract)
    graph.add_node("plan", plan)
    graph.add_node("risk", risk)
    graph.add_edge(START, "extract")
    graph.add_edge("extract", "plan")
    graph.add_edge("plan", "risk")
    graph.add_edge("risk", END)
    return graph.compile(checkpointer=checkpointer)


class _RefusingTransport(httpx.AsyncBaseTransport):
    """Every request fails before it leaves the process."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        raise ToolError(f"shadow runs have no CRM ({request.method} {request.url.path} refused)")


def shadow_settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={"smtp": None, "imap_accounts": [], "crm_base_url": SHADOW_CRM_URL, "crm_token": None}
    )


def _disarmed_crm() -> CrmClient:
    return CrmClient(base_url=SHADOW_CRM_URL, token=None, timeout_s=1.0, transport=_RefusingTransport())


def shadow_context(ctx: Context) -> Context:
    """The production context (same database and models) with every CRM client disarmed and no
    mail accounts. Any other CRM client field a fork adds is replaced the same way."""
    changes: dict[str, Any] = {
        f.name: _disarmed_crm()
        for f in dataclasses.fields(ctx)
        if isinstance(getattr(ctx, f.name), CrmClient)
    }
    changes["settings"] = shadow_settings(ctx.settings)
    return dataclasses.replace(ctx, **changes)


async def _close(ctx: Context) -> None:
    for f in dataclasses.fields(ctx):
        value = getattr(ctx, f.name)
        if isinstance(value, CrmClient):
            await value.aclose()


def _targets(plan_json: dict[str, Any] | None) -> list[tuple[str, str]]:
    actions = (plan_json or {}).get("actions") or []
    return sorted(
        (a["kind"], str(a.get("email") or a.get("contact_email") or a.get("to") or "").lower())
        for a in actions
    )


def output_of(extraction: Any, plan_json: dict[str, Any] | None, risk_value: Any) -> dict[str, Any]:
    return {
        "intent": extraction.intent.value if extraction is not None else None,
        "route": risk_value.route if risk_value is not None else None,
        "risk_reasons": list(risk_value.reasons) if risk_value is not None else [],
        "extraction": extraction.model_dump(mode="json") if extraction is not None else None,
        "plan": plan_json,
    }


def compare(production: dict[str, Any], candidate: dict[str, Any]) -> dict[str, Any]:
    """Agreement of two outputs (``output_of``) and the extracted fields that differ."""
    diffs = field_diffs(observed_items(production["extraction"]), observed_items(candidate["extraction"]))
    return {
        "intent_agrees": production["intent"] == candidate["intent"],
        "route_agrees": production["route"] == candidate["route"],
        "actions_agree": _targets(production["plan"]) == _targets(candidate["plan"]),
        "field_diffs": {
            name: {"production": d["expected"], "candidate": d["actual"]} for name, d in diffs.items()
        },
    }


async def run_shadow(services: Services, *, email_id: int, candidate: str | None = None) -> ShadowRun | None:
    """Run the candidate on one finished email and store the comparison; ``None`` when no
    candidate is configured (or staged), or this email already has a comparison for it."""
    candidate = candidate or services.settings.online.shadow_candidate
    if candidate is None:
        return None
    thread_id, shadow_id = thread_id_for(email_id), shadow_thread_id(email_id)
    with tracer().start_as_current_span("shadow_run") as span:
        span.set_attribute("mailspine.email_id", email_id)
        async with services.db.transaction() as session:
            resolved = await resolve_candidate(session, candidate)
            if resolved is None:
                log.info(
                    "shadow candidate %s: no staging version; email %s not shadowed", candidate, email_id
                )
                return None
            name, version = resolved
            ref = f"{name}@{version}"
            span.set_attribute("mailspine.shadow.candidate", ref)
            if await online_eval.get_shadow(session, email_id=email_id, candidate=ref) is not None:
                return None
            run = await runs.get_run(session, thread_id=thread_id)
            if run is None:
                raise LookupError(f"email {email_id} has no run to shadow")
            review = await online_eval.first_review(session, thread_id=thread_id)
            production_prompts = await production_versions(session, thread_id)
        values = dict((await services.graph.aget_state(_config(thread_id))).values or {})
        if "email" not in values:
            raise LookupError(f"email {email_id}: its thread's checkpoint holds no email")
        proposed = review.payload.get("plan") if review is not None else None
        if proposed is None and values.get("plan") is not None:
            proposed = values["plan"].model_dump(mode="json")
        production = output_of(values.get("extraction"), proposed, values.get("risk"))
        pins = {**production_prompts, name: version}
        start = {"email": values["email"], "history": list(values.get("history") or [])}
        result = await _run_candidate(services, shadow_id, start, pins)
        shadow_plan: Plan | None = result.get("plan")
        shadow = output_of(
            result.get("extraction"),
            shadow_plan.model_dump(mode="json") if shadow_plan else None,
            result.get("risk"),
        )
        usage = result.get("usage")
        shadow["usage"] = usage.model_dump() if usage is not None else None
        async with services.db.transaction() as session:
            row = await online_eval.record_shadow(
                session,
                email_id=email_id,
                run_id=run.id,
                candidate=ref,
                production_prompts=production_prompts,
                candidate_prompts=pins,
                production_output=production,
                candidate_output=shadow,
                **compare(production, shadow),
            )
        saver = services.graph.checkpointer
        if isinstance(saver, BaseCheckpointSaver):
            await saver.adelete_thread(shadow_id)
        if row is not None:
            span.set_attribute("mailspine.shadow.route_agrees", row.route_agrees)
        return row


def _config(thread_id: str) -> RunnableConfig:
    return {"configurable": {"thread_id": thread_id}}


async def _run_candidate(
    services: Services, shadow_id: str, start: dict[str, Any], pins: dict[str, str]
) -> dict[str, Any]:
    """The shadow graph with ``pins``; resumes its own checkpoint after a crash, so a node that
    finished is not paid for again."""
    saver = services.graph.checkpointer
    durable = isinstance(saver, BaseCheckpointSaver)
    graph = build_shadow_graph(saver if isinstance(saver, BaseCheckpointSaver) else None)
    ctx = shadow_context(services.ctx)
    try:
        with pinned_prompts(pins):
            begin: Any = start
            if durable:
                snapshot = await graph.aget_state(_config(shadow_id))
                if snapshot.created_at is not None and not snapshot.next:
                    return dict(snapshot.values)
                begin = None if snapshot.created_at is not None else start
            result: dict[str, Any] = await graph.ainvoke(
                begin, _config(shadow_id), context=ctx, durability="sync"
            )
            return result
    finally:
        await _close(ctx)
