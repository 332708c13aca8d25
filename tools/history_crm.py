"""Read tool: the sender's CRM timeline (notes, tickets, deals), with a read-only credential.

HubSpot's own recipe, so the same calls work against HubSpot and the reference CRM:

1. ``POST /crm/v3/objects/contacts/search`` by email → the contact (id, name);
2. per type, ``GET /crm/v4/objects/contacts/{id}/associations/{type}`` → the record ids (the
   newest ``limit``: ids grow with time in both systems);
3. per type, ``POST /crm/v3/objects/{type}/batch/read`` with the properties shown.

Asked to, it also reads the contact's companies' domains the same way (scope
``crm.objects.companies.read``): the history node uses them as the "same company" of a sender
whose own domain is free mail.

The client is ``Context.crm_reader``: its token needs ``crm.objects.contacts.read``,
``crm.objects.notes.read``, ``tickets``, ``crm.objects.deals.read`` and
``crm.objects.companies.read`` and nothing else. A CRM that is down, a refused token (401/403) or
any other CRM error degrades to no CRM history for that type (or all of them, when the contact
lookup fails): the span is marked as an error, one line is logged (the step and the error type,
never the address), and the email goes on without it. CRM text is redacted before it becomes a
summary (``tools/history_redact.py``).
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
from opentelemetry.trace import Status, StatusCode

from app.errors import ToolAuthError, ToolError, ToolUnavailable
from tools.base import ToolSpec, tool_span
from tools.crm import CrmClient
from tools.history import HistoryEntry
from tools.history_redact import CrmRedactor, excerpt

log = logging.getLogger(__name__)
CRM_TIMELINE = ToolSpec(
    name="history_crm_timeline",
    description="The sender's CRM record: latest notes, tickets and deals (dates, stages, redacted text).",
    access="read",
    scopes=(
        "crm.objects.contacts.read",
        "crm.objects.notes.read",
        "tickets",
        "crm.objects.deals.read",
        "crm.objects.companies.read",  # only for the company of a free-mail sender
    ),
)
# type → (source label, ref prefix, properties read)
KINDS: dict[str, tuple[str, str, list[str]]] = {
    "notes": ("crm.notes", "note", ["hs_note_body", "hs_timestamp"]),
    "tickets": (
        "crm.tickets",
        "ticket",
        ["subject", "hs_pipeline_stage", "hs_ticket_priority", "createdate"],
    ),
    "deals": ("crm.deals", "deal", ["dealname", "dealstage", "amount", "createdate"]),
}
# HubSpot's default ticket pipeline ("0"); other pipelines' stages show as their ids.
TICKET_STAGES = {"1": "new", "2": "waiting on contact", "3": "waiting on us", "4": "closed"}
_TAG = re.compile(r"<[^>]+>")  # HubSpot note bodies are HTML


@dataclass(frozen=True)
class CrmTimeline:
    entries: list[HistoryEntry]
    # The domains of the contact's companies (asked for with ``company_domains=True``), lowercased.
    company_domains: list[str] = field(default_factory=list)


async def crm_timeline(
    reader: CrmClient | None,
    *,
    address: str | None,
    vault: dict[str, tuple[str, str]],
    limit: int,
    excerpt_chars: int,
    company_domains: bool = False,
) -> CrmTimeline:
    """The contact's notes, tickets and deals, newest first per type, and (``company_domains``) its
    companies' domains; empty when there is no reader, no address, no contact, or the CRM fails
    (see the module docstring)."""
    if reader is None or not address:
        return CrmTimeline([])
    with tool_span(CRM_TIMELINE) as span:
        try:
            contact = await _find_contact(reader, address)
        except ToolError as exc:
            _degrade(span, "contact lookup", exc)
            return CrmTimeline([])
        if contact is None:
            span.set_attribute("mailspine.history.crm_contact", False)
            return CrmTimeline([])
        span.set_attribute("mailspine.history.crm_contact", True)
        contact_id = str(contact["id"])
        props = contact.get("properties") or {}
        name = " ".join(p for p in (props.get("firstname"), props.get("lastname")) if p)
        redactor = CrmRedactor(vault, people=[name] if name else [])
        kinds = [*KINDS, *(["companies"] if company_domains else [])]
        results = await asyncio.gather(
            *(_records(reader, contact_id, kind, limit) for kind in kinds), return_exceptions=True
        )
        timeline = CrmTimeline([])
        for kind, result in zip(kinds, results, strict=True):
            if isinstance(result, ToolError):
                _degrade(span, kind, result)
                continue
            if isinstance(result, BaseException):
                raise result
            if kind == "companies":
                domains = [str((r.get("properties") or {}).get("domain") or "").lower() for r in result]
                timeline.company_domains.extend(d for d in domains if d)
            else:
                timeline.entries.extend(_entry(kind, record, redactor, excerpt_chars) for record in result)
        span.set_attribute("mailspine.history.items", len(timeline.entries))
        return timeline


def _degrade(span: Any, what: str, exc: ToolError) -> None:
    span.set_status(Status(StatusCode.ERROR, f"{what}: {type(exc).__name__}"))
    span.set_attribute("error.type", type(exc).__name__)
    log.warning("CRM history unavailable (%s: %s); the email goes on without it", what, type(exc).__name__)


async def _find_contact(reader: CrmClient, address: str) -> dict[str, Any] | None:
    body = {
        "filterGroups": [{"filters": [{"propertyName": "email", "operator": "EQ", "value": address}]}],
        "properties": ["firstname", "lastname"],
        "limit": 1,
    }
    data = await reader._request("POST", "/crm/v3/objects/contacts/search", json=body)
    results = data.get("results") or []
    return dict(results[0]) if results else None


async def _records(reader: CrmClient, contact_id: str, kind: str, limit: int) -> list[dict[str, Any]]:
    listed = await _get(
        reader, f"/crm/v4/objects/contacts/{contact_id}/associations/{kind}", {"limit": "500"}
    )
    ids = sorted({str(r["toObjectId"]) for r in listed.get("results") or []}, key=_id_key, reverse=True)
    if not ids:
        return []
    properties = KINDS[kind][2] if kind in KINDS else ["domain"]  # companies: only their domain
    body = {"inputs": [{"id": i} for i in ids[:limit]], "properties": properties}
    data = await reader._request("POST", f"/crm/v3/objects/{kind}/batch/read", json=body)
    records = [dict(r) for r in data.get("results") or []]
    return sorted(records, key=lambda r: _id_key(str(r.get("id", ""))), reverse=True)


async def _get(reader: CrmClient, path: str, params: dict[str, str]) -> dict[str, Any]:
    """A GET through the reader's HTTP client, with ``CrmClient._request``'s error mapping (that
    method sends a JSON body, which a GET must not carry)."""
    try:
        response = await reader._http.get(path, params=params)
    except (httpx.TimeoutException, httpx.TransportError) as exc:
        raise ToolUnavailable(f"CRM unreachable: {type(exc).__name__}") from exc
    if response.status_code in (401, 403):
        raise ToolAuthError(f"CRM refused the read credential ({response.status_code})")
    if response.status_code >= 500 or response.status_code == 429:
        raise ToolUnavailable(f"CRM error {response.status_code}")
    if response.status_code >= 400:
        raise ToolError(f"CRM rejected GET {path.split('/')[-1]} ({response.status_code})")
    data: dict[str, Any] = response.json()
    return data


def _id_key(value: str) -> tuple[int, str]:
    return (int(value), value) if value.isdigit() else (-1, value)


def _when(value: Any) -> datetime | None:
    if not value:
        return None
    text = str(value)
    try:
        if text.isdigit():  # epoch milliseconds (HubSpot accepts both)
            return datetime.fromtimestamp(int(text) / 1000).astimezone()
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (ValueError, OverflowError):
        return None


def _entry(kind: str, record: dict[str, Any], redactor: CrmRedactor, excerpt_chars: int) -> HistoryEntry:
    source, prefix, _ = KINDS[kind]
    props: dict[str, Any] = record.get("properties") or {}
    at = _when(props.get("hs_timestamp") or props.get("createdate") or record.get("createdAt"))
    day = f"{at:%Y-%m-%d}" if at else "undated"

    def clean(value: Any, limit: int) -> str:
        return excerpt(redactor.text(_TAG.sub(" ", str(value or ""))), limit)

    if kind == "notes":
        summary = f'{day}, note: "{clean(props.get("hs_note_body"), excerpt_chars)}"'
    elif kind == "tickets":
        stage = str(props.get("hs_pipeline_stage") or "")
        state = TICKET_STAGES.get(stage, f"stage {clean(stage, 20)}")
        summary = f'{day}, ticket "{clean(props.get("subject"), 120)}", {state}'
        if props.get("hs_ticket_priority"):
            summary += f", priority {clean(props['hs_ticket_priority'], 20).lower()}"
    else:
        summary = (
            f'{day}, deal "{clean(props.get("dealname"), 120)}", stage {clean(props.get("dealstage"), 40)}'
        )
        if props.get("amount"):
            summary += f", amount {clean(props['amount'], 30)}"
    return HistoryEntry(source=source, ref=f"{prefix}:{record.get('id')}", summary=summary, at=at)
