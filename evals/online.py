"""Online evaluation: live runs scored after they finish; rolling means and drift alarms.

When a worker finishes an email's run (done, rejected, or failed after the agent ran),
``after_run``:

1. records the implicit signals of every run, sampled or not: the reviewer's decision
   (``review``: approved 1, edited 1 - normalised edit distance, rejected 0) and the CRM's
   verdict on the run's writes (``crm_write``: 0 when the CRM rejected one, 1 when all succeeded);
2. for a sampled run (a hash of the thread id below ``MAILSPINE_ONLINE__SAMPLE_RATE``, so an
   email is always in or always out) enqueues the ``online_eval`` job, and for a run in the
   shadow sample the ``shadow_run`` job (``evals.shadow``).

The ``online_eval`` job (``score_email``) runs the rule checks on the run's stored state
(``evals.online_checks``: schema validity, policy consistency, another customer's data in the
reply, reply language) and, when a real model is configured, the LLM judge (prompt ``judge``,
fast tier, through ``agent.llm.structured_call``); with the offline model the judge is recorded
as skipped. Scores are stored per run with its trace id (``online_scores``), one per name, so a
retried job never scores twice and a judge answer stored once is never paid for again.

After each score the rolling mean of its last ``window`` values is compared with its threshold:
below it, a drift alarm is raised (a WARNING log line, a ``drift_alarms`` row, the metric
``mailspine.online.drift_alarms.open``); back above it, the alarm is cleared.
``current_alarms(session)`` lists the open ones.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any, Literal

from opentelemetry import metrics
from sqlalchemy.ext.asyncio import AsyncSession

from agent.runner import thread_id_for
from app.db import Database
from app.models import Run
from app.models_online import DriftAlarm
from app.queue import enqueue
from app.repo import emails, online_eval, reviews, runs
from app.services import Services
from app.settings import Settings
from app.telemetry import tracer
from evals import online_checks as checks
from evals.online_checks import Score
from evals.online_judge import judge_score
from tools.actions import Plan

log = logging.getLogger(__name__)
ONLINE_EVAL = "online_eval"  # procrastinate task names (app/tasks.py)
SHADOW_RUN = "shadow_run"
FINISHED = ("done", "rejected", "failed")
_meter = metrics.get_meter("mailspine.online")
_OPEN_ALARMS = _meter.create_up_down_counter(
    "mailspine.online.drift_alarms.open", description="Open drift alarms of online evaluation"
)
_SCORES = _meter.create_histogram("mailspine.online.score", description="Online evaluation scores (0..1)")


def sampled(thread_id: str, rate: float, *, salt: str = "online") -> bool:
    """Deterministic: the same thread is always in or always out of a sample of this rate."""
    if rate <= 0.0:
        return False
    digest = hashlib.sha256(f"{salt}:{thread_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < rate


async def current_alarms(session: AsyncSession) -> list[DriftAlarm]:
    """The open drift alarms, newest first (the flag a dashboard shows)."""
    return await online_eval.current_alarms(session)


# --- after a run ------------------------------------------------------------------------------


async def after_task(
    services: Services, *, email_id: int | None = None, review_id: int | None = None
) -> None:
    """``after_run`` for the worker's tasks (``app/tasks.py``), by email or by review. Online
    evaluation is bookkeeping: its failure is logged and never fails the email's job."""
    try:
        if email_id is None and review_id is not None:
            async with services.db.transaction() as session:
                review = await reviews.get_review(session, review_id=review_id)
            email_id = review.email_id if review is not None else None
        if email_id is not None:
            await after_run(services, email_id=email_id)
    except Exception:
        log.exception("online evaluation could not follow up email %s (review %s)", email_id, review_id)


