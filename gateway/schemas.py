"""HTTP request and response bodies of the gateway API."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator

from tools.actions import Plan

# Text that reaches Postgres must not hold NUL (text and JSONB refuse it); names, no control characters.
NO_NUL = r"^[^\x00]*$"
PLAIN = r"^[^\x00-\x1f\x7f]+$"
EMAIL = r"^[^@\s\x00-\x1f\x7f]+@[^@\s\x00-\x1f\x7f]+$"


class ReviewOut(BaseModel):
    id: int
    email_id: int
    thread_id: str
    status: str
    reasons: list[str]
    payload: dict[str, Any] = Field(
        description="What the reviewer is shown: plan, reasons and history (the items the agent planned "
        "with: source, ref, summary, via; absent on reviews made before it was kept)"
    )
    payload_hash: str = Field(description="sha256 of payload.plan: the decision binds to it")
    created_at: datetime
    subject: str | None = None
    sender: str | None = None
    intent: str | None = Field(default=None, description="The intent the agent extracted (None if none)")


class ReviewDetail(ReviewOut):
    text: str | None = None
    verdict: dict[str, Any] | None = None
    extraction: dict[str, Any] | None = None
    trace_id: str | None = None


class DecisionIn(BaseModel):
    decision: Literal["approve", "reject"]
    payload_hash: str = Field(min_length=64, max_length=64, description="Hash of the payload you were shown")
    reason: str | None = Field(default=None, max_length=2000, pattern=NO_NUL)
    plan: Plan | None = Field(default=None, description="An edited plan to execute instead (approve only)")

    @model_validator(mode="after")
    def _storable(self) -> DecisionIn:
        if self.plan is not None and "\\u0000" in self.plan.model_dump_json():
            raise ValueError("the plan must not contain NUL characters")
        return self


class DecisionOut(BaseModel):
    review_id: int
    status: str
    executed_plan_hash: str | None
    job_id: int


class EmailOut(BaseModel):
    id: int
    subject: str | None
    sender: str | None
    status: str
    status_detail: str | None
    received_at: datetime
    trace_id: str | None


class Stats(BaseModel):
    emails: dict[str, int]
    pending_reviews: int
    queue: dict[str, int]


# --- auth ---


class LoginIn(BaseModel):
    email: str = Field(min_length=3, max_length=200, pattern=PLAIN)
    password: str = Field(min_length=1, max_length=1024)


class RefreshIn(BaseModel):
    refresh_token: str = Field(min_length=1, max_length=200)


class OidcIn(BaseModel):
    id_token: str = Field(min_length=1, max_length=16_384, description="An ID token from the OIDC provider")
    nonce: str | None = Field(default=None, max_length=200, description="The nonce sent to the provider")


class TokensOut(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int = Field(description="Seconds until the access token expires")
    refresh_token: str = Field(description="Opaque, single use: each refresh returns the next one")
    refresh_expires_in: int
    email: str
    role: str


class PrincipalOut(BaseModel):
    id: str
    kind: Literal["user", "key"]
    role: str | None
    scopes: list[str]
    name: str


class ErrorOut(BaseModel):
    detail: str


# --- admin: users and keys ---


class UserIn(BaseModel):
    email: str = Field(min_length=3, max_length=200, pattern=EMAIL)
    role: Literal["reviewer", "admin", "auditor"]
    password: str | None = Field(
        default=None, max_length=1024, description="Omit for an OIDC-only account (no password sign-in)"
    )


class UserPatch(BaseModel):
    role: Literal["reviewer", "admin", "auditor"] | None = None
    active: bool | None = Field(default=None, description="false disables the user and ends their sessions")
    password: str | None = Field(default=None, max_length=1024)


class UserOut(BaseModel):
    id: int
    email: str
    role: str
    active: bool
    has_password: bool
    created_at: datetime
    last_login_at: datetime | None


class KeyIn(BaseModel):
    name: str = Field(min_length=1, max_length=200, pattern=PLAIN)
    scopes: list[Literal["ingest", "review:read", "review:write", "emails:read", "stats:read", "admin"]] = (
        Field(min_length=1)
    )


class KeyOut(BaseModel):
    id: int
    name: str
    scopes: list[str]
    created_by: str
    created_at: datetime
    revoked_at: datetime | None


class KeyCreated(KeyOut):
    key: str = Field(description="The key itself: shown once, store it now")


# --- push ingestion ---


class IngestOut(BaseModel):
    email_id: int
    duplicate: bool
