"""The one settings object. Nothing else in mailspine reads ``os.environ``.

Every field is documented in ``.env.example`` and the README's settings table.
"""

from __future__ import annotations

from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, BaseModel, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.errors import ConfigurationError
from app.settings_auth import AuthSettings
from app.settings_guard import GuardSettings
from app.settings_history import HistorySettings
from app.settings_llm import LlmSettings
from app.settings_online import OnlineSettings
from app.settings_pii import PiiSettings
from app.settings_tools import ToolSettings

REPO_ROOT = Path(__file__).resolve().parent.parent

# Development defaults. They make the demo run with zero configuration and are refused
# outside ``MAILSPINE_ENV=dev`` / ``test`` (see ``_refuse_default_secrets``).
DEV_GATEWAY_API_KEY = "dev-gateway-key-change-me"
DEV_REVIEWER_API_KEY = "dev-reviewer-key-change-me"


MailSecurity = Literal["ssl", "starttls", "none"]


class MailCredential(BaseModel):
    """One of: a password, a file holding it, or an OAuth2 (XOAUTH2) access-token source."""

    username: str
    password: SecretStr | None = None
    password_file: Path | None = None
    # XOAUTH2 (Gmail, Microsoft 365): a file an external refresher keeps current, or a command
    # that prints a fresh access token (like msmtp's passwordeval).
    oauth2_token_file: Path | None = None
    oauth2_token_command: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> MailCredential:
        sources = [self.password, self.password_file, self.oauth2_token_file, self.oauth2_token_command]
        if sum(x is not None for x in sources) != 1:
            raise ValueError(
                f"account {self.username!r}: set exactly one of password, password_file, "
                "oauth2_token_file, oauth2_token_command"
            )
        return self


class ImapAccount(MailCredential):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,62}$", description="stable id used in the database")
    host: str
    port: int = 993
    security: MailSecurity = "ssl"
    tls_verify: bool = True
    ca_file: Path | None = None
    folders: list[str] = Field(default_factory=lambda: ["INBOX"], min_length=1)
    sent_folder: str = "Sent"
    idle: bool = True  # falls back to polling when the server lacks IDLE
    poll_interval_s: float = 30.0
    idle_refresh_s: float = 600.0  # re-issue IDLE well inside the 29-minute limit of RFC 2177
    fetch_batch: int = 50
    timeout_s: float = 30.0


