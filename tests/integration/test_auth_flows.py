"""Sign-in, sessions, keys and limits against the real app (in-process ASGI) and a real Postgres.

The helpers at the top are shared by the other ``test_auth_*`` / push / schemathesis modules.
"""

from __future__ import annotations

import asyncio
import secrets
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
import psycopg
import pytest
from authlib.jose import JsonWebKey, JsonWebToken
from sqlalchemy import update

from app.db import Database, libpq_url
from app.models_auth import User
from app.repo import users as users_repo
from app.settings import DEV_GATEWAY_API_KEY, DEV_REVIEWER_API_KEY, Settings
from app.settings_auth import AuthSettings
from gateway import auth_accounts, auth_sessions
from gateway.api import create_app
from gateway.auth_oidc import OidcVerifier

pytestmark = pytest.mark.integration

PASSWORD = "correct horse battery staple"
NO_LIMITS = {
    "rate_limit_per_minute": 100_000,
    "ingest_rate_limit_per_minute": 100_000,
    "anonymous_rate_limit_per_minute": 100_000,
    "login_rate_limit_per_minute": 100_000,
}


def auth_settings(base: Settings, **auth: Any) -> Settings:
    """``base`` with its auth settings replaced (rate limits out of the way unless given)."""
    return base.model_copy(update={"auth": AuthSettings(**{**NO_LIMITS, **auth})})


def random_ip() -> str:
    """A client address of its own, so the per-IP limits and lockouts of one test spare the others."""
    return f"10.{secrets.randbelow(256)}.{secrets.randbelow(256)}.{secrets.randbelow(254) + 1}"


@asynccontextmanager
async def gateway(
    settings: Settings, database_url: str, *, ip: str | None = None
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings=settings, database_url=database_url)
    transport = httpx.ASGITransport(app=app, client=(ip or random_ip(), 40000))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as client,
    ):
        client.app = app  # type: ignore[attr-defined]
        yield client


async def make_user(
    db: Database, role: str, *, password: str | None = PASSWORD, email: str | None = None
) -> str:
    email = email or f"{role}-{uuid.uuid4().hex[:10]}@mailspine.test"
    async with db.transaction() as session:
        await auth_accounts.create_user(
            session, AuthSettings(), email=email, role=role, password=password, actor="test"
        )
    return email


async def make_key(db: Database, *scopes: str) -> str:
    async with db.transaction() as session:
        _, key = await auth_accounts.create_key(session, name="test", scopes=list(scopes), actor="test")
    return key


