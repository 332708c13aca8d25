from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from langgraph.config import get_config
from langgraph.runtime import Runtime

from agent.context import Context
from agent.nodes import traced_node
from agent.state import EffectRecord, EmailState
from tools.actions import Action, CrmAddNote, CrmUpsertContact, DraftReply
from tools.drafts import OutboundRecord, outbound_status, save_draft
from tools.ledger import EffectCall, run_effect
from tools.mailbox_smtp import OutgoingMessage, send_message
from tools.pii_boundary import load_entries, restore_model


def _call_for(action: Action, state: EmailState, ctx: Context, thread_id: str) -> EffectCall:
    """The tool call for one action. ``action`` is already restored (real values): see ``act``."""
    email = state["email"]
    if isinstance(action, CrmUpsertContact):
        return lambda key, attempt: ctx.crm.upsert_contact(action, idempotency_key=key)
    if isinstance(action, CrmAddNote):
        stamp = (email.sent_at or datetime.now(UTC)).isoformat()
        return lambda key, attempt: ctx.crm.add_note(action, idempotency_key=key, timestamp=stamp)
    if isinstance(action, DraftReply):
        return lambda key, attempt: save_draft(
            ctx.db,
            action,
            email_id=email.email_id,
            thread_id=thread_id,
            in_reply_to=email.message_id,
            references=email.references,
            idempotency_key=key,
        )
    raise TypeError(f"no tool for action {action!r}")  # unreachable: Action is a closed union


def _send_call(ctx: Context, draft: dict[str, Any], action: DraftReply) -> EffectCall:
    settings, smtp = ctx.settings, ctx.settings.smtp
    assert smtp is not None
    sent = settings.imap_account(smtp.sent_copy_account) if smtp.sent_copy_account else None
    message = OutgoingMessage(
        message_id=draft["message_id"],
        to=str(action.to),
        subject=action.subject,
        body=action.body,
        in_reply_to=draft.get("in_reply_to"),
        references=list(draft.get("references", [])),
    )

    async def send(key: str, attempt: int) -> dict[str, Any]:
        # The draft's status is marked "sent" at SMTP's point of no return (tools/mailbox_smtp.py):
        # once it says so, the message went out, whatever happened to the process after that.
        if await outbound_status(ctx.db, message_id=message.message_id) == "sent":
            return {"message_id": message.message_id, "reconciled": True}
        record = OutboundRecord(ctx.db, message_id=message.message_id, loop=asyncio.get_running_loop())
        return await send_message(message, smtp=smtp, sent=sent, attempt=attempt, record=record)

    return send


@traced_node("act")
async def act(state: EmailState, runtime: Runtime[Context]) -> dict[str, Any]:
    plan, ctx = state.get("plan"), runtime.context
    if plan is None:
        return {"effects": []}
    thread_id = str(get_config()["configurable"]["thread_id"])
    # The plan may name only tools this node is bound to: one that is not stops the whole plan
    # before any side effect (ToolNotAllowed fails the email with the reason; it is not retried).
    tools = ctx.tools.for_node("act")
    for action in plan.actions:
        tools.require(action.kind)
    # The ledger, checkpoints and spans keep placeholders; only the tool call sees real values.
    vault_key = ctx.settings.pii.vault_key.get_secret_value()
    entries = await load_entries(ctx.db, email_id=state["email"].email_id, key=vault_key)
    effects: list[EffectRecord] = []
    for action in plan.actions:
        real = restore_model(action, entries)
        call = tools.effect(action.kind, _call_for(real, state, ctx, thread_id))
        key, status, result = await run_effect(
            ctx.db, thread_id=thread_id, node="act", effect=action.kind, payload=action, call=call
        )
        effects.append(EffectRecord(action=action.kind, idempotency_key=key, status=status, result=result))
        # A deployment that binds act to draft_reply but not send_reply keeps drafts only.
        if isinstance(real, DraftReply) and ctx.settings.smtp is not None and tools.allows("send_reply"):
            send = tools.effect("send_reply", _send_call(ctx, result, real))
            key, status, sent = await run_effect(
                ctx.db, thread_id=thread_id, node="act", effect="send_reply", payload=action, call=send
            )
            effects.append(EffectRecord(action="send_reply", idempotency_key=key, status=status, result=sent))
    return {"effects": effects}
