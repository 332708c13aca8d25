"""Secrets providers: environment (through Settings), files, a provider of your own, and scoping."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from app.errors import ConfigurationError
from app.settings import Settings, SmtpAccount
from app.settings_history import HistorySettings
from app.settings_tools import ToolSettings
from tools.registry import tool_credential
from tools.secrets import ChainSecrets, EnvSecrets, FileSecrets, VaultSecrets, build_provider, smtp_account


def settings(**fields: object) -> Settings:
    return Settings(env="test", _env_file=None, **fields)  # type: ignore[arg-type]


class DictSecrets:
    """A provider of one's own, named by import path in MAILSPINE_TOOLS__SECRETS_PROVIDERS."""

    def __init__(self, settings: Settings) -> None:
        self.values = {"crm_read": SecretStr("from-custom")}

    def get(self, name: str) -> SecretStr | None:
        return self.values.get(name)


def test_environment_variables_name_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAILSPINE_TOOLS__CREDENTIALS__CRM_WRITE", "w-token")
    monkeypatch.setenv("MAILSPINE_TOOLS__CREDENTIALS__CRM_READ", "r-token")
    provider = build_provider(settings())
    assert provider.get("crm_write") == SecretStr("w-token")
    assert provider.get("crm_read") == SecretStr("r-token")
    assert provider.get("smtp") is None


def test_crm_token_stays_the_fallback_of_the_write_credential_only() -> None:
    provider = EnvSecrets(settings(crm_token="legacy"))
    assert provider.get("crm_write") == SecretStr("legacy")
    assert provider.get("crm_read") is None
    tools = ToolSettings(credentials={"crm_write": SecretStr("new")})
    assert EnvSecrets(settings(crm_token="legacy", tools=tools)).get("crm_write") == SecretStr("new")


def test_the_history_read_token_is_the_fallback_of_the_read_credential() -> None:
    legacy = settings(history=HistorySettings(crm_read_token=SecretStr("history-read")))
    assert EnvSecrets(legacy).get("crm_read") == SecretStr("history-read")
    assert EnvSecrets(legacy).get("crm_write") is None
    tools = ToolSettings(credentials={"crm_read": SecretStr("new")})
    newer = settings(history=HistorySettings(crm_read_token=SecretStr("history-read")), tools=tools)
    assert EnvSecrets(newer).get("crm_read") == SecretStr("new")


def test_each_tool_gets_its_own_credential() -> None:
    tools = ToolSettings(credentials={"crm_write": SecretStr("w"), "crm_read": SecretStr("r")})
    provider = build_provider(settings(tools=tools))
    assert tool_credential(provider, "crm_upsert_contact") == SecretStr("w")
    assert tool_credential(provider, "crm_add_note") == SecretStr("w")
    assert tool_credential(provider, "crm_find_contact") == SecretStr("r")
    assert tool_credential(provider, "draft_reply") is None  # needs none


def test_files_hold_one_credential_each(tmp_path: Path) -> None:
    (tmp_path / "crm_write").write_text("file-token\n")
    (tmp_path / "empty").write_text("\n")
    files = FileSecrets(tmp_path)
    assert files.get("crm_write") == SecretStr("file-token")
    assert files.get("crm_read") is None
    assert files.get("empty") is None
    with pytest.raises(ConfigurationError, match="invalid credential name"):
        files.get("../etc/passwd")


def test_providers_are_asked_in_the_configured_order(tmp_path: Path) -> None:
    (tmp_path / "crm_write").write_text("from-file")
    (tmp_path / "crm_read").write_text("from-file")
    env_first = ToolSettings(credentials={"crm_write": SecretStr("from-env")}, secrets_dir=tmp_path)
    provider = build_provider(settings(tools=env_first))
    assert provider.get("crm_write") == SecretStr("from-env")
    assert provider.get("crm_read") == SecretStr("from-file")
    files_first = env_first.model_copy(update={"secrets_providers": "file,env"})
    assert build_provider(settings(tools=files_first)).get("crm_write") == SecretStr("from-file")


def test_a_provider_of_your_own_is_loaded_by_import_path() -> None:
    tools = ToolSettings(secrets_providers=f"{__name__}:DictSecrets,env")
    provider = build_provider(settings(tools=tools))
    assert isinstance(provider, ChainSecrets)
    assert provider.get("crm_read") == SecretStr("from-custom")
    with pytest.raises(ConfigurationError, match="cannot load"):
        build_provider(settings(tools=ToolSettings(secrets_providers="nowhere.module:Nothing")))
    with pytest.raises(ConfigurationError, match="unknown secrets provider"):
        build_provider(settings(tools=ToolSettings(secrets_providers="vault")))


def test_the_vault_seam_refuses_to_pretend() -> None:
    with pytest.raises(ConfigurationError, match="template"):
        VaultSecrets(settings())
    with pytest.raises(ConfigurationError, match="template"):
        build_provider(settings(tools=ToolSettings(secrets_providers="tools.secrets:VaultSecrets")))


def test_an_smtp_credential_replaces_the_configured_password() -> None:
    account = SmtpAccount(host="h", username="u", password_file=Path("/nope"), from_address="a@b.test")
    base = settings(smtp=account)
    assert smtp_account(base, build_provider(base)) == account
    tools = ToolSettings(credentials={"smtp": SecretStr("pw")})
    replaced = smtp_account(base, build_provider(settings(tools=tools)))
    assert replaced is not None and replaced.password == SecretStr("pw") and replaced.password_file is None


def test_secrets_never_show_in_reprs() -> None:
    tools = ToolSettings(credentials={"crm_write": SecretStr("s3cr3t-value")})
    assert "s3cr3t-value" not in repr(settings(tools=tools))
    assert "s3cr3t-value" not in repr(build_provider(settings(tools=tools)))
