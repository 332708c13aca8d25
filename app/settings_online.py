"""Online evaluation and shadow runs (nested under ``Settings.online``, env ``MAILSPINE_ONLINE__FIELD``).

Each field is documented, with its variable, in ``docs/online-evals.md`` and ``.env.example``.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, Field, field_validator

# The sample rate when MAILSPINE_ONLINE__SAMPLE_RATE is unset: 0.2 of finished runs in dev and
# prod; 0 under MAILSPINE_ENV=test, so a test suite scores only the runs it asks for.
DEFAULT_SAMPLE_RATE = 0.2
_CANDIDATE = re.compile(r"^[a-z][a-z0-9_-]*@(?:staging|\d+(?:\.\d+)*(?:-draft\.\d+)?)$")

# Rolling-mean thresholds per score name; a name not listed has no alarm.
DEFAULT_THRESHOLDS: dict[str, float] = {
    "schema_valid": 0.99,
    "policy_consistent": 0.99,
    "reply_no_foreign_data": 0.99,
    "reply_language": 0.8,
    "judge": 0.6,
    "review": 0.6,
    "crm_write": 0.95,
}


class OnlineSettings(BaseModel):
    enabled: bool = True  # off: nothing is scored and no shadow run is started
    # Share of finished runs scored by the rule checks (and the judge), picked by a hash of the
    # thread id, so the same email is always in or out. None: DEFAULT_SAMPLE_RATE (0 under env=test).
    sample_rate: float | None = Field(default=None, ge=0.0, le=1.0)
    window: int = Field(default=50, ge=1, le=10_000)  # rolling mean over the last N scores of a name
    # The alarm needs this many scores in the window before it can be raised (a few early misses
    # are not drift).
    min_scores: int = Field(default=10, ge=1)
    thresholds: dict[str, float] = Field(default_factory=dict)  # merged over DEFAULT_THRESHOLDS
    judge_enabled: bool = True  # the LLM judge; it never runs with the offline model (recorded as skipped)
    # Order ids in a reply that appear nowhere in the email or its thread count as another
    # customer's data. The default matches ids such as NW-48213.
    order_id_pattern: str = r"\b[A-Z]{2,5}-\d{4,10}\b"
    # Shadow runs: a candidate prompt version run on a sample of live traffic with side effects
    # disabled: name@version (a file version or a registry draft, e.g. plan@1.1.1-draft.1), or
    # name@staging for the version the registry's staging label points to. None: no shadow runs.
    shadow_candidate: str | None = None
    shadow_sample_rate: float = Field(default=0.0, ge=0.0, le=1.0)

    @field_validator("thresholds")
    @classmethod
    def _merge_thresholds(cls, value: dict[str, float]) -> dict[str, float]:
        bad = {name: t for name, t in value.items() if not 0.0 <= t <= 1.0}
        if bad:
            raise ValueError(f"online thresholds must be between 0 and 1: {bad}")
        return {**DEFAULT_THRESHOLDS, **value}

    @field_validator("shadow_candidate")
    @classmethod
    def _candidate_form(cls, value: str | None) -> str | None:
        if value is not None and not _CANDIDATE.match(value.strip()):
            raise ValueError(
                f"shadow_candidate takes name@version or name@staging, e.g. plan@1.1.0 (got {value!r})"
            )
        return value.strip() if value else None

    @field_validator("order_id_pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"order_id_pattern is not a regular expression: {exc}") from exc
        return value

    def rate(self, env: str) -> float:
        """The sample rate in effect for ``MAILSPINE_ENV=env``."""
        if self.sample_rate is not None:
            return self.sample_rate
        return 0.0 if env == "test" else DEFAULT_SAMPLE_RATE

    def threshold(self, name: str) -> float | None:
        return self.thresholds.get(name, DEFAULT_THRESHOLDS.get(name))