async def login(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> dict[str, Any]:
    answer = await client.post("/v1/auth/login", json={"email": email, "password": password})
    assert answer.status_code == 200, answer.text
    tokens: dict[str, Any] = answer.json()
    return tokens


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def audit_rows(database_url: str, action: str, subject_id: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(libpq_url(database_url)) as conn:
        return conn.execute(
            "SELECT actor, details FROM audit_log WHERE action = %s AND subject_id = %s ORDER BY id",
            (action, subject_id),
        ).fetchall()


# --- sessions ---


async def test_login_me_logout(test_settings: Settings, database_url: str, db: Database) -> None:
    email = await make_user(db, "reviewer")
    async with gateway(auth_settings(test_settings), database_url) as client:
        tokens = await login(client, email.upper())  # e-mail is case-insensitive
        assert tokens["role"] == "reviewer" and tokens["token_type"] == "bearer"
        assert tokens["expires_in"] == 900 and tokens["refresh_expires_in"] == 12 * 3600
        claims = jwt.decode(tokens["access_token"], options={"verify_signature": False})
        assert {"sub", "role", "jti", "iat", "exp", "sid"} <= claims.keys() and claims["role"] == "reviewer"
        me = await client.get("/v1/auth/me", headers=bearer(tokens["access_token"]))
        assert me.json() == {
            "id": email,
            "kind": "user",
            "role": "reviewer",
            "scopes": ["emails:read", "review:read", "review:write", "stats:read"],
            "name": email,
        }
        assert (
            await client.post("/v1/auth/logout", headers=bearer(tokens["access_token"]))
        ).status_code == 204
        after = await client.get("/v1/auth/me", headers=bearer(tokens["access_token"]))
        assert after.status_code == 401 and "session ended" in after.json()["detail"]
        assert after.headers["WWW-Authenticate"] == "Bearer"
        again = await client.post("/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
        assert again.status_code == 401
    [(actor, _)] = audit_rows(database_url, "auth.logout", claims["sid"])
    assert actor == email


async def test_wrong_password_is_refused_and_audited_without_the_password(
    test_settings: Settings, database_url: str, db: Database
) -> None:
    email = await make_user(db, "auditor")
    async with gateway(auth_settings(test_settings), database_url) as client:
        wrong = await client.post("/v1/auth/login", json={"email": email, "password": "hunter2-guess"})
        unknown = await client.post(
            "/v1/auth/login", json={"email": "x" + email, "password": "hunter2-guess"}
        )
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json() == {"detail": "invalid e-mail or password"}  # no account oracle
    [(actor, details)] = audit_rows(database_url, "auth.login_failed", email)
    assert actor.startswith("ip:") and details["reason"] == "bad_password"
    assert "hunter2" not in str(details)


async def test_refresh_rotates_and_reuse_revokes_the_family(
    test_settings: Settings, database_url: str, db: Database
) -> None:
    email = await make_user(db, "reviewer")
    async with gateway(auth_settings(test_settings), database_url) as client:
        first = await login(client, email)
        second = (
            await client.post("/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
        ).json()
        assert second["refresh_token"] != first["refresh_token"]
        assert second["access_token"] != first["access_token"]
        assert (await client.get("/v1/stats", headers=bearer(second["access_token"]))).status_code == 200

        replay = await client.post("/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
        assert replay.status_code == 401 and "already used" in replay.json()["detail"]
        # The whole family is gone: the newest refresh token and every access token of the session.
        newest = await client.post("/v1/auth/refresh", json={"refresh_token": second["refresh_token"]})
        assert newest.status_code == 401
        assert (await client.get("/v1/stats", headers=bearer(second["access_token"]))).status_code == 401
        # A new sign-in is unaffected.
        fresh = await login(client, email)
        assert (await client.get("/v1/stats", headers=bearer(fresh["access_token"]))).status_code == 200
    sid = jwt.decode(first["access_token"], options={"verify_signature": False})["sid"]
    assert len(audit_rows(database_url, "auth.refresh_reuse", sid)) == 1


async def test_garbage_refresh_tokens_are_refused(test_settings: Settings, database_url: str) -> None:
    async with gateway(auth_settings(test_settings), database_url) as client:
        for token in ["nope", "msr_" + secrets.token_urlsafe(32)]:
            answer = await client.post("/v1/auth/refresh", json={"refresh_token": token})
            assert answer.status_code == 401


async def test_lockout_after_five_failures_then_unlock(
    test_settings: Settings, database_url: str, db: Database
) -> None:
    email = await make_user(db, "reviewer")
    settings = auth_settings(test_settings, lockout_threshold=5, lockout_duration_s=2)
    async with gateway(settings, database_url) as client:
        for _ in range(5):
            bad = await client.post("/v1/auth/login", json={"email": email, "password": "wrong-password!"})
            assert bad.status_code == 401
        locked = await client.post("/v1/auth/login", json={"email": email, "password": PASSWORD})
        assert locked.status_code == 429, locked.text  # the right password does not help
        assert 1 <= int(locked.headers["Retry-After"]) <= 2
    # Another process (another app instance) sees the same lockout: it lives in the database.
    async with gateway(settings, database_url) as other:
        assert (
            await other.post("/v1/auth/login", json={"email": email, "password": PASSWORD})
        ).status_code == 429
        await asyncio.sleep(2.2)
        await login(other, email)
    assert len(audit_rows(database_url, "auth.lockout", email)) == 1
    [(_, details)] = audit_rows(database_url, "auth.login_failed", email)[-1:]
    assert details["reason"] == "locked"


async def test_lockout_per_client_ip(test_settings: Settings, database_url: str, db: Database) -> None:
    email = await make_user(db, "reviewer")
    settings = auth_settings(test_settings, ip_lockout_threshold=3, lockout_duration_s=60)
    ip = random_ip()
    async with gateway(settings, database_url, ip=ip) as client:
        for i in range(3):  # three different accounts: no single account reaches its threshold
            body = {"email": f"spray{i}-{uuid.uuid4().hex[:6]}@mailspine.test", "password": "Winter2026!!"}
            assert (await client.post("/v1/auth/login", json=body)).status_code == 401
        blocked = await client.post("/v1/auth/login", json={"email": email, "password": PASSWORD})
        assert blocked.status_code == 429 and "Retry-After" in blocked.headers
    async with gateway(settings, database_url) as elsewhere:  # the account itself is fine from another IP
        await login(elsewhere, email)


async def test_disabled_user_and_role_change_take_effect_at_once(
    test_settings: Settings, database_url: str, db: Database
) -> None:
    admin, reviewer = await make_user(db, "admin"), await make_user(db, "reviewer")
    async with gateway(auth_settings(test_settings), database_url) as client:
        root = bearer((await login(client, admin))["access_token"])
        tokens = await login(client, reviewer)
        users = (await client.get("/v1/admin/users", headers=root)).json()
        [uid] = [u["id"] for u in users if u["email"] == reviewer]

        await client.patch(f"/v1/admin/users/{uid}", json={"role": "auditor"}, headers=root)
        decision = {"decision": "reject", "payload_hash": "0" * 64, "reason": "x"}
        demoted = await client.post(
            "/v1/reviews/1/decision", json=decision, headers=bearer(tokens["access_token"])
        )
        assert demoted.status_code == 403  # the role in the token is not trusted over the database

        await client.patch(f"/v1/admin/users/{uid}", json={"active": False}, headers=root)
        assert (await client.get("/v1/stats", headers=bearer(tokens["access_token"]))).status_code == 401
        refused = await client.post("/v1/auth/login", json={"email": reviewer, "password": PASSWORD})
        assert refused.status_code == 401


# --- tampered and expired tokens ---


def _forge(claims: dict[str, Any], key: str = "x" * 40, alg: str = "HS256") -> str:
    return jwt.encode(claims, key, algorithm=alg)


async def test_tampered_or_expired_tokens_are_refused(
    test_settings: Settings, database_url: str, db: Database
) -> None:
    email = await make_user(db, "admin")
    settings = auth_settings(test_settings)
    async with gateway(settings, database_url) as client:
        token = (await login(client, email))["access_token"]
        claims = jwt.decode(token, options={"verify_signature": False})
        header, payload, signature = token.split(".")
        flipped = signature[:-2] + ("AA" if signature[-2:] != "AA" else "BB")
        none_alg = jwt.encode(claims, key=None, algorithm="none")  # type: ignore[arg-type]
        wrong_secret = _forge(claims, key="another-secret-of-at-least-32-bytes!!")
        secret = settings.auth.jwt_secret.get_secret_value()
        now = datetime.now(UTC)
        expired = _forge(
            {
                **claims,
                "iat": int((now - timedelta(hours=1)).timestamp()),
                "exp": int((now - timedelta(minutes=1)).timestamp()),
            },
            key=secret,
        )
        escalated = _forge({**claims, "role": "admin", "sub": "999999999"}, key="guess" * 8)
        for bad in [f"{header}.{payload}.{flipped}", none_alg, wrong_secret, expired, escalated, "not-a-jwt"]:
            answer = await client.get("/v1/stats", headers=bearer(bad))
            assert answer.status_code == 401, (bad, answer.text)
        assert "expired" in (await client.get("/v1/stats", headers=bearer(expired))).json()["detail"]
        assert (await client.get("/v1/stats", headers=bearer(token))).status_code == 200


# --- service keys and bootstrap keys ---


async def test_service_key_lifecycle(test_settings: Settings, database_url: str, db: Database) -> None:
    admin = await make_user(db, "admin")
    async with gateway(auth_settings(test_settings), database_url) as client:
        root = bearer((await login(client, admin))["access_token"])
        created = await client.post(
            "/v1/admin/keys", json={"name": "crm-sync", "scopes": ["stats:read"]}, headers=root
        )
        assert created.status_code == 201
        key, key_id = created.json()["key"], created.json()["id"]
        assert key.startswith(f"msk_{key_id}_")
        listed = (await client.get("/v1/admin/keys", headers=root)).json()
        assert key not in str(listed) and any(k["id"] == key_id for k in listed)

        assert (await client.get("/v1/stats", headers={"X-API-Key": key})).status_code == 200
        assert (await client.get("/v1/stats", headers=bearer(key))).status_code == 200
        assert (await client.get("/v1/emails", headers={"X-API-Key": key})).status_code == 403
        assert (await client.get("/v1/stats", headers={"X-API-Key": key[:-1] + "x"})).status_code == 401

        assert (await client.delete(f"/v1/admin/keys/{key_id}", headers=root)).status_code == 200
        assert (await client.get("/v1/stats", headers={"X-API-Key": key})).status_code == 401
        assert (await client.delete(f"/v1/admin/keys/{key_id}", headers=root)).status_code == 404
    [(actor, details)] = audit_rows(database_url, "api_key.create", str(key_id))
    assert actor == admin and details == {"name": "crm-sync", "scopes": ["stats:read"]}


async def test_bootstrap_keys_only_in_dev_and_test(test_settings: Settings, database_url: str) -> None:
    async with gateway(auth_settings(test_settings), database_url) as client:
        assert (await client.get("/v1/stats", headers={"X-API-Key": DEV_REVIEWER_API_KEY})).status_code == 200
        assert (await client.get("/v1/stats", headers={"X-API-Key": DEV_GATEWAY_API_KEY})).status_code == 403
    prod = auth_settings(test_settings).model_copy(update={"env": "prod"})
    async with gateway(prod, database_url) as client:
        assert (await client.get("/v1/stats", headers={"X-API-Key": DEV_REVIEWER_API_KEY})).status_code == 401


async def test_two_credentials_at_once_are_refused(test_settings: Settings, database_url: str) -> None:
    async with gateway(auth_settings(test_settings), database_url) as client:
        answer = await client.get(
            "/v1/stats", headers={"X-API-Key": DEV_REVIEWER_API_KEY, "Authorization": "Bearer x.y.z"}
        )
        assert answer.status_code == 401


# --- rate and size limits ---


async def test_rate_limit_per_principal_answers_429_with_retry_after(
    test_settings: Settings, database_url: str
) -> None:
    settings = auth_settings(test_settings, rate_limit_per_minute=3)
    async with gateway(settings, database_url) as client:
        codes = [
            (await client.get("/v1/stats", headers={"X-API-Key": DEV_REVIEWER_API_KEY})).status_code
            for _ in range(3)
        ]
        limited = await client.get("/v1/stats", headers={"X-API-Key": DEV_REVIEWER_API_KEY})
    assert codes == [200, 200, 200]
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1


async def test_rate_limits_per_ip_for_anonymous_and_login(test_settings: Settings, database_url: str) -> None:
    settings = auth_settings(test_settings, anonymous_rate_limit_per_minute=2, login_rate_limit_per_minute=1)
    async with gateway(settings, database_url) as client:
        assert [(await client.get("/v1/stats")).status_code for _ in range(3)] == [401, 401, 429]
    async with gateway(settings, database_url) as client:
        body = {"email": "nobody@mailspine.test", "password": "x"}
        assert [(await client.post("/v1/auth/login", json=body)).status_code for _ in range(2)] == [401, 429]


async def test_oversized_bodies_are_refused_before_reading(
    test_settings: Settings, database_url: str
) -> None:
    settings = auth_settings(test_settings, max_request_bytes=4096)
    big = b'{"email": "a@b.c", "password": "' + b"x" * 8000 + b'"}'

    async def chunks() -> AsyncIterator[bytes]:
        for i in range(0, len(big), 1000):
            yield big[i : i + 1000]

    async with gateway(settings, database_url) as client:
        sized = await client.post("/v1/auth/login", content=big, headers={"Content-Type": "application/json"})
        streamed = await client.post(
            "/v1/auth/login", content=chunks(), headers={"Content-Type": "application/json"}
        )
        anonymous = await client.post("/v1/reviews/1/decision", content=big)
    assert sized.status_code == streamed.status_code == anonymous.status_code == 413


# --- OIDC (a locally generated provider key; the verifier's keys are fixed, no network) ---


async def test_oidc_id_token_signs_in_an_existing_user(
    test_settings: Settings, database_url: str, db: Database
) -> None:
    issuer, client_id = "https://id.example.com", "mailspine"
    key = JsonWebKey.generate_key("RSA", 2048, is_private=True, options={"kid": "k1"})
    email = await make_user(db, "auditor", password=None)  # OIDC only: no password at all
    settings = auth_settings(test_settings, oidc_issuer=issuer, oidc_client_id=client_id)

    def id_token(address: str) -> str:
        now = int(time.time())
        claims = {"iss": issuer, "aud": client_id, "sub": "s1", "iat": now, "exp": now + 60, "email": address}
        return JsonWebToken(["RS256"]).encode({"alg": "RS256", "kid": "k1"}, claims, key).decode()

    async with gateway(settings, database_url) as client:
        client.app.state.oidc = OidcVerifier(settings.auth, jwks={"keys": [key.as_dict(is_private=False)]})  # type: ignore[attr-defined]
        tokens = (await client.post("/v1/auth/oidc", json={"id_token": id_token(email.upper())})).json()
        assert tokens["role"] == "auditor"
        assert (await client.get("/v1/reviews", headers=bearer(tokens["access_token"]))).status_code == 200
        stranger = await client.post("/v1/auth/oidc", json={"id_token": id_token("nobody@example.com")})
        assert stranger.status_code == 401
        forged = await client.post("/v1/auth/oidc", json={"id_token": id_token(email)[:-4] + "AAAA"})
        assert forged.status_code == 401
        no_password = await client.post("/v1/auth/login", json={"email": email, "password": ""})
        assert no_password.status_code == 422
        guessed = await client.post("/v1/auth/login", json={"email": email, "password": "anything"})
        assert guessed.status_code == 401


async def test_the_last_active_admin_cannot_be_disabled_or_demoted(db: Database) -> None:
    email = await make_user(db, "admin")
    for change in ({"role": "reviewer"}, {"active": False}):
        with pytest.raises(auth_accounts.AccountError, match="last active admin"):
            async with db.transaction() as session:  # rolled back: the other admins are untouched
                me = await users_repo.get_user_by_email(session, email=email)
                assert me is not None
                others = update(User).where(User.role == "admin", User.id != me.id).values(active=False)
                await session.execute(others)
                await auth_accounts.update_user(session, AuthSettings(), user_id=me.id, actor="t", **change)


# --- housekeeping ---
async def test_purge_deletes_only_state_that_can_never_be_valid_again(
    test_settings: Settings, database_url: str, db: Database
) -> None:
    email = await make_user(db, "reviewer")
    ip = random_ip()
    settings = auth_settings(test_settings)
    async with gateway(settings, database_url, ip=ip) as client:
        live = await login(client, email)
        old = await login(client, email)
        bad = await client.post("/v1/auth/login", json={"email": email, "password": "wrong password!"})
        assert bad.status_code == 401
    old_sid = jwt.decode(old["access_token"], options={"verify_signature": False})["sid"]
    live_sid = jwt.decode(live["access_token"], options={"verify_signature": False})["sid"]
    auth = settings.auth
    later = datetime.now(UTC) + timedelta(seconds=auth.lockout_window_s + 1)
    with psycopg.connect(libpq_url(database_url), autocommit=True) as conn:
        # Age the "old" session as if it had been signed in long ago and never refreshed.
        long_ago = datetime.now(UTC) - timedelta(
            seconds=2 * (auth.refresh_token_ttl_s + auth.access_token_ttl_s)
        )
        conn.execute("UPDATE auth_sessions SET created_at = %s WHERE id = %s", (long_ago, old_sid))
        conn.execute(
            "UPDATE refresh_tokens SET created_at = %s, expires_at = %s WHERE session_id = %s",
            (long_ago, long_ago + timedelta(seconds=auth.refresh_token_ttl_s), old_sid),
        )
        throttled = conn.execute(
            "SELECT count(*) FROM login_throttle WHERE key IN (%s, %s)", (email, ip)
        ).fetchone()
        assert throttled is not None and throttled[0] >= 1

    purged = await auth_sessions.purge_expired(db, auth, now=later)
    assert purged.refresh_tokens >= 1 and purged.sessions >= 1 and purged.throttle_rows >= 1

    with psycopg.connect(libpq_url(database_url)) as conn:
        sessions = {
            r[0]
            for r in conn.execute("SELECT id FROM auth_sessions WHERE id IN (%s, %s)", (old_sid, live_sid))
        }
        assert sessions == {live_sid}
        left = conn.execute(
            "SELECT count(*) FROM login_throttle WHERE key IN (%s, %s)", (email, ip)
        ).fetchone()
        assert left == (0,)
    async with gateway(settings, database_url, ip=ip) as client:
        # The live session still refreshes; the purged one is refused like any unknown token.
        fresh = await client.post("/v1/auth/refresh", json={"refresh_token": live["refresh_token"]})
        assert fresh.status_code == 200, fresh.text
        gone = await client.post("/v1/auth/refresh", json={"refresh_token": old["refresh_token"]})
        assert gone.status_code == 401
    # A second run at the same instant finds nothing left to delete.
    again = await auth_sessions.purge_expired(db, auth, now=later)
    assert again == auth_sessions.Purged(refresh_tokens=0, sessions=0, throttle_rows=0)
