"""The eval's sandbox: the production graph and pipeline, with nothing that reaches outside.

- the database is the run's own fresh one (``evals.runner``);
- the CRM is in-process (``SandboxCrm``: an ``httpx.MockTransport`` that keeps contacts and notes in
  memory and answers like the reference CRM, so a note for an unknown contact fails as it would);
- no SMTP and no IMAP accounts: replies stay drafts in the eval database;
- ``--model`` sets both tiers, as ``MAILSPINE_MODEL`` alone would.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from itertools import count

import httpx
from pydantic import SecretStr

from agent.checkpointer import open_checkpointer
from agent.context import Context
from agent.graph import build_graph
from agent.models.factory import build_models
from app.db import Database
from app.services import Services
from app.settings import Settings
from tools.crm import CrmClient

SANDBOX_CRM_URL = "http://crm.eval.invalid"


def eval_settings(settings: Settings, *, database_url: str, model: str | None = None) -> Settings:
    update: dict[str, object] = {
        "database_url": database_url,
        "smtp": None,
        "imap_accounts": [],
        "crm_base_url": SANDBOX_CRM_URL,
        "crm_token": SecretStr("eval-sandbox"),
    }
    if model:
        update |= {"model": model, "model_fast": model, "model_strong": model}
    return settings.model_copy(update=update)


class SandboxCrm:
    """The CRM subset the agent's tool uses, in memory: contacts by email, notes per contact."""

    def __init__(self) -> None:
        self.contacts: dict[str, str] = {}  # email -> id
        self.notes: list[dict[str, object]] = []
        self._ids = count(1)

    def handle(self, request: httpx.Request) -> httpx.Response:
        path, body = request.url.path, json.loads(request.content or b"{}")
        if path.endswith("/contacts/batch/upsert"):
            email = str(body["inputs"][0]["id"]).lower()
            contact_id = self.contacts.setdefault(email, str(next(self._ids)))
            return httpx.Response(200, json={"results": [{"id": contact_id}]})
        if path.endswith("/contacts/search"):
            email = str(body["filterGroups"][0]["filters"][0]["value"]).lower()
            found = [{"id": self.contacts[email]}] if email in self.contacts else []
            return httpx.Response(200, json={"results": found})
        if path.endswith("/objects/notes"):
            note_id = str(next(self._ids))
            self.notes.append({"id": note_id, **body})
            return httpx.Response(201, json={"id": note_id})
        return httpx.Response(404, json={"message": f"the eval sandbox CRM has no {path}"})

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)


@asynccontextmanager
async def sandbox_services(settings: Settings, *, database_url: str) -> AsyncIterator[Services]:
    """``app.services.open_services`` with the sandbox CRM (``settings`` from ``eval_settings``)."""
    db = Database(database_url)
    crm = CrmClient(
        base_url=SANDBOX_CRM_URL,
        token="eval-sandbox",
        timeout_s=settings.crm_timeout_s,
        transport=SandboxCrm().transport(),
    )
    try:
        async with open_checkpointer(db.url, max_size=4) as saver:
            ctx = Context(db=db, models=build_models(settings), crm=crm, settings=settings)
            yield Services(settings=settings, db=db, ctx=ctx, graph=build_graph(saver))
    finally:
        await crm.aclose()
        await db.dispose()
