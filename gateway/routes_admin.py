"""Admin routes: users and service keys (scope ``admin``). The CLI does the same through
``gateway.auth_accounts``; both are audited with the admin's identity."""

from __future__ import annotations

from enum import Enum

from fastapi import FastAPI, HTTPException, status

from app.models_auth import ApiKey, User
from app.repo import api_keys, users
from gateway import auth_accounts
from gateway.auth import Admin
from gateway.auth_accounts import AccountError
from gateway.routes_deps import AUTH_ERRORS, AppSettings, RowId, Session, errors
from gateway.schemas import KeyCreated, KeyIn, KeyOut, UserIn, UserOut, UserPatch

TAGS: list[str | Enum] = ["admin"]


def _user(u: User) -> UserOut:
    return UserOut(
        id=u.id,
        email=u.email,
        role=u.role,
        active=u.active,
        has_password=u.password_hash is not None,
        created_at=u.created_at,
        last_login_at=u.last_login_at,
    )


def _key(k: ApiKey) -> KeyOut:
    return KeyOut(
        id=k.id,
        name=k.name,
        scopes=list(k.scopes),
        created_by=k.created_by,
        created_at=k.created_at,
        revoked_at=k.revoked_at,
    )


def _bad(exc: AccountError) -> HTTPException:
    return HTTPException(status.HTTP_400_BAD_REQUEST, str(exc))


def register(app: FastAPI) -> None:
    @app.get("/v1/admin/users", tags=TAGS, response_model=list[UserOut], responses=AUTH_ERRORS)
    async def list_users(_: Admin, session: Session) -> list[UserOut]:
        return [_user(u) for u in await users.list_users(session)]

    @app.post(
        "/v1/admin/users",
        tags=TAGS,
        response_model=UserOut,
        status_code=status.HTTP_201_CREATED,
        responses={**AUTH_ERRORS, **errors(400, 413)},
    )
    async def create_user(body: UserIn, who: Admin, session: Session, settings: AppSettings) -> UserOut:
        """A user; without a password they can only sign in through OIDC."""
        try:
            user = await auth_accounts.create_user(
                session, settings.auth, email=body.email, role=body.role, password=body.password, actor=who.id
            )
        except AccountError as exc:
            raise _bad(exc) from exc
        return _user(user)

    @app.patch(
        "/v1/admin/users/{user_id}",
        tags=TAGS,
        response_model=UserOut,
        responses={**AUTH_ERRORS, **errors(400, 404, 413)},
    )
    async def update_user(
        user_id: RowId, body: UserPatch, who: Admin, session: Session, settings: AppSettings
    ) -> UserOut:
        """Change a role, disable (or re-enable) a user, or set a new password. Disabling or a new
        password ends the user's sessions at once."""
        try:
            user = await auth_accounts.update_user(
                session,
                settings.auth,
                user_id=user_id,
                actor=who.id,
                role=body.role,
                active=body.active,
                password=body.password,
            )
        except AccountError as exc:
            raise _bad(exc) from exc
        if user is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"user {user_id} not found")
        return _user(user)

    @app.get("/v1/admin/keys", tags=TAGS, response_model=list[KeyOut], responses=AUTH_ERRORS)
    async def list_keys(_: Admin, session: Session) -> list[KeyOut]:
        return [_key(k) for k in await api_keys.list_keys(session)]

    @app.post(
        "/v1/admin/keys",
        tags=TAGS,
        response_model=KeyCreated,
        status_code=status.HTTP_201_CREATED,
        responses={**AUTH_ERRORS, **errors(400, 413)},
    )
    async def create_key(body: KeyIn, who: Admin, session: Session) -> KeyCreated:
        """A service key with the given scopes. The key is in this answer only: store it now."""
        try:
            row, key = await auth_accounts.create_key(
                session, name=body.name, scopes=list(body.scopes), actor=who.id
            )
        except AccountError as exc:
            raise _bad(exc) from exc
        return KeyCreated(**_key(row).model_dump(), key=key)

    @app.delete(
        "/v1/admin/keys/{key_id}",
        tags=TAGS,
        response_model=KeyOut,
        responses={**AUTH_ERRORS, **errors(404)},
    )
    async def revoke_key(key_id: RowId, who: Admin, session: Session) -> KeyOut:
        row = await auth_accounts.revoke_key(session, key_id=key_id, actor=who.id)
        if row is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no active key {key_id}")
        return _key(row)
