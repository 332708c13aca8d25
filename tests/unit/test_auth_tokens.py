"""Access tokens: round trip, and every way a token can be forged, tampered with or stale."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import jwt
import pytest

from app.settings_auth import AuthSettings
from gateway.auth_tokens import InvalidToken, issue_access_token, verify_access_token

SETTINGS = AuthSettings(jwt_secret="s" * 48)  # type: ignore[arg-type]


def _token(**overrides: object) -> str:
    token, _ = issue_access_token(SETTINGS, user_id=7, role="reviewer", session_id="abc123")
    if not overrides:
        return token
    claims = {**jwt.decode(token, options={"verify_signature": False}), **overrides}
    return jwt.encode({k: v for k, v in claims.items() if v is not None}, "s" * 48, algorithm="HS256")


def test_round_trip_carries_the_claims() -> None:
    token, issued = issue_access_token(SETTINGS, user_id=7, role="reviewer", session_id="abc123")
    claims = verify_access_token(SETTINGS, token)
    assert (claims.user_id, claims.role, claims.session_id, claims.jti) == (
        7,
        "reviewer",
        "abc123",
        issued.jti,
    )
    raw = jwt.decode(token, options={"verify_signature": False})
    assert raw["exp"] - raw["iat"] == 15 * 60 and raw["iss"] == "mailspine" and raw["sub"] == "7"
    assert jwt.get_unverified_header(token)["alg"] == "HS256"


def _b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def test_tampered_payload_with_the_old_signature_is_refused() -> None:
    header, _, signature = _token().split(".")
    forged_payload = _b64({**jwt.decode(_token(), options={"verify_signature": False}), "role": "admin"})
    with pytest.raises(InvalidToken):
        verify_access_token(SETTINGS, f"{header}.{forged_payload}.{signature}")


def test_changed_signature_is_refused() -> None:
    header, payload, signature = _token().split(".")
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
    with pytest.raises(InvalidToken):
        verify_access_token(SETTINGS, f"{header}.{payload}.{flipped}")


def test_alg_none_is_refused() -> None:
    claims = jwt.decode(_token(), options={"verify_signature": False})
    unsigned = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}."
    with pytest.raises(InvalidToken):
        verify_access_token(SETTINGS, unsigned)


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
def test_other_algorithms_and_wrong_secret_are_refused() -> None:
    claims = jwt.decode(_token(), options={"verify_signature": False})
    for token in [
        jwt.encode(claims, "s" * 48, algorithm="HS512"),  # right secret, algorithm not pinned
        jwt.encode(claims, "t" * 48, algorithm="HS256"),  # wrong secret
    ]:
        with pytest.raises(InvalidToken):
            verify_access_token(SETTINGS, token)


def test_expired_and_future_tokens_are_refused() -> None:
    now = datetime.now(UTC)
    expired, _ = issue_access_token(
        SETTINGS, user_id=1, role="admin", session_id="s", now=now - timedelta(hours=1)
    )
    with pytest.raises(InvalidToken, match="expired"):
        verify_access_token(SETTINGS, expired)
    future = _token(
        iat=int((now + timedelta(hours=1)).timestamp()), exp=int((now + timedelta(hours=2)).timestamp())
    )
    with pytest.raises(InvalidToken):
        verify_access_token(SETTINGS, future)


@pytest.mark.parametrize("claim", ["exp", "iat", "sub", "jti", "role", "sid", "iss", "typ"])
def test_every_claim_is_required(claim: str) -> None:
    with pytest.raises(InvalidToken):
        verify_access_token(SETTINGS, _token(**{claim: None}))


def test_wrong_issuer_type_or_subject_is_refused() -> None:
    for token in [_token(iss="someone-else"), _token(typ="refresh"), _token(sub="admin")]:
        with pytest.raises(InvalidToken):
            verify_access_token(SETTINGS, token)
