"""The tool boundary: the only place placeholders turn back into personal data.

Actions travel through the graph, the checkpoints and the ledger with placeholders; a tool gets
the restored copy for the one call it makes, and nothing restored is stored or traced.
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

from pydantic import BaseModel

from app.db import Database
from app.repo import pii_vault
from gateway.pii import has_placeholder, restore

M = TypeVar("M", bound=BaseModel)


async def load_entries(db: Database, *, email_id: int, key: str) -> dict[str, tuple[str, str]]:
    async with db.transaction() as session:
        return await pii_vault.load(session, email_id=email_id, key=key)


def restore_value(value: Any, entries: dict[str, tuple[str, str]]) -> Any:
    if isinstance(value, str):
        return restore(value, entries) if has_placeholder(value) else value
    if isinstance(value, list):
        return [restore_value(v, entries) for v in value]
    if isinstance(value, dict):
        return {k: restore_value(v, entries) for k, v in value.items()}
    return value


def restore_model(model: M, entries: dict[str, tuple[str, str]]) -> M:
    data: dict[str, Any] = restore_value(model.model_dump(mode="json"), entries)
    # A whole-name placeholder planned as the first name: split it back into first and last.
    first, last = data.get("firstname"), data.get("lastname")
    if isinstance(first, str) and " " in first.strip() and not last:
        data["firstname"], _, data["lastname"] = first.strip().partition(" ")
    return type(model).model_validate(data)


def redact_known(payload: dict[str, Any], entries: dict[str, tuple[str, str]]) -> dict[str, Any]:
    """Put placeholders back into a payload a person edited (the reviewer saw real values)."""
    text = json.dumps(payload)
    for token, (_, value) in sorted(entries.items(), key=lambda e: -len(e[1][1])):
        if len(value) >= 3:
            text = text.replace(json.dumps(value)[1:-1], token)
    result: dict[str, Any] = json.loads(text)
    return result
