"""Tool settings (nested under ``Settings.tools``, env ``MAILSPINE_TOOLS__FIELD``).

Credentials are looked up by name through the secrets provider (``tools/secrets.py``); the names
each tool uses are listed by ``mailspine tools list`` and in docs/tools.md.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field, SecretStr, field_validator


class ToolRate(BaseModel):
    rate_per_s: float = Field(gt=0)  # tokens added per second, shared by all workers
    burst: int = Field(ge=1)  # bucket size


class ToolSettings(BaseModel):
    # Credentials from the environment, one variable per credential name:
    # MAILSPINE_TOOLS__CREDENTIALS__CRM_WRITE=pat-..., MAILSPINE_TOOLS__CREDENTIALS__CRM_READ=pat-...
    credentials: dict[str, SecretStr] = Field(default_factory=dict)
    # Credentials from files: one file per credential name in this directory (e.g. /run/secrets/crm_write).
    secrets_dir: Path | None = None
    # Where credentials come from, in order: "env", "file", or "package.module:Class" (a provider
    # of your own, e.g. for Vault: see docs/tools.md). Comma-separated.
    secrets_providers: str = "env,file"
    # Shared rate limits: on by default (one Postgres row per tool); per-tool overrides, e.g.
    # MAILSPINE_TOOLS__RATES='{"crm_upsert_contact": {"rate_per_s": 2, "burst": 5}}'.
    rate_limits: bool = True
    rates: dict[str, ToolRate] = Field(default_factory=dict)
    # Which tools each node may call, replacing the defaults of tools/registry.py per node, e.g.
    # MAILSPINE_TOOLS__BINDINGS='{"act": ["draft_reply"]}' (drafts only: no CRM writes, no sending).
    bindings: dict[str, list[str]] = Field(default_factory=dict)

    @field_validator("credentials")
    @classmethod
    def _lowercase_names(cls, value: dict[str, SecretStr]) -> dict[str, SecretStr]:
        return {name.lower(): secret for name, secret in value.items()}
