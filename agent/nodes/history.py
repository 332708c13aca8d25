"""The history node: every history read tool at once, deduplicated, bounded in tokens.

The email tools and the semantic search read mailspine's database; the CRM timeline reads the
CRM with ``Context.crm_reader`` (None: no CRM timeline). They run concurrently. An email found by
several tools is kept once, under the tool that ranks first (``tools/history_budget.PRIORITY``).
``history_block`` is how the items reach the planner's prompt: each line labelled with its source,
the summary spotlighted like the email data (spaces datamarked, angle brackets neutralised), since
it is the sender's (redacted) words too.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from langgraph.runtime import Runtime

import tools.history_tools  # noqa: F401  (registers the history tools, bound to this node)
from agent.context import Context
from agent.nodes import traced_node
from agent.prompting import DATAMARK
from agent.state import EmailState, HistoryItem
from app.errors import ToolUnavailable
from app.repo.email_embeddings import Scope
from tools.base import ToolSpec
from tools.history import HistoryEntry, Subject, load_subject
from tools.history_budget import bound, format_line, priority
from tools.history_crm import CRM_TIMELINE, CrmTimeline, crm_timeline
from tools.history_emails import SPECS, email_history
from tools.history_freemail import company_domain
from tools.history_semantic import SIMILAR_EMAILS, similar_emails
from tools.pii_boundary import load_entries

log = logging.getLogger(__name__)
T = TypeVar("T")


@traced_node("history")
async def history(state: EmailState, runtime: Runtime[Context]) -> dict[str, Any]:
    ctx, email = runtime.context, state["email"]
    hs = ctx.settings.history
    subject = await load_subject(
        ctx.db, email_id=email.email_id, extra_free_mail=frozenset(hs.free_mail_domains)
    )
    if subject is None:
        return {"history": []}
    tools = ctx.tools.for_node("history")
    limit, chars = hs.max_items_per_source, hs.excerpt_chars

    async def run(spec: ToolSpec, call: Callable[[], Awaitable[T]], empty: T) -> T:
        # A tool this deployment does not bind to the node (MAILSPINE_TOOLS__BINDINGS) is skipped.
        return await tools.call(spec.name, call) if tools.allows(spec.name) else empty

    async def emails_of(scope: Scope, who: Subject) -> list[HistoryEntry]:
        call = lambda: email_history(ctx.db, who, scope=scope, limit=limit, excerpt_chars=chars)  # noqa: E731
        return await run(SPECS[scope], call, [])

    async def similar(who: Subject) -> list[HistoryEntry]:
        return await run(SIMILAR_EMAILS, lambda: similar_emails(ctx.db, who, settings=hs, limit=limit), [])

    async def crm(who: Subject, *, company_domains: bool = False) -> CrmTimeline:
        if ctx.crm_reader is None or not who.sender:
            return CrmTimeline([])
        key = ctx.settings.pii.vault_key.get_secret_value()
        vault = await load_entries(ctx.db, email_id=who.email_id, key=key)
        call = lambda: crm_timeline(  # noqa: E731
            ctx.crm_reader,
            address=who.sender,
            vault=vault,
            limit=limit,
            excerpt_chars=chars,
            company_domains=company_domains,
        )
        try:
            return await run(CRM_TIMELINE, call, CrmTimeline([]))
        except ToolUnavailable as exc:  # its shared rate limit had no token in time
            log.warning("CRM history skipped (%s); the email goes on without it", type(exc).__name__)
            return CrmTimeline([])

    timeline: CrmTimeline | None = None
    if subject.domain is None and ctx.crm_reader is not None:
        # A free-mail sender: the company the CRM associates with the contact, if any, is the
        # "same company". The CRM goes first then, and the company and similar searches use it.
        timeline = await crm(subject, company_domains=True)
        extra = frozenset(hs.free_mail_domains)
        domains = [d for d in timeline.company_domains if company_domain(f"x@{d}", extra=extra) == d]
        subject = dataclasses.replace(subject, domain=domains[0]) if domains else subject

    async def crm_entries(who: Subject) -> list[HistoryEntry]:
        return (timeline or await crm(who)).entries

    found = await asyncio.gather(
        emails_of("thread", subject),
        emails_of("sender", subject),
        emails_of("company", subject),
        similar(subject),
        crm_entries(subject),
    )
    items = bound(dedupe([item for tool in found for item in tool]), budget=hs.token_budget)
    return {"history": [to_state(item) for item in items]}


def dedupe(items: list[HistoryEntry]) -> list[HistoryEntry]:
    """One item per ref, the one whose tool ranks first."""
    seen: set[str] = set()
    kept = []
    for item in sorted(items, key=priority):
        if item.ref not in seen:
            seen.add(item.ref)
            kept.append(item)
    return kept


def to_state(item: HistoryEntry) -> HistoryItem:
    return HistoryItem(source=item.source, ref=item.ref, summary=item.summary, via=item.via)


def history_block(items: list[HistoryItem]) -> str:
    """The planner prompt's ``history_block``: one labelled line per item, or ``none``."""
    if not items:
        return "none"
    lines = []
    for item in items:
        entry = HistoryEntry(source=item.source, ref=item.ref, summary=_spotlight(item.summary), via=item.via)
        lines.append(format_line(entry))
    return "\n".join(lines)


def _spotlight(text: str) -> str:
    # The summary is data: no angle brackets (it cannot close <history> or fake an email block),
    # spaces datamarked as in the email block.
    text = text.replace(DATAMARK, "").replace("<", "‹").replace(">", "›")
    return text.replace(" ", DATAMARK)