async def after_run(services: Services, *, email_id: int) -> list[str]:
    """Record the run's implicit signals and enqueue its sampled jobs; returns the task names
    enqueued. A run that has not finished (waiting for review) or never started: nothing."""
    settings = services.settings
    if not settings.online.enabled:
        return []
    thread_id = thread_id_for(email_id)
    async with services.db.transaction() as session:
        if not await online_eval.tables_exist(session):
            return []
        run = await runs.get_run(session, thread_id=thread_id)
        if run is None or run.status not in FINISHED:
            return []
        recorded = await _record(session, run, await _signals(session, run))
        queued = []
        if sampled(thread_id, settings.online.rate(settings.env)):
            queued.append(ONLINE_EVAL)
        if settings.online.shadow_candidate and sampled(
            thread_id, settings.online.shadow_sample_rate, salt="shadow"
        ):
            queued.append(SHADOW_RUN)
        for task in queued:
            await enqueue(
                session,
                queue=settings.queue_name,
                task=task,
                lock=f"{task}:{thread_id}",
                args={"email_id": email_id},
            )
    await update_drift(services.db, settings, recorded)
    return queued


async def _signals(session: AsyncSession, run: Run) -> list[Score]:
    found: list[Score] = []
    review = await online_eval.decided_review(session, thread_id=run.thread_id)
    if review is not None:
        decided = (review.decided_payload or {}).get("plan")
        found.append(checks.review_signal(review.status, review.payload.get("plan"), decided))
    effects = await online_eval.crm_effects(session, thread_id=run.thread_id)
    crm = checks.crm_signal([(e.status, e.error) for e in effects])
    if crm is not None:
        found.append(crm)
    return found


async def _record(session: AsyncSession, run: Run, scores: list[Score]) -> list[str]:
    """Store new scores (one per run and name); returns the names actually stored."""
    stored = []
    for score in scores:
        row = await online_eval.record_score(
            session,
            trace_id=run.trace_id,
            email_id=run.email_id,
            run_id=run.id,
            name=score.name,
            value=score.value,
            details=score.details,
        )
        if row is not None:
            stored.append(score.name)
            if score.value is not None:
                _SCORES.record(score.value, {"mailspine.score": score.name})
    return stored


# --- the online_eval job ----------------------------------------------------------------------


async def score_email(services: Services, *, email_id: int) -> list[str]:
    """Rule checks and the judge for one finished run; returns the score names stored."""
    thread_id = thread_id_for(email_id)
    with tracer().start_as_current_span("online_eval") as span:
        span.set_attribute("mailspine.email_id", email_id)
        async with services.db.transaction() as session:
            run = await runs.get_run(session, thread_id=thread_id)
            if run is None or run.status not in FINISHED:
                raise LookupError(f"email {email_id} has no finished run to score")
            done = await online_eval.score_names(session, run_id=run.id)
        snapshot = await services.graph.aget_state({"configurable": {"thread_id": thread_id}})
        state: dict[str, Any] = dict(snapshot.values or {})
        async with services.db.transaction() as session:
            rules = [
                s for s in await rule_scores(session, services.settings, run, state) if s.name not in done
            ]
            stored = await _record(session, run, rules)
        if "judge" not in done:
            judge = await judge_score(services, run, state)
            async with services.db.transaction() as session:
                stored += await _record(session, run, [judge])
        span.set_attribute("mailspine.online.scores", len(stored))
    await update_drift(services.db, services.settings, stored)
    return stored


