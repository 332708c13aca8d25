"""OIDC ID-token validation against a locally generated provider key (no network)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from typing import Any

import pytest
from authlib.jose import JsonWebKey, JsonWebToken

from app.settings_auth import AuthSettings
from gateway.auth_oidc import OidcError, OidcVerifier, validate_id_token

ISSUER, CLIENT = "https://id.example.com", "mailspine-dashboard"
PROVIDER = JsonWebKey.generate_key("RSA", 2048, is_private=True, options={"kid": "k1"})
OTHER = JsonWebKey.generate_key("RSA", 2048, is_private=True, options={"kid": "k1"})
JWKS = {"keys": [PROVIDER.as_dict(is_private=False)]}


def _claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "aud": CLIENT,
        "sub": "u-42",
        "iat": now,
        "exp": now + 300,
        "email": "Ana@Example.com",
    }
    return {k: v for k, v in {**claims, **overrides}.items() if v is not None}


def _sign(claims: dict[str, Any], key: Any = PROVIDER, alg: str = "RS256") -> str:
    token: bytes = JsonWebToken([alg]).encode({"alg": alg, "kid": "k1"}, claims, key)
    return token.decode()


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _validate(token: str, **kwargs: Any) -> Any:
    return validate_id_token(
        token, jwks=JWKS, issuer=ISSUER, client_id=CLIENT, algorithms=["RS256"], **kwargs
    )


def test_a_valid_token_yields_the_identity() -> None:
    identity = _validate(_sign(_claims(nonce="n1")), nonce="n1")
    assert (identity.issuer, identity.subject, identity.email) == (ISSUER, "u-42", "ana@example.com")
    assert _validate(_sign(_claims(aud=[CLIENT, "other"], azp=CLIENT))).email == "ana@example.com"


@pytest.mark.parametrize(
    "claims",
    [
        _claims(iss="https://evil.example.com"),
        _claims(aud="someone-else"),
        _claims(exp=int(time.time()) - 3600, iat=int(time.time()) - 7200),
        _claims(sub=None),
        _claims(email=None),
        _claims(email="not-an-address"),
        _claims(email_verified=False),
    ],
    ids=["issuer", "audience", "expired", "no-sub", "no-email", "bad-email", "unverified"],
)
def test_bad_claims_are_refused(claims: dict[str, Any]) -> None:
    with pytest.raises(OidcError):
        _validate(_sign(claims))


def test_wrong_key_none_and_symmetric_algorithms_are_refused() -> None:
    with pytest.raises(OidcError):
        _validate(_sign(_claims(), key=OTHER))  # same kid, another key
    header, payload, _ = _sign(_claims()).split(".")
    with pytest.raises(OidcError):
        _validate(f"{header}.{payload}.")
    # Key confusion: an HS256 token "signed" with the provider's public key must not pass.
    signing_input = f"{_b64({'alg': 'HS256', 'kid': 'k1'})}.{_b64(_claims())}"
    mac = hmac.new(PROVIDER.as_pem(is_private=False), signing_input.encode(), hashlib.sha256).digest()
    forged = f"{signing_input}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"
    with pytest.raises(OidcError):
        _validate(forged)
    with pytest.raises(OidcError, match="asymmetric"):
        validate_id_token(forged, jwks=JWKS, issuer=ISSUER, client_id=CLIENT, algorithms=["HS256"])


def test_nonce_must_match_when_given() -> None:
    with pytest.raises(OidcError):
        _validate(_sign(_claims(nonce="n1")), nonce="n2")
    with pytest.raises(OidcError):
        _validate(_sign(_claims()), nonce="n1")


def test_verifier_with_fixed_keys_uses_the_settings() -> None:
    settings = AuthSettings(oidc_issuer=ISSUER, oidc_client_id=CLIENT)
    verifier = OidcVerifier(settings, jwks=JWKS)
    assert asyncio.run(verifier.verify(_sign(_claims()))).email == "ana@example.com"
    with pytest.raises(OidcError):
        asyncio.run(verifier.verify(_sign(_claims(aud="x"))))
