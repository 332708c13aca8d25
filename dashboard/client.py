"""A small synchronous client of the gateway HTTP API, used with the reviewer's own API key.

The dashboard never talks to the database: everything it shows or changes goes through here.
"""

from __future__ import annotations

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


class GatewayClient:
    def __init__(
        self, base_url: str, api_key: str, transport: httpx.BaseTransport | None = None, timeout: float = 10.0
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.base_url, headers={"X-API-Key": api_key}, transport=transport, timeout=timeout
        )

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise GatewayUnreachable(f"cannot reach the gateway at {self.base_url}: {exc}") from exc
        if not response.is_success:
            raise GatewayError(response.status_code, _detail(response))
        return response.json()

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

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> GatewayClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
