"""One way to call a model for structured output: traced, retried, budgeted, recorded.

``structured_call`` is the only place a node talks to a model. For each call it:

1. checks the day's budget (``model_calls`` in Postgres) and, before every request, this email's
   budgets (tokens, cost, number of calls: the step limit). They are counted from the graph state
   plus this call, so a resumed thread does not start from zero, and a node whose result is in a
   checkpoint is never called, nor charged, again. Over budget: an "unsure" result with the
   reason, which the review policy routes to a person.
2. sends the request through the provider's circuit breaker, with a per-call timeout; transient
   failures (429 / 5xx / timeout / malformed response) are retried with backoff (honouring
   ``Retry-After``), then raise ``ModelUnavailable`` (the job is retried later). An open breaker
   raises ``CircuitOpen`` without sending anything: the email waits in the queue. Requests the
   provider refuses (400 / 401 / 403 / 404) raise ``ModelRejected`` at once.
3. falls back to ``MAILSPINE_LLM__FALLBACK_MODEL`` when the tier's model is unavailable.
4. gives schema-invalid output ``repair_attempts`` more tries with the validation error in the
   prompt, then returns a typed "unsure" result; so does a content-filter refusal.
5. records every request in ``model_calls`` (tokens, cost from the price table, status, latency)
   and puts the totals on the ``chat {model}`` span. No prompt or output text is recorded.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Generic, Literal, TypeVar

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage
from opentelemetry.trace import Span, Status, StatusCode
from pydantic import BaseModel, ValidationError

from agent.models.factory import ModelSet, model_name
from agent.prompts import Prompt
from agent.resilience import backoff_s, breaker_for, classify
from agent.state import Usage
from app.db import Database
from app.errors import CircuitOpen, ModelRejected, ModelUnavailable
from app.repo import model_calls
from app.settings_llm import LlmSettings
from app.telemetry import tracer

T = TypeVar("T", bound=BaseModel)
log = logging.getLogger(__name__)
_REPAIR = (
    "Your previous answer did not match the required output schema. The validation error was:\n"
    "{error}\nAnswer again with output that matches the schema exactly."
)
_TIMEOUT_GRACE_S = 5.0  # the SDK's own timeout should fire first; this one catches a stuck stream


Unsure = Literal["invalid", "budget", "refused"]


@dataclass(frozen=True)
class StructuredResult(Generic[T]):
    value: T | None  # None = "unsure": ``unsure`` says why, ``error`` in words
    usage: Usage
    error: str | None = None
    unsure: Unsure | None = None  # invalid output | over a budget | refused by a content filter


@dataclass(frozen=True)
class CallScope:
    """Who is calling and what the email has spent so far (from the graph state)."""

    thread_id: str
    node: str
    llm: LlmSettings
    spent: Usage = field(default_factory=Usage)
    timeout_s: float = 60.0  # per request (the SDK client has the same timeout)
    db: Database | None = None  # records ``model_calls`` and reads the day's spend; None: neither


class _OverBudget(Exception):
    pass


async def _invoke(runnable: Any, messages: list[tuple[str, str]]) -> Any:
    return await runnable.ainvoke(messages)


def cost_micro_usd(llm: LlmSettings, model: str, input_tokens: int, output_tokens: int) -> int:
    """USD per million tokens is micro-USD per token."""
    price = llm.price(model)
    if price is None:
        return 0
    return int((price.input * input_tokens + price.output * output_tokens).to_integral_value())


def _usage(raw: object, llm: LlmSettings, model: str) -> Usage:
    if isinstance(raw, AIMessage) and raw.usage_metadata:
        tokens_in, tokens_out = raw.usage_metadata["input_tokens"], raw.usage_metadata["output_tokens"]
        return Usage(
            input_tokens=tokens_in,
            output_tokens=tokens_out,
            model_calls=1,
            cost_micro_usd=cost_micro_usd(llm, model, tokens_in, tokens_out),
        )
    return Usage(model_calls=1)


class _Call(Generic[T]):
    def __init__(self, models: ModelSet, schema: type[T], scope: CallScope, span: Span) -> None:
        self.models, self.schema, self.scope, self.span = models, schema, scope, span
        self.usage = Usage()
        self.attempts = 0

    def _check_email_budget(self) -> None:
        llm, total = self.scope.llm, self.scope.spent + self.usage
        if total.model_calls >= llm.email_max_model_calls:
            raise _OverBudget(
                f"step limit: {total.model_calls} model calls for this email "
                f"(max {llm.email_max_model_calls})"
            )
        if total.input_tokens + total.output_tokens >= llm.email_max_tokens:
            raise _OverBudget(
                f"token budget: {total.input_tokens + total.output_tokens} tokens for this email "
                f"(max {llm.email_max_tokens})"
            )
        if Decimal(total.cost_micro_usd) / 1_000_000 >= llm.email_max_cost_usd:
            raise _OverBudget(
                f"cost budget: {total.cost_micro_usd / 1_000_000:.4f} USD for this email "
                f"(max {llm.email_max_cost_usd})"
            )

    async def check_daily_budget(self) -> None:
        cap, db = self.scope.llm.daily_max_cost_usd, self.scope.db
        if cap is None or db is None:
            return
        async with db.transaction() as session:
            spent = await model_calls.spent_today_micro_usd(session)
        if Decimal(spent) / 1_000_000 >= cap:
            raise _OverBudget(f"daily budget: {spent / 1_000_000:.4f} USD spent today (UTC), max {cap}")

    async def _record(self, model: str, status: str, usage: Usage, started: float, error: str | None) -> None:
        if self.scope.db is None:
            return
        try:
            async with self.scope.db.transaction() as session:
                await model_calls.record_call(
                    session,
                    thread_id=self.scope.thread_id,
                    node=self.scope.node,
                    provider=self.models.provider,
                    model=model[:100],
                    status=status,
                    input_tokens=usage.input_tokens,
                    output_tokens=usage.output_tokens,
                    cost_micro_usd=usage.cost_micro_usd,
                    latency_ms=int((time.perf_counter() - started) * 1000),
                    error=error[:300] if error else None,
                )
        except Exception:  # bookkeeping must not turn an answered call into a failed email
            log.exception("could not record a model call for %s", self.scope.thread_id)

    async def request(self, model: BaseChatModel, messages: list[tuple[str, str]]) -> dict[str, Any]:
        """One answered request (retried while transient); ``parsed`` None when it did not validate."""
        llm, name = self.scope.llm, model_name(model)
        breaker = breaker_for(
            self.models.breaker_key(model),
            threshold=llm.circuit_failure_threshold,
            reset_s=llm.circuit_reset_s,
        )
        structured = model.with_structured_output(self.schema, include_raw=True, method="function_calling")
        timeout = self.scope.timeout_s + _TIMEOUT_GRACE_S
        for attempt in range(llm.max_attempts):
            self._check_email_budget()
            try:
                breaker.before_call()
            except CircuitOpen as exc:
                self.span.add_event("circuit_open", {"model": name})
                await self._record(name, "circuit_open", Usage(), time.perf_counter(), str(exc))
                raise
            self.attempts += 1
            started = time.perf_counter()
            try:
                answer: Any = await asyncio.wait_for(_invoke(structured, messages), timeout)
                out: dict[str, Any] = answer
            except ValidationError as exc:  # some providers' parsers raise instead of reporting
                breaker.record_success()
                usage = Usage(model_calls=1)
                self.usage += usage
                await self._record(name, "invalid", usage, started, "schema validation")
                return {"parsed": None, "parsing_error": exc, "raw": None}
            except Exception as exc:
                verdict = classify(exc)
                usage = Usage(model_calls=1)
                self.usage += usage
                await self._record(name, verdict.kind, usage, started, verdict.reason)
                if verdict.kind == "rejected":
                    breaker.release_probe()
                    raise ModelRejected(
                        f"{self.models.provider} refused the request for {name}: {verdict.reason}",
                        kind=verdict.rejected_kind,
                        status=verdict.status,
                    ) from exc
                breaker.record_failure()
                self.span.add_event(
                    "retry", {"model": name, "attempt": attempt + 1, "reason": verdict.reason}
                )
                if attempt + 1 >= llm.max_attempts:
                    raise ModelUnavailable(
                        f"{self.models.provider} {name}: {verdict.reason} after {attempt + 1} attempt(s)",
                        retry_after_s=verdict.retry_after_s,
                    ) from exc
                await asyncio.sleep(
                    backoff_s(
                        attempt,
                        base_s=llm.retry_base_s,
                        max_s=llm.retry_max_wait_s,
                        retry_after_s=verdict.retry_after_s,
                    )
                )
                continue
            breaker.record_success()
            raw = out.get("raw")
            usage = _usage(raw, llm, name)
            self.usage += usage
            if isinstance(raw, AIMessage) and raw.response_metadata.get("finish_reason") == "content_filter":
                await self._record(name, "rejected", usage, started, "content filter")
                raise ModelRejected(
                    f"{self.models.provider} {name}: the provider's content filter refused to answer",
                    kind="content_filter",
                )
            ok = isinstance(out.get("parsed"), self.schema)
            await self._record(
                name, "ok" if ok else "invalid", usage, started, None if ok else "schema validation"
            )
            return out
        raise AssertionError("unreachable: the loop returns or raises")

    async def with_repair(self, model: BaseChatModel, messages: list[tuple[str, str]]) -> StructuredResult[T]:
        error = "no structured output"
        for _ in range(1 + self.scope.llm.repair_attempts):
            out = await self.request(model, messages)
            parsed = out.get("parsed")
            if isinstance(parsed, self.schema):
                return StructuredResult(value=parsed, usage=self.usage)
            error = str(out.get("parsing_error") or "no structured output")[:800]
            self.span.add_event("repair", {"error": error[:200]})
            messages = [*messages, ("human", _REPAIR.format(error=error))]
        return StructuredResult(value=None, usage=self.usage, error=error, unsure="invalid")


async def structured_call(
    models: ModelSet, *, tier: str, schema: type[T], prompt: Prompt, scope: CallScope, **variables: str
) -> StructuredResult[T]:
    primary = models.for_tier(tier)
    with tracer().start_as_current_span(f"chat {model_name(primary)}") as span:
        span.set_attribute("gen_ai.operation.name", "chat")
        span.set_attribute("gen_ai.provider.name", models.provider)
        span.set_attribute("gen_ai.request.model", model_name(primary))
        span.set_attribute("gen_ai.output.type", "json")
        span.set_attribute("mailspine.prompt", prompt.ref)
        call = _Call(models, schema, scope, span)
        chain = [primary]
        if models.fallback is not None and model_name(models.fallback) != model_name(primary):
            chain.append(models.fallback)
        try:
            await call.check_daily_budget()
            result = await _first_available(call, chain, prompt.render(**variables), span)
        except _OverBudget as exc:
            span.set_attribute("error.type", "budget_exceeded")
            span.set_status(Status(StatusCode.ERROR, "budget exceeded"))
            result = StructuredResult(value=None, usage=call.usage, error=str(exc), unsure="budget")
        except ModelRejected as exc:
            span.set_attribute("error.type", f"rejected_{exc.kind}")
            span.set_status(Status(StatusCode.ERROR, str(exc)[:200]))
            if exc.kind != "content_filter":
                raise  # a wrong key or model name: every email would fail the same way; say so loudly
            result = StructuredResult(value=None, usage=call.usage, error=str(exc), unsure="refused")
        except ModelUnavailable as exc:
            span.set_attribute(
                "error.type", "circuit_open" if isinstance(exc, CircuitOpen) else "unavailable"
            )
            span.set_status(Status(StatusCode.ERROR, str(exc)[:200]))
            raise
        finally:
            span.set_attribute("gen_ai.usage.input_tokens", call.usage.input_tokens)
            span.set_attribute("gen_ai.usage.output_tokens", call.usage.output_tokens)
            span.set_attribute("mailspine.model.requests", call.attempts)
            span.set_attribute("mailspine.model.cost_micro_usd", call.usage.cost_micro_usd)
        if result.unsure == "invalid":
            span.set_status(Status(StatusCode.ERROR, "output failed schema validation"))
            span.set_attribute("error.type", "schema_validation")
        return result


async def _first_available(
    call: _Call[T], chain: list[BaseChatModel], messages: list[tuple[str, str]], span: Span
) -> StructuredResult[T]:
    for position, model in enumerate(chain):
        try:
            result = await call.with_repair(model, messages)
        except ModelUnavailable as exc:
            if position + 1 >= len(chain):
                raise
            log.warning("%s; falling back to %s", exc, model_name(chain[position + 1]))
            span.add_event("fallback", {"from": model_name(model), "to": model_name(chain[position + 1])})
            continue
        span.set_attribute("gen_ai.response.model", model_name(model))
        return result
    raise AssertionError("unreachable: the chain is never empty")
