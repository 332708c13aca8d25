"""Auth settings: unsafe JWT secrets are refused outside dev, OIDC configuration is checked."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from pydantic import ValidationError

from app.errors import ConfigurationError
from app.settings import Settings
from app.settings_auth import DEV_JWT_SECRET, AuthSettings

KEYS = {
    "gateway_api_key": "a" * 32,
    "reviewer_api_key": "b" * 32,
    "database_url": "postgresql://x/y",
    "pii": {"vault_key": Fernet.generate_key().decode()},
}


def test_insecure_defaults_names_the_variable() -> None:
    assert AuthSettings().insecure_defaults() == ["MAILSPINE_AUTH__JWT_SECRET (random, at least 32 bytes)"]
    assert AuthSettings(jwt_secret="short").insecure_defaults() != []  # type: ignore[arg-type]
    assert AuthSettings(jwt_secret="é" * 16).insecure_defaults() == []  # type: ignore[arg-type]  # 32 bytes
    assert AuthSettings(jwt_secret="x" * 32).insecure_defaults() == []  # type: ignore[arg-type]


def test_prod_refuses_default_missing_or_short_jwt_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    # Wired in Settings._refuse_default_secrets: bad += self.auth.insecure_defaults()
    monkeypatch.delenv("DATABASE_URL", raising=False)
    with pytest.raises(ConfigurationError, match="MAILSPINE_AUTH__JWT_SECRET"):
        Settings(env="prod", _env_file=None, **KEYS)  # type: ignore[arg-type]
    for weak in (DEV_JWT_SECRET, "", "x" * 31):
        with pytest.raises(ConfigurationError, match="MAILSPINE_AUTH__JWT_SECRET"):
            Settings(env="prod", auth={"jwt_secret": weak}, _env_file=None, **KEYS)  # type: ignore[arg-type]
    ok = Settings(env="prod", auth={"jwt_secret": "k" * 32}, _env_file=None, **KEYS)  # type: ignore[arg-type]
    assert ok.auth.jwt_secret.get_secret_value() == "k" * 32


def test_dev_and_test_keep_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    for env in ("dev", "test"):
        assert Settings(env=env, _env_file=None).auth.jwt_secret.get_secret_value() == DEV_JWT_SECRET  # type: ignore[call-arg]


def test_nested_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAILSPINE_AUTH__ACCESS_TOKEN_TTL_S", "300")
    monkeypatch.setenv("MAILSPINE_AUTH__LOCKOUT_THRESHOLD", "3")
    monkeypatch.setenv("MAILSPINE_AUTH__MAX_INGEST_BYTES", "1048576")
    settings = Settings(env="test", _env_file=None)  # type: ignore[call-arg]
    assert (settings.auth.access_token_ttl_s, settings.auth.lockout_threshold) == (300, 3)
    assert settings.auth.max_ingest_bytes == 1048576 and settings.auth.max_request_bytes == 1024 * 1024


def test_defaults() -> None:
    auth = AuthSettings()
    assert (auth.access_token_ttl_s, auth.refresh_token_ttl_s) == (900, 43200)
    assert (auth.lockout_threshold, auth.lockout_duration_s) == (5, 900)
    assert auth.rate_limit_per_minute == 120
    assert (auth.max_request_bytes, auth.max_ingest_bytes) == (1024 * 1024, 30 * 1024 * 1024)
    assert not auth.oidc_enabled and not auth.bootstrap_keys_outside_dev


def test_oidc_configuration_is_checked() -> None:
    with pytest.raises(ValidationError, match="OIDC_CLIENT_ID"):
        AuthSettings(oidc_issuer="https://id.example.com")
    for algs in (["HS256"], ["none"], ["RS256", "hs512"]):
        with pytest.raises(ValidationError, match="asymmetric"):
            AuthSettings(
                oidc_issuer="https://id.example.com", oidc_client_id="mailspine", oidc_allowed_algs=algs
            )
    assert AuthSettings(oidc_issuer="https://id.example.com", oidc_client_id="mailspine").oidc_enabled
