"""Settings for the auth part of the gateway (nested under `Settings.auth`, env `MAILSPINE_AUTH__FIELD`).

Every field is listed with its variable in ``docs/security.md``.
"""

from __future__ import annotations

from pydantic import BaseModel, Field, SecretStr, model_validator

# Development default, refused outside dev/test (``insecure_defaults``, wired into ``Settings``).
DEV_JWT_SECRET = "dev-jwt-secret-change-me-not-for-production"
MIN_SECRET_BYTES = 32
MIB = 1024 * 1024


class AuthSettings(BaseModel):
    # --- sessions: HS256 access tokens plus opaque, rotated refresh tokens ---
    jwt_secret: SecretStr = SecretStr(DEV_JWT_SECRET)
    jwt_issuer: str = "mailspine"
    access_token_ttl_s: int = Field(default=15 * 60, ge=30, le=24 * 3600)
    refresh_token_ttl_s: int = Field(default=12 * 3600, ge=60)
    password_min_length: int = Field(default=12, ge=8)

    # --- login throttling and lockout (recorded in the database, so it holds across processes) ---
    lockout_threshold: int = Field(default=5, ge=1)  # failures per account within the window
    ip_lockout_threshold: int = Field(default=20, ge=1)  # failures per client IP within the window
    lockout_window_s: int = Field(default=15 * 60, ge=1)
    lockout_duration_s: int = Field(default=15 * 60, ge=1)

    # --- rate limits (in-process token buckets: per process, not per cluster) ---
    rate_limit_per_minute: int = Field(default=120, ge=1)  # per principal, API routes
    ingest_rate_limit_per_minute: int = Field(default=1200, ge=1)  # per principal, POST /v1/messages
    anonymous_rate_limit_per_minute: int = Field(default=60, ge=1)  # per IP: no or invalid credentials
    login_rate_limit_per_minute: int = Field(default=10, ge=1)  # per IP: login, refresh, OIDC exchange

    # --- request bodies (413 before they are read in full) ---
    max_request_bytes: int = Field(default=1 * MIB, ge=1024)
    max_ingest_bytes: int = Field(default=30 * MIB, ge=1024)

    # The static MAILSPINE_REVIEWER_API_KEY / MAILSPINE_GATEWAY_API_KEY keep working in dev and test.
    # Elsewhere they are ignored unless this is set (a migration aid; prefer `mailspine keys create`).
    bootstrap_keys_outside_dev: bool = False

    # --- optional OIDC sign-in (an ID token from your provider exchanged for mailspine tokens) ---
    oidc_issuer: str | None = None  # e.g. https://accounts.example.com; enables POST /v1/auth/oidc
    oidc_client_id: str | None = None  # the ID token's expected audience
    oidc_client_secret: SecretStr | None = None  # for the dashboard's authorization-code flow
    oidc_jwks_url: str | None = None  # default: jwks_uri from the issuer's discovery document
    oidc_email_claim: str = "email"
    oidc_allowed_algs: list[str] = Field(default_factory=lambda: ["RS256", "ES256"])

    @model_validator(mode="after")
    def _oidc_complete(self) -> AuthSettings:
        if self.oidc_issuer and not self.oidc_client_id:
            raise ValueError("MAILSPINE_AUTH__OIDC_ISSUER needs MAILSPINE_AUTH__OIDC_CLIENT_ID")
        if any(a.lower() == "none" or a.upper().startswith("HS") for a in self.oidc_allowed_algs):
            raise ValueError(
                "MAILSPINE_AUTH__OIDC_ALLOWED_ALGS: asymmetric algorithms only (RS*, PS*, ES*, EdDSA)"
            )
        return self

    @property
    def oidc_enabled(self) -> bool:
        return bool(self.oidc_issuer and self.oidc_client_id)

    def insecure_defaults(self) -> list[str]:
        """Variables still at a development default or too weak to run outside dev/test."""
        secret = self.jwt_secret.get_secret_value()
        if secret == DEV_JWT_SECRET or len(secret.encode()) < MIN_SECRET_BYTES:
            return [f"MAILSPINE_AUTH__JWT_SECRET (random, at least {MIN_SECRET_BYTES} bytes)"]
        return []
