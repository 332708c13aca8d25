"""A small synchronous client of the gateway HTTP API, signed in as the reviewer themselves.

Two ways in: ``GatewayClient.sign_in(url, email, password)`` (``POST /v1/auth/login``; requests carry
``Authorization: Bearer <access token>``, refreshed shortly before it expires or when the gateway
says it has) or ``GatewayClient(url, api_key)`` (``X-API-Key``; the dev bootstrap key or a service
key). The dashboard never talks to the database: everything it shows or changes goes through here.
"""

from __future__ import annotations

import time
from typing import Any

import httpx

JSON = dict[str, Any]


class GatewayError(Exception):
    """A non-2xx answer from the gateway, carrying the API's ``detail`` message."""

    def __init__(self, status: int | None, message: str) -> None:
        super().__init__(f"{status}: {message}" if status else message)
        self.status = status
        self.message = message

    @property
    def conflict(self) -> bool:
        """409: the review was already decided, or the payload shown is stale."""
        return self.status == 409


class GatewayUnreachable(GatewayError):
    """The gateway could not be reached at all (connection refused, DNS, timeout)."""

    def __init__(self, message: str) -> None:
        super().__init__(None, message)


def _detail(response: httpx.Response) -> str:
    try:
        detail = response.json().get("detail")
    except ValueError:
        return response.text[:500] or response.reason_phrase
    if isinstance(detail, str):
        return detail
    return str(detail) if detail else response.reason_phrase


REFRESH_MARGIN_S = 30.0  # refresh this long before the access token expires


class GatewayClient:
    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 10.0,
        clock: Any = time.monotonic,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        headers = {"X-API-Key": api_key} if api_key else {}
        self._http = httpx.Client(
            base_url=self.base_url, headers=headers, transport=transport, timeout=timeout
        )
        self._clock = clock
        self._access: str | None = None
        self._refresh: str | None = None
        self._expires_at = 0.0
        self.identity = "API key" if api_key else ""
        self.role: str | None = None
        self.scopes: frozenset[str] = frozenset()  # filled by ``load_principal``

    @classmethod
    def sign_in(
        cls,
        base_url: str,
        email: str,
        password: str,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 10.0,
        clock: Any = time.monotonic,
    ) -> GatewayClient:
        """A client signed in with e-mail and password (raises ``GatewayError`` when refused)."""
        client = cls(base_url, transport=transport, timeout=timeout, clock=clock)
        try:
            client._keep(client._send("POST", "/v1/auth/login", json={"email": email, "password": password}))
        except GatewayError:
            client.close()
            raise
        return client

    def _keep(self, tokens: JSON) -> None:
        self._access, self._refresh = str(tokens["access_token"]), str(tokens["refresh_token"])
        self._expires_at = self._clock() + float(tokens["expires_in"])
        self.identity, self.role = str(tokens.get("email", "")), tokens.get("role")

    def _renew(self) -> None:
        """Spend the refresh token for new tokens; on refusal the session is over (sign in again)."""
        refresh, self._access = self._refresh, None
        if refresh is None:
            raise GatewayError(401, "signed out")
        try:
            self._keep(self._send("POST", "/v1/auth/refresh", json={"refresh_token": refresh}))
        except GatewayError as exc:
            self._refresh = None
            if exc.status in (400, 401):
                raise GatewayError(401, f"your session has ended ({exc.message})") from exc
            raise

    def _send(self, method: str, path: str, **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {self._access}"} if self._access else {}
        try:
            response = self._http.request(method, path, headers=headers, **kwargs)
        except httpx.TransportError as exc:
            raise GatewayUnreachable(f"cannot reach the gateway at {self.base_url}: {exc}") from exc
        if not response.is_success:
            raise GatewayError(response.status_code, _detail(response))
        return response.json() if response.content else None

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        if self._refresh is None:
            return self._send(method, path, **kwargs)
        if self._access is None or self._clock() >= self._expires_at - REFRESH_MARGIN_S:
            self._renew()
        try:
            return self._send(method, path, **kwargs)
        except GatewayError as exc:
            if exc.status != 401:
                raise
        self._renew()  # expired early (clock skew) or revoked: one fresh try, then the error stands
        return self._send(method, path, **kwargs)

    @property
    def signed_in_with_password(self) -> bool:
        return self._refresh is not None

    def logout(self) -> None:
        """End the sign-in session at the gateway (its tokens stop working); quiet on failure."""
        if self._refresh is None:
            return
        try:
            self._request("POST", "/v1/auth/logout")
        except GatewayError:
            pass  # signing out here regardless; the gateway's tokens run out on their own
        finally:
            self._access = self._refresh = None

    def me(self) -> JSON:
        result: JSON = self._request("GET", "/v1/auth/me")
        return result

    def load_principal(self) -> None:
        """Ask the gateway who this client is: role, scopes and, for an API key, the key's name."""
        who = self.me()
        self.role = who.get("role")
        self.scopes = frozenset(str(s) for s in who.get("scopes", []))
        if who.get("kind") == "key":
            self.identity = f"API key {who.get('name', '')}".strip()

    def stats(self) -> JSON:
        result: JSON = self._request("GET", "/v1/stats")
        return result

    def list_reviews(self, status: str = "pending") -> list[JSON]:
        result: list[JSON] = self._request("GET", "/v1/reviews", params={"status": status})
        return result

    def get_review(self, review_id: int) -> JSON:
        result: JSON = self._request("GET", f"/v1/reviews/{review_id}")
        return result

    def decide(
        self,
        review_id: int,
        decision: str,
        payload_hash: str,
        reason: str | None = None,
        plan: JSON | None = None,
    ) -> JSON:
        body: JSON = {"decision": decision, "payload_hash": payload_hash}
        if reason is not None:
            body["reason"] = reason
        if plan is not None:
            body["plan"] = plan
        result: JSON = self._request("POST", f"/v1/reviews/{review_id}/decision", json=body)
        return result

    def list_emails(self, status: str | None = None, limit: int = 100) -> list[JSON]:
        params: dict[str, Any] = {"limit": limit}
        if status:
            params["status"] = status
        result: list[JSON] = self._request("GET", "/v1/emails", params=params)
        return result

    def get(self, path: str, **params: Any) -> Any:
        """``GET path`` of the gateway as the signed-in identity (the pages' read routes:
        docs/architecture.md, "Dashboard API"); parameters that are None are left out."""
        return self._request("GET", path, params={k: v for k, v in params.items() if v is not None})

    def post(self, path: str, body: JSON) -> Any:
        """``POST path`` with a JSON body as the signed-in identity."""
        return self._request("POST", path, json=body)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> GatewayClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