async def rule_scores(
    session: AsyncSession, settings: Settings, run: Run, state: dict[str, Any]
) -> list[Score]:
    """The four rule checks on a run's stored state (``state``: the thread's checkpoint values)."""
    email_row = await emails.get_email(session, email_id=run.email_id)
    unsure = list(state.get("unsure") or [])
    found = [checks.check_schema(run.extraction, run.plan, unsure)]
    email, extraction, plan = state.get("email"), state.get("extraction"), state.get("plan")
    if email is None or email_row is None:
        why = "the run's checkpoint holds no email"
        return [
            *found,
            *(
                checks.skipped(n, why)
                for n in ("policy_consistent", "reply_no_foreign_data", "reply_language")
            ),
        ]
    # The policy judged the plan the agent proposed: a reviewed thread's state holds the approved one.
    review = await online_eval.first_review(session, thread_id=run.thread_id)
    proposed = plan
    if review is not None:
        proposed = Plan.model_validate(review.payload["plan"]) if review.payload.get("plan") else None
    risk = state.get("risk")
    found.append(
        checks.check_policy(
            email=email,
            extraction=extraction,
            plan=proposed,
            unsure=unsure,
            route_taken=run.route or (risk.route if risk is not None else None),
            refund_threshold=settings.review_refund_threshold,
            min_confidence=settings.review_min_confidence,
        )
    )
    reply_texts = [f"{r.subject}\n{r.body}" for r in checks.replies(plan)]
    thread = await online_eval.thread_emails(session, email=email_row)
    own = {a.username for a in settings.imap_accounts}
    if settings.smtp is not None:
        own.add(settings.smtp.from_address)
    found.append(
        checks.check_foreign_data(
            reply_texts,
            thread_texts=[
                email.subject,
                email.text,
                email.quoted_text,
                email.signature,
                *(f"{e.subject or ''}\n{e.text_body or ''}" for e in thread),
            ],
            allowed_addresses={a for a in (email.sender_address, email_row.sender_address, *own) if a}
            | {e.sender_address for e in thread if e.sender_address},
            placeholders=await online_eval.vault_tokens(session, email_id=run.email_id),
            order_ids=extraction.order_ids if extraction is not None else [],
            order_id_pattern=settings.online.order_id_pattern,
        )
    )
    found.append(
        checks.check_reply_language([r.body for r in checks.replies(plan)], f"{email.subject}\n{email.text}")
    )
    return found


# --- rolling window and drift alarms ----------------------------------------------------------


def alarm_action(
    mean: float | None, count: int, *, threshold: float, min_scores: int, is_open: bool
) -> Literal["raise", "clear"] | None:
    """What a rolling mean does to its alarm: below the threshold with enough values, raise one
    (unless open); at or above it, clear the open one; otherwise nothing."""
    if mean is None:
        return None
    if mean < threshold:
        return "raise" if count >= min_scores and not is_open else None
    return "clear" if is_open else None


async def update_drift(db: Database, settings: Settings, names: list[str]) -> list[DriftAlarm]:
    """Compare each name's rolling mean with its threshold: raise or clear its alarm. Returns the
    alarms raised now."""
    raised: list[DriftAlarm] = []
    online = settings.online
    for name in sorted(set(names)):
        threshold = online.threshold(name)
        if threshold is None:
            continue
        async with db.transaction() as session:
            await online_eval.lock_name(session, name=name)
            window = await online_eval.window_mean(session, name=name, window=online.window)
            is_open = await online_eval.open_alarm(session, name=name) is not None
            action = alarm_action(
                window.mean, window.count, threshold=threshold, min_scores=online.min_scores, is_open=is_open
            )
            if action == "raise" and window.mean is not None:
                alarm = await online_eval.raise_alarm(
                    session, name=name, mean=window.mean, window_size=window.count, threshold=threshold
                )
                if alarm is not None:
                    raised.append(alarm)
                    _OPEN_ALARMS.add(1, {"mailspine.score": name})
                    log.warning(
                        "drift alarm: rolling mean of %s is %.3f over the last %d runs (threshold %.3f)",
                        name,
                        window.mean,
                        window.count,
                        threshold,
                    )
            elif (
                action == "clear"
                and window.mean is not None
                and await online_eval.clear_alarm(session, name=name, mean=window.mean)
            ):
                _OPEN_ALARMS.add(-1, {"mailspine.score": name})
                log.info("drift alarm cleared: rolling mean of %s is back at %.3f", name, window.mean)
    return raised
