"""Online evaluation's LLM judge: one structured call that scores a finished run (0..1, reasons).

The prompt is ``judge`` (``agent/prompts/judge/<version>.yaml``, fast tier); its version comes from
the prompt registry like any thread's prompts (thread ``online:email-<id>``). The call goes through
``agent.llm.structured_call``: retries, the circuit breaker, budgets and ``model_calls`` apply. The
judge sees what the agent saw: the email with placeholders, never the vault's values. With the
offline model, or with the judge disabled, the score is recorded as skipped.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from agent.llm import CallScope, structured_call
from agent.prompting import email_block
from agent.prompts import load_prompt, pinned_prompts
from agent.prompts.registry import resolve_thread_prompts
from agent.state import Usage
from app.models import Run
from app.services import Services
from evals.online_checks import Score, skipped


class JudgeVerdict(BaseModel):
    """Your verdict on how the agent handled this one email."""

    score: float = Field(ge=0.0, le=1.0, description="0 = wrong or harmful, 1 = correct and complete")
    reasons: list[str] = Field(default_factory=list, max_length=5, description="Up to five short reasons")


async def judge_score(services: Services, run: Run, state: dict[str, Any]) -> Score:
    """The LLM judge's score, or a skipped score saying why it did not run."""
    settings = services.settings
    if not settings.online.judge_enabled:
        return skipped("judge", "the judge is disabled (MAILSPINE_ONLINE__JUDGE_ENABLED)")
    if settings.model_provider == "offline":
        return skipped("judge", "offline model: no judge")
    email, extraction, plan = state.get("email"), state.get("extraction"), state.get("plan")
    if email is None:
        return skipped("judge", "the run's checkpoint holds no email")
    judge_thread = f"online:{run.thread_id}"
    # The judge's version comes from the prompt registry (production label, or a canary), resolved
    # once for this run like any thread's prompts.
    async with services.db.transaction() as session:
        pins = await resolve_thread_prompts(session, thread_id=judge_thread)
    with pinned_prompts({"judge": pins["judge"]} if "judge" in pins else {}):
        prompt = load_prompt("judge")
    scope = CallScope(
        thread_id=judge_thread,
        node="judge",
        llm=settings.llm,
        spent=Usage(),
        timeout_s=settings.model_timeout_s,
        db=services.db,
    )
    result = await structured_call(
        services.ctx.models,
        tier=prompt.model,
        schema=JudgeVerdict,
        prompt=prompt,
        scope=scope,
        email_block=email_block(email),
        extraction_json=extraction.model_dump_json() if extraction is not None else "none",
        plan_json=plan.model_dump_json() if plan is not None else "none",
        route=str(run.route or "unknown"),
    )
    if result.value is None:
        return Score(
            "judge", None, {"skipped": f"judge answer unusable ({result.unsure})", "prompt": prompt.ref}
        )
    return Score(
        "judge",
        result.value.score,
        {"reasons": [r[:300] for r in result.value.reasons], "prompt": prompt.ref},
    )
