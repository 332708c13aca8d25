"""Model-call resilience, budgets and prices (nested under ``Settings.llm``, env ``MAILSPINE_LLM__FIELD``).

Which provider and model to use stays at the top level (``MAILSPINE_MODEL_PROVIDER``,
``MAILSPINE_MODEL``, ``MAILSPINE_OPENAI_BASE_URL`` ...): those are the three variables a user sets.
Everything here has a default that works for a hosted API and for a local server alike.
"""

from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel, Field, model_validator


class Price(BaseModel):
    """USD per million tokens."""

    input: Decimal = Field(ge=0)
    output: Decimal = Field(ge=0)


# Published list prices (USD per 1M tokens) for a few common models; a fork adds its own with
# MAILSPINE_LLM__PRICES='{"my-model": {"input": 0.5, "output": 1.5}}' (merged over these). A model
# that is in neither costs 0 and the run records that it was unpriced.
DEFAULT_PRICES: dict[str, Price] = {
    "offline-fast": Price(input=Decimal(0), output=Decimal(0)),
    "offline-strong": Price(input=Decimal(0), output=Decimal(0)),
    "gpt-4o-mini": Price(input=Decimal("0.15"), output=Decimal("0.60")),
    "gpt-4o": Price(input=Decimal("2.50"), output=Decimal("10.00")),
    "gpt-4.1-mini": Price(input=Decimal("0.40"), output=Decimal("1.60")),
    "gpt-4.1": Price(input=Decimal("2.00"), output=Decimal("8.00")),
    "claude-3-5-haiku-latest": Price(input=Decimal("0.80"), output=Decimal("4.00")),
    "claude-sonnet-4-0": Price(input=Decimal("3.00"), output=Decimal("15.00")),
}


class LlmSettings(BaseModel):
    # --- one call ---
    max_attempts: int = Field(default=3, ge=1, le=10)  # per call, on 429 / 5xx / timeout / bad JSON
    retry_base_s: float = Field(default=1.0, ge=0)  # backoff: base * 2**attempt, plus jitter
    retry_max_wait_s: float = Field(default=30.0, ge=0)  # cap, also on a server's Retry-After
    repair_attempts: int = Field(default=1, ge=0, le=3)  # schema-invalid output: retries with the error
    # --- circuit breaker, one per provider endpoint and process ---
    circuit_failure_threshold: int = Field(default=5, ge=1)  # consecutive failed calls that open it
    circuit_reset_s: float = Field(default=60.0, gt=0)  # open this long, then one probe call
    # --- fallback: another model of the same provider, used when the primary is unavailable ---
    fallback_model: str | None = None
    # --- budgets (per email unless said otherwise); exceeding one sends the email to review ---
    email_max_tokens: int = Field(default=50_000, ge=1)
    email_max_cost_usd: Decimal = Field(default=Decimal("0.50"), ge=0)
    email_max_model_calls: int = Field(default=12, ge=1)  # the step limit: calls incl. retries, repairs
    daily_max_cost_usd: Decimal | None = Field(default=None, ge=0)  # all emails, UTC day; None: no cap
    prices: dict[str, Price] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _merge_prices(self) -> LlmSettings:
        self.prices = {**DEFAULT_PRICES, **self.prices}
        return self

    def price(self, model: str) -> Price | None:
        return self.prices.get(model)
