"""No personal data in spans, logs or checkpoints; real values only at the tool boundary."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from app.db import Database
from app.repo import pii_vault
from app.settings import REPO_ROOT
from app.settings_pii import DEV_VAULT_KEY
from tests.integration.test_pipeline import settle
from tests.support.stack import DEMO_MAILBOX, Stack, running_stack

pytestmark = pytest.mark.integration
LOGS = REPO_ROOT / "var" / "test" / "logs" / "pii"


@pytest.fixture(scope="module")
def processed(pg_server_url: str) -> Iterator[tuple[Stack, list[int]]]:
    with running_stack(pg_server_url, LOGS) as stack:
        stack.start_worker()
        ids = stack.ingest(DEMO_MAILBOX)
        settle(stack, ids)
        stack.group.stop("worker")  # flush its spans and logs
        yield stack, ids


def _secrets(stack: Stack, ids: list[int]) -> set[str]:
    async def run() -> set[str]:
        db = Database(stack.url)
        try:
            found: set[str] = set()
            async with db.transaction() as session:
                for email_id in ids:
                    entries = await pii_vault.load(session, email_id=email_id, key=DEV_VAULT_KEY)
                    # Whole values only: a first name alone ("Alpine", "May") is also an ordinary word.
                    found |= {
                        value
                        for token, (_, value) in entries.items()
                        if len(value) >= 6 and not token.endswith(("_FIRST]", "_LAST]"))
                    }
            return found
        finally:
            await db.dispose()

    return asyncio.run(run())


def test_personal_data_never_reaches_spans_logs_or_checkpoints(processed: tuple[Stack, list[int]]) -> None:
    stack, ids = processed
    secrets = _secrets(stack, ids)
    assert len(secrets) >= 30  # addresses, names, phones of the demo senders were found and vaulted
    stored_raw = b"".join(r for (r,) in stack.sql("SELECT ciphertext FROM pii_vault"))
    places = {
        "spans": " ".join(str(a) + str(e) for a, e in stack.sql("SELECT attributes, events FROM spans")),
        "checkpoints": b"".join(
            bytes(b)
            for (b,) in stack.sql(
                "SELECT blob FROM checkpoint_blobs UNION ALL SELECT blob FROM checkpoint_writes"
            )
            if b is not None
        ).decode("utf-8", "replace"),
        "checkpoint metadata": " ".join(str(m) for (m,) in stack.sql("SELECT checkpoint FROM checkpoints")),
        "ledger": " ".join(str(p) for (p,) in stack.sql("SELECT payload FROM side_effects")),
        "runs": " ".join(str(e) + str(p) for e, p in stack.sql("SELECT extraction, plan FROM runs")),
        "worker log": (LOGS / "worker.log").read_text(errors="replace"),
        "vault": stored_raw.decode("latin-1"),  # encrypted at rest
    }
    leaks = {where: sorted(s for s in secrets if s in text)[:5] for where, text in places.items()}
    assert {where: found for where, found in leaks.items() if found} == {}


def test_tools_receive_the_real_values(processed: tuple[Stack, list[int]]) -> None:
    stack, _ = processed
    contacts = stack.sql("SELECT email, properties->>'firstname' FROM crm.contacts")
    assert contacts and not any("redacted" in (email or "") for email, _ in contacts)
    assert not any(first and first.startswith("[PERSON") for _, first in contacts)
    drafts = stack.sql("SELECT to_address, body FROM outbound_messages")
    assert drafts and not any(
        "redacted" in to or "[PERSON" in body or "[PHONE" in body for to, body in drafts
    )


def test_reviewers_see_real_values_and_their_edits_are_redacted_again(
    processed: tuple[Stack, list[int]],
) -> None:
    stack, _ = processed
    stack.start_api()
    reviews = stack.api.get("/v1/reviews").json()
    item = next(
        r for r in reviews if any(a["kind"] == "draft_reply" for a in r["payload"]["plan"]["actions"])
    )
    detail = stack.api.get(f"/v1/reviews/{item['id']}").json()
    shown = str(detail["payload"]) + (detail["text"] or "")
    assert "redacted.example" not in shown and "[PERSON_" not in shown
    plan = detail["payload"]["plan"]
    reply = next(a for a in plan["actions"] if a["kind"] == "draft_reply")
    reply["body"] = f"Dear customer at {reply['to']}, a colleague will call you."
    answer = stack.api.post(
        f"/v1/reviews/{item['id']}/decision",
        json={"decision": "approve", "payload_hash": item["payload_hash"], "plan": plan},
    )
    assert answer.status_code == 200, answer.text
    [(stored,)] = stack.sql("SELECT decided_payload FROM reviews WHERE id = %s", item["id"])
    text = str(stored)
    assert reply["to"] not in text and "pii-email-" in text
