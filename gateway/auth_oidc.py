"""Optional OIDC sign-in: validate an ID token from the configured provider (Authlib).

The dashboard (or any client) runs the authorization-code flow with the provider and sends the
ID token to ``POST /v1/auth/oidc``; the gateway validates it here (signature against the provider's
JWKS, ``iss``, ``aud`` = client id, ``exp``/``iat``, optional ``nonce``) and signs in the *existing*
active user with that e-mail. Roles stay in mailspine: nobody gets an account by having a token.
Keys are fetched from the issuer's discovery document on first use and re-fetched when a token
names an unknown key id (provider key rotation).
"""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass
from typing import Any

import httpx
from authlib.jose import JsonWebKey, JsonWebToken
from authlib.jose.errors import JoseError
from authlib.oidc.core import IDToken

from app.settings_auth import AuthSettings

LEEWAY_S = 30
_JWKS_TTL_S = 3600.0


class OidcError(Exception):
    """The ID token is not acceptable; the message is safe to show."""


@dataclass(frozen=True)
class OidcIdentity:
    issuer: str
    subject: str
    email: str


def validate_id_token(
    token: str,
    *,
    jwks: dict[str, Any],
    issuer: str,
    client_id: str,
    algorithms: list[str],
    email_claim: str = "email",
    nonce: str | None = None,
    now: int | None = None,
) -> OidcIdentity:
    if any(a.upper().startswith("HS") or a.lower() == "none" for a in algorithms):
        raise OidcError("only asymmetric algorithms are accepted for ID tokens")
    try:
        claims = JsonWebToken(algorithms).decode(
            token,
            JsonWebKey.import_key_set(jwks),
            claims_cls=IDToken,
            claims_options={"iss": {"essential": True, "value": issuer}, "aud": {"essential": True}},
            claims_params={"client_id": client_id, "nonce": nonce} if nonce else {"client_id": client_id},
        )
        claims.validate(now=now, leeway=LEEWAY_S)
    except (JoseError, ValueError) as exc:
        raise OidcError(f"invalid ID token ({type(exc).__name__})") from exc
    aud = claims["aud"]
    if client_id not in (aud if isinstance(aud, list) else [aud]):
        raise OidcError("invalid ID token (audience)")
    email = claims.get(email_claim)
    if not isinstance(email, str) or "@" not in email:
        raise OidcError(f"ID token has no {email_claim!r} claim")
    if claims.get("email_verified") is False:
        raise OidcError("the provider says this e-mail address is not verified")
    return OidcIdentity(issuer=issuer, subject=str(claims["sub"]), email=email.strip().lower())


def _kid(token: str) -> str | None:
    """The ``kid`` of a compact JWS header, without verifying anything (to pick a JWKS refresh)."""
    segment = token.split(".", 1)[0]
    try:
        header = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (ValueError, TypeError):
        return None
    kid = header.get("kid") if isinstance(header, dict) else None
    return str(kid) if kid else None


class OidcVerifier:
    """Validates ID tokens for one configured provider; ``jwks`` fixes the keys (tests, air-gapped)."""

    def __init__(self, settings: AuthSettings, *, jwks: dict[str, Any] | None = None) -> None:
        assert settings.oidc_issuer and settings.oidc_client_id, "OIDC is not configured"
        self.settings = settings
        self.issuer, self.client_id = settings.oidc_issuer, settings.oidc_client_id
        self._static = jwks is not None
        self._jwks: dict[str, Any] = jwks or {"keys": []}
        self._fetched_at = 0.0

    async def _refresh_keys(self) -> None:
        async with httpx.AsyncClient(timeout=10.0) as http:
            url = self.settings.oidc_jwks_url
            if not url:
                well_known = f"{self.issuer.rstrip('/')}/.well-known/openid-configuration"
                url = str((await http.get(well_known)).raise_for_status().json()["jwks_uri"])
            self._jwks = (await http.get(url)).raise_for_status().json()
        self._fetched_at = time.monotonic()

    async def verify(self, token: str, *, nonce: str | None = None) -> OidcIdentity:
        if not self._static:
            known = {k.get("kid") for k in self._jwks.get("keys", [])}
            stale = time.monotonic() - self._fetched_at > _JWKS_TTL_S
            if stale or _kid(token) not in known:
                try:
                    await self._refresh_keys()
                except (httpx.HTTPError, KeyError, ValueError) as exc:
                    raise OidcError(f"cannot fetch the provider's keys: {exc}") from exc
        return validate_id_token(
            token,
            jwks=self._jwks,
            issuer=self.issuer,
            client_id=self.client_id,
            algorithms=self.settings.oidc_allowed_algs,
            email_claim=self.settings.oidc_email_claim,
            nonce=nonce,
        )