class SmtpAccount(MailCredential):
    host: str
    port: int = 587
    security: MailSecurity = "starttls"
    tls_verify: bool = True
    ca_file: Path | None = None
    from_address: str
    # Name of the IMAP account whose sent folder receives a copy (and is searched before a retry).
    sent_copy_account: str | None = None
    timeout_s: float = 30.0


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="MAILSPINE_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        env_nested_delimiter="__",
    )

    env: Literal["dev", "test", "prod"] = "dev"
    log_level: str = "INFO"
    var_dir: Path = REPO_ROOT / "var"

    # --- data plane ---
    database_url: str | None = Field(
        default=None, validation_alias=AliasChoices("DATABASE_URL", "MAILSPINE_DATABASE_URL")
    )
    embedded_db_name: str = "mailspine"

    # --- gateway ---
    api_host: str = "127.0.0.1"
    api_port: int = 8080
    # Service key (worker/ingest) and reviewer key; real per-user auth arrives with the gateway issue.
    gateway_api_key: SecretStr = SecretStr(DEV_GATEWAY_API_KEY)
    reviewer_api_key: SecretStr = SecretStr(DEV_REVIEWER_API_KEY)
    max_email_bytes: int = 25 * 1024 * 1024

    # --- mailbox (embedded demo mailbox: a directory of .eml files or a Maildir) ---
    mailbox_dir: Path = REPO_ROOT / "infra" / "demo" / "mailbox"
    mailbox_account: str = "demo"
    # Real mailboxes: JSON, e.g. MAILSPINE_IMAP_ACCOUNTS='[{"name": "support", "host": "imap.example.com",
    # "username": "support@example.com", "password_file": "/run/secrets/imap"}]'
    imap_accounts: list[ImapAccount] = Field(default_factory=list)
    # Outgoing mail: JSON in MAILSPINE_SMTP, or MAILSPINE_SMTP__HOST=... style variables. Unset: drafts only.
    smtp: SmtpAccount | None = None

    # --- tools: the CRM adapter (HubSpot v3 subset) ---
    crm_base_url: str = ""  # empty: the reference CRM at http://{crm_host}:{crm_port}
    crm_token: SecretStr | None = None
    crm_timeout_s: float = 10.0
    crm_host: str = "127.0.0.1"
    crm_port: int = 8090
    tools: ToolSettings = Field(default_factory=ToolSettings)  # MAILSPINE_TOOLS__*: credentials, rates

    # --- runtime: models and policy ---
    # A real provider takes three variables, e.g. MAILSPINE_MODEL_PROVIDER=openai,
    # MAILSPINE_OPENAI_API_KEY (or _BASE_URL for a local server) and MAILSPINE_MODEL.
    model_provider: Literal["offline", "openai", "anthropic"] = "offline"
    model: str | None = None  # one model for both tiers; model_fast / model_strong override it
    model_fast: str | None = None  # extraction and routing
    model_strong: str | None = None  # planning and drafting
    openai_base_url: str | None = None  # any OpenAI-compatible server: vLLM, Ollama, llama.cpp, LM Studio
    openai_api_key: SecretStr | None = None
    anthropic_api_key: SecretStr | None = None
    anthropic_base_url: str | None = None
    model_timeout_s: float = Field(default=60.0, gt=0)  # per call, before a retry
    llm: LlmSettings = Field(default_factory=LlmSettings)  # MAILSPINE_LLM__*: retries, breaker, budgets
    review_refund_threshold: Decimal = Decimal("100")
    review_min_confidence: float = 0.6

    # --- gateway security (nested: MAILSPINE_AUTH__JWT_SECRET=..., see .env.example) ---
    auth: AuthSettings = Field(default_factory=AuthSettings)
    guard: GuardSettings = Field(default_factory=GuardSettings)
    pii: PiiSettings = Field(default_factory=PiiSettings)
    online: OnlineSettings = Field(default_factory=OnlineSettings)  # MAILSPINE_ONLINE__*: evals, shadows
    history: HistorySettings = Field(default_factory=HistorySettings)  # MAILSPINE_HISTORY__*: history tools

    # --- worker ---
    worker_concurrency: int = 4
    # Postgres connections one worker's two pools (SQLAlchemy, checkpoints) may hold together.
    # 0: sized for the concurrency (about 2 × concurrency + 10). N: at most N; a job that needs a
    # connection while all N are busy waits for one (backpressure) instead of opening another
    # (app/services.pool_sizes). The queue's own 3 and one per polled account come on top.
    worker_db_connections: int = Field(default=0, ge=0)
    # Each worker's /livez and /readyz (app/worker_health.py). 0: off; N workers on one host need N ports.
    worker_health_host: str = "127.0.0.1"
    worker_health_port: int = Field(default=0, ge=0, le=65535)
    queue_name: str = "mailspine"
    # A finished email's thread keeps every checkpoint this long (inspection, debugging), then the
    # hourly prune keeps only its final one (agent/retention.py). 0: prune at the next run.
    checkpoint_retention_s: float = Field(default=86400.0, ge=0)

    # --- dashboard ---
    dashboard_port: int = 8501
    gateway_url: str = ""  # empty: http://{api_host}:{api_port}
    review_sla_hours: float = Field(default=4.0, gt=0)  # the review queue flags older pending reviews
    # The baseline (and through it the dataset and tolerances) of the prompt console's eval gate.
    eval_baseline: Path = REPO_ROOT / "evals" / "baseline.json"

    # --- telemetry ---
    otel_service_name: str = "mailspine"
    otel_exporter_otlp_endpoint: str | None = Field(
        default=None, validation_alias=AliasChoices("OTEL_EXPORTER_OTLP_ENDPOINT")
    )

    def imap_account(self, name: str) -> ImapAccount:
        for account in self.imap_accounts:
            if account.name == name:
                return account
        known = ", ".join(a.name for a in self.imap_accounts) or "none configured"
        raise ConfigurationError(f"no IMAP account named {name!r} ({known}); see MAILSPINE_IMAP_ACCOUNTS")

    @model_validator(mode="after")
    def _derive_models(self) -> Settings:
        if self.model_provider == "offline":
            self.model_fast = self.model_fast or self.model or "offline-fast"
            self.model_strong = self.model_strong or self.model or "offline-strong"
            return self
        self.model_fast = self.model_fast or self.model
        self.model_strong = self.model_strong or self.model or self.model_fast
        if not self.model_fast:
            raise ConfigurationError(
                f"MAILSPINE_MODEL_PROVIDER={self.model_provider} needs a model name: set MAILSPINE_MODEL "
                "(or MAILSPINE_MODEL_FAST and MAILSPINE_MODEL_STRONG)"
            )
        return self

    @model_validator(mode="after")
    def _derive_urls(self) -> Settings:
        self.crm_base_url = self.crm_base_url or f"http://{self.crm_host}:{self.crm_port}"
        self.gateway_url = self.gateway_url or f"http://{self.api_host}:{self.api_port}"
        return self

    @model_validator(mode="after")
    def _refuse_default_secrets(self) -> Settings:
        if self.env in ("dev", "test"):
            return self
        defaults = {
            "MAILSPINE_GATEWAY_API_KEY": (self.gateway_api_key, DEV_GATEWAY_API_KEY),
            "MAILSPINE_REVIEWER_API_KEY": (self.reviewer_api_key, DEV_REVIEWER_API_KEY),
        }
        bad = [name for name, (value, dev) in defaults.items() if value.get_secret_value() in ("", dev)]
        bad += self.pii.insecure_defaults()
        bad += self.auth.insecure_defaults()
        if bad:
            raise ConfigurationError(
                f"refusing to start with MAILSPINE_ENV={self.env}: set {', '.join(bad)} "
                "to secrets of your own (the defaults are for dev only)"
            )
        if self.database_url is None:
            raise ConfigurationError(
                f"MAILSPINE_ENV={self.env} needs DATABASE_URL (embedded Postgres is dev-only)"
            )
        return self


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
