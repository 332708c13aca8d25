"""Sign-in routes: password login, refresh, logout, who-am-I and the optional OIDC exchange."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import Enum

from fastapi import FastAPI, HTTPException, Request, status

from app.repo import audit, users
from gateway import auth_sessions
from gateway.auth import Authenticated, Public, SignedInUser
from gateway.auth_oidc import OidcError, OidcVerifier
from gateway.auth_sessions import IssuedTokens, SignInLocked, SignInRefused
from gateway.ratelimit import enforce, too_many
from gateway.routes_deps import AUTH_ERRORS, AppLimits, AppSettings, ClientIp, Db, errors
from gateway.schemas import LoginIn, OidcIn, PrincipalOut, RefreshIn, TokensOut

SIGN_IN_ERRORS = errors(400, 401, 413, 429)  # 400: a body that is not JSON at all
TAGS: list[str | Enum] = ["auth"]


def _out(tokens: IssuedTokens) -> TokensOut:
    return TokensOut(
        access_token=tokens.access_token,
        expires_in=tokens.expires_in,
        refresh_token=tokens.refresh_token,
        refresh_expires_in=tokens.refresh_expires_in,
        email=tokens.email,
        role=tokens.role,
    )


def _refused(exc: SignInRefused | SignInLocked | OidcError) -> HTTPException:
    if isinstance(exc, SignInLocked):
        return too_many(exc.retry_after_s, "too many failed sign-ins")
    return HTTPException(status.HTTP_401_UNAUTHORIZED, str(exc), headers={"WWW-Authenticate": "Bearer"})


def register(app: FastAPI) -> None:
    @app.post("/v1/auth/login", tags=TAGS, response_model=TokensOut, responses=SIGN_IN_ERRORS)
    async def login(
        body: LoginIn, _: Public, db: Db, settings: AppSettings, limits: AppLimits, ip: ClientIp
    ) -> TokensOut:
        """E-mail and password for an access token (short-lived JWT) and a refresh token.

        Five failures for one account (or twenty from one IP) lock it for fifteen minutes (429)."""
        enforce(limits.login, ip, "sign-in attempts per IP")
        try:
            tokens = await auth_sessions.password_login(
                db, settings.auth, email=body.email, password=body.password, ip=ip
            )
        except (SignInRefused, SignInLocked) as exc:
            raise _refused(exc) from exc
        return _out(tokens)

    @app.post("/v1/auth/refresh", tags=TAGS, response_model=TokensOut, responses=SIGN_IN_ERRORS)
    async def refresh(
        body: RefreshIn, _: Public, db: Db, settings: AppSettings, limits: AppLimits, ip: ClientIp
    ) -> TokensOut:
        """Spend a refresh token for new tokens. Each works once: using one again revokes the session."""
        enforce(limits.login, ip, "token refreshes per IP")
        try:
            tokens = await auth_sessions.refresh(db, settings.auth, refresh_token=body.refresh_token, ip=ip)
        except SignInRefused as exc:
            raise _refused(exc) from exc
        return _out(tokens)

    @app.post("/v1/auth/logout", tags=TAGS, status_code=status.HTTP_204_NO_CONTENT, responses=AUTH_ERRORS)
    async def logout(who: SignedInUser, db: Db, ip: ClientIp) -> None:
        """End this sign-in session: its refresh tokens and access tokens stop working at once."""
        assert who.session_id is not None
        await auth_sessions.logout(db, session_id=who.session_id, actor=who.id, ip=ip)

    @app.get("/v1/auth/me", tags=TAGS, response_model=PrincipalOut, responses=AUTH_ERRORS)
    async def me(who: Authenticated) -> PrincipalOut:
        return PrincipalOut(id=who.id, kind=who.kind, role=who.role, scopes=sorted(who.scopes), name=who.name)

    @app.post(
        "/v1/auth/oidc", tags=TAGS, response_model=TokensOut, responses={**SIGN_IN_ERRORS, **errors(404)}
    )
    async def oidc_login(
        body: OidcIn,
        _: Public,
        request: Request,
        db: Db,
        settings: AppSettings,
        limits: AppLimits,
        ip: ClientIp,
    ) -> TokensOut:
        """Exchange an ID token from the configured OIDC provider for mailspine tokens.

        The e-mail in the token must belong to an existing, active mailspine user; the role is theirs."""
        verifier: OidcVerifier | None = request.app.state.oidc
        if verifier is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "OIDC sign-in is not configured")
        enforce(limits.login, ip, "sign-in attempts per IP")
        try:
            identity = await verifier.verify(body.id_token, nonce=body.nonce)
        except OidcError as exc:
            raise _refused(exc) from exc
        async with db.transaction() as session:
            user = await users.get_user_by_email(session, email=identity.email)
            if user is not None and user.active:
                tokens = await auth_sessions.start_session(
                    session, settings.auth, user=user, method="oidc", ip=ip, now=datetime.now(UTC)
                )
                return _out(tokens)
            await audit.append_audit(
                session,
                actor=f"ip:{ip}",
                action="auth.login_failed",
                subject_type="account",
                subject_id=identity.email[:100],
                details={"reason": "oidc_no_user" if user is None else "inactive", "ip": ip, "locked": False},
            )
        raise _refused(OidcError("no active mailspine user for this identity"))
