"""The ledger numbers attempts: a retry after an unknown outcome is told it is one (attempt > 1),
which is what makes a tool reconcile before acting (the SMTP sender searches the Sent folder)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from app.db import Database
from tools.actions import CrmUpsertContact
from tools.ledger import run_effect

pytestmark = pytest.mark.integration


async def test_each_attempt_after_a_crash_gets_the_next_number(db: Database) -> None:
    thread = f"ledger-attempts-{uuid.uuid4().hex[:8]}"
    payload = CrmUpsertContact(email="someone@example.com")
    seen: list[int] = []

    async def crashes(key: str, attempt: int) -> dict[str, Any]:
        seen.append(attempt)
        raise KeyboardInterrupt  # stands in for a kill: no result is recorded

    async def works(key: str, attempt: int) -> dict[str, Any]:
        seen.append(attempt)
        return {"contact_id": "1"}

    for _ in range(2):
        with pytest.raises(KeyboardInterrupt):
            await run_effect(
                db, thread_id=thread, node="act", effect="crm_upsert_contact", payload=payload, call=crashes
            )
    _, status, _ = await run_effect(
        db, thread_id=thread, node="act", effect="crm_upsert_contact", payload=payload, call=works
    )
    _, replay, _ = await run_effect(
        db, thread_id=thread, node="act", effect="crm_upsert_contact", payload=payload, call=works
    )
    assert seen == [1, 2, 3]  # it used to say 1, 1, 2: the upsert's RETURNING did not refresh the row
    assert (status, replay) == ("succeeded", "replayed")
