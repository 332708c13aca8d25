"""CRM adapter over HTTP for the HubSpot CRM v3 API subset the reference CRM implements.

Pointing ``MAILSPINE_CRM_BASE_URL`` at https://api.hubapi.com with a HubSpot private-app token works
without code changes. Every write carries an ``Idempotency-Key`` (the ledger key), so a retry after
an unknown outcome is answered from the CRM's own record instead of writing twice.
"""

from __future__ import annotations

from typing import Any

import httpx

from app.chaos import crash_point
from app.errors import ToolAuthError, ToolError, ToolUnavailable
from app.repo import audit
from tools.actions import CrmAddNote, CrmUpsertContact
from tools.base import ToolSpec, tool_span

UPSERT_CONTACT = ToolSpec(
    name="crm_upsert_contact",
    description="Create or update a CRM contact by email address.",
    access="write",
    scopes=("crm.objects.contacts.write",),
)
ADD_NOTE = ToolSpec(
    name="crm_add_note",
    description="Attach a note to the CRM contact with this email address.",
    access="write",
    scopes=("crm.objects.contacts.read", "crm.objects.notes.write"),
)
FIND_CONTACT = ToolSpec(
    name="crm_find_contact",
    description="Look up the CRM contact id of an email address (read only).",
    access="read",
    scopes=("crm.objects.contacts.read",),
)
# What the read-only CRM token carries: every CRM read tool shares it. HubSpot has one
# ``tickets`` scope for reading and writing tickets; the other scopes here are read-only.
READER_SCOPES = (
    "crm.objects.contacts.read",
    "crm.objects.companies.read",
    "crm.objects.deals.read",
    "crm.objects.notes.read",
    "tickets",
)
NOTE_TO_CONTACT = 202  # HubSpot-defined association type id: note → contact
TOKEN_INFO = "/oauth/v2/private-apps/get/access-token-info"  # HubSpot's private-app token introspection


class CrmClient:
    def __init__(
        self,
        *,
        base_url: str,
        token: str | None,
        timeout_s: float,
        transport: httpx.AsyncBaseTransport | None = None,  # tests and benchmarks: an in-process CRM
        credential: str = "crm_token",  # the credential's name in the audit log, never its value
    ) -> None:
        self._token = token
        self._credential = credential
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"), headers=headers, timeout=timeout_s, transport=transport
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _request(self, method: str, path: str, *, json: dict[str, Any], key: str | None = None) -> Any:
        if not self._token:
            raise ToolAuthError("the CRM tool has no credential (see `mailspine tools list`)")
        audit.note_credential_use(tool="crm", credential_name=self._credential)  # first use per process
        headers = {"Idempotency-Key": key} if key else {}
        try:
            response = await self._http.request(method, path, json=json, headers=headers)
        except (httpx.TimeoutException, httpx.TransportError) as exc:
            raise ToolUnavailable(f"CRM unreachable at {self._http.base_url}: {type(exc).__name__}") from exc
        crash_point("crm.after_response", method=method, path=path, status=response.status_code)
        if response.status_code in (401, 403):
            raise ToolAuthError(f"CRM refused the credential ({response.status_code}): {_message(response)}")
        if response.status_code >= 500 or response.status_code == 429:
            raise ToolUnavailable(f"CRM error {response.status_code}: {_message(response)}")
        if response.status_code >= 400:
            raise ToolError(f"CRM rejected {method} {path} ({response.status_code}): {_message(response)}")
        return response.json()

    async def upsert_contact(self, action: CrmUpsertContact, *, idempotency_key: str) -> dict[str, Any]:
        props = {
            k: v
            for k, v in {
                "email": str(action.email),
                "firstname": action.firstname,
                "lastname": action.lastname,
                "company": action.company,
            }.items()
            if v
        }
        with tool_span(UPSERT_CONTACT, call_id=idempotency_key[:16]):
            body = {"inputs": [{"idProperty": "email", "id": str(action.email), "properties": props}]}
            data = await self._request(
                "POST", "/crm/v3/objects/contacts/batch/upsert", json=body, key=idempotency_key
            )
            return {"contact_id": str(data["results"][0]["id"])}

    async def find_contact_id(self, email: str) -> str | None:
        body = {
            "filterGroups": [{"filters": [{"propertyName": "email", "operator": "EQ", "value": email}]}],
            "limit": 1,
        }
        data = await self._request("POST", "/crm/v3/objects/contacts/search", json=body)
        results = data.get("results") or []
        return str(results[0]["id"]) if results else None

    async def lookup_contact(self, email: str) -> dict[str, Any]:
        """The read tool ``crm_find_contact``."""
        with tool_span(FIND_CONTACT):
            return {"contact_id": await self.find_contact_id(email)}

    async def token_info(self) -> dict[str, Any] | None:
        """What the CRM knows of this client's token (HubSpot: ``scopes``, ``hubId``, ``appId``), or
        None when it refuses it. The token goes in the body, as HubSpot expects. ``ToolUnavailable``
        when the CRM is unreachable, ``ToolError`` when it has no such endpoint."""
        if not self._token:
            return None
        try:
            response = await self._http.post(TOKEN_INFO, json={"tokenKey": self._token})
        except (httpx.TimeoutException, httpx.TransportError) as exc:
            raise ToolUnavailable(f"CRM unreachable at {self._http.base_url}: {type(exc).__name__}") from exc
        if response.status_code >= 500 or response.status_code == 429:
            raise ToolUnavailable(f"CRM error {response.status_code}: {_message(response)}")
        if response.status_code in (404, 405):
            raise ToolError(f"this CRM has no token introspection ({TOKEN_INFO})")
        if response.status_code != 200:
            return None
        data = response.json()
        return data if isinstance(data, dict) else None

    async def add_note(self, action: CrmAddNote, *, idempotency_key: str, timestamp: str) -> dict[str, Any]:
        with tool_span(ADD_NOTE, call_id=idempotency_key[:16]):
            contact_id = await self.find_contact_id(str(action.contact_email))
            if contact_id is None:
                raise ToolError("no CRM contact for the note's address (upsert the contact first)")
            body = {
                "properties": {"hs_note_body": action.body, "hs_timestamp": timestamp},
                "associations": [
                    {
                        "to": {"id": contact_id},
                        "types": [
                            {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": NOTE_TO_CONTACT}
                        ],
                    }
                ],
            }
            data = await self._request("POST", "/crm/v3/objects/notes", json=body, key=idempotency_key)
            return {"note_id": str(data["id"]), "contact_id": contact_id}


def _message(response: httpx.Response) -> str:
    try:
        return str(response.json().get("message", ""))[:300]
    except ValueError:
        return response.text[:300]
