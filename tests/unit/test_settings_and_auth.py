from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from fastapi.routing import APIRoute

from app.errors import ConfigurationError
from app.settings import Settings
from app.telemetry import _safe_attributes
from gateway.api import create_app
from gateway.auth import authenticate

PUBLIC = {"/health", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}


def test_default_secrets_refused_outside_dev(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    with pytest.raises(ConfigurationError, match="MAILSPINE_GATEWAY_API_KEY"):
        Settings(env="prod", database_url="postgresql://x/y", _env_file=None)  # type: ignore[call-arg]
    with pytest.raises(ConfigurationError, match="needs DATABASE_URL"):
        Settings(
            env="prod",
            gateway_api_key="a" * 32,
            reviewer_api_key="b" * 32,
            pii={"vault_key": Fernet.generate_key().decode()},
            auth={"jwt_secret": "c" * 32},
            _env_file=None,
        )  # type: ignore[call-arg]
    ok = Settings(
        env="prod",
        database_url="postgresql://x/y",
        gateway_api_key="a" * 32,  # type: ignore[call-arg]
        reviewer_api_key="b" * 32,
        pii={"vault_key": Fernet.generate_key().decode()},
        auth={"jwt_secret": "c" * 32},
        _env_file=None,
    )
    assert ok.env == "prod"
    with pytest.raises(ConfigurationError, match="MAILSPINE_PII__VAULT_KEY"):
        Settings(
            env="prod",
            database_url="postgresql://x/y",
            gateway_api_key="a" * 32,  # type: ignore[call-arg]
            reviewer_api_key="b" * 32,
            _env_file=None,
        )


def _depends_on_auth(dependant) -> bool:  # type: ignore[no-untyped-def]
    return any(d.call is authenticate or _depends_on_auth(d) for d in dependant.dependencies)


def test_every_route_but_health_requires_authentication() -> None:
    app = create_app(settings=Settings(env="test", _env_file=None), database_url="postgresql://unused/x")  # type: ignore[call-arg]
    routes = [r for r in app.routes if isinstance(r, APIRoute)]
    assert len(routes) >= 5
    open_routes = [r.path for r in routes if r.path not in PUBLIC and not _depends_on_auth(r.dependant)]
    assert open_routes == []


def test_span_attributes_drop_message_content_and_clip_long_values() -> None:
    attrs = _safe_attributes({"gen_ai.input.messages": "secret body", "a": "x" * 1000, "n": 3})
    assert "gen_ai.input.messages" not in attrs
    assert len(attrs["a"]) == 257 and attrs["n"] == 3
