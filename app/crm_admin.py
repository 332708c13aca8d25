"""Administer the reference CRM from mailspine's CLI and demo (tokens for the agent's CRM tool)."""

from __future__ import annotations

import asyncio

from app.db import make_engine

# Least privilege: the agent's CRM tool reads and writes contacts and writes notes; nothing else.
AGENT_SCOPES = ("crm.objects.contacts.read", "crm.objects.contacts.write", "crm.objects.notes.write")


def create_crm_token(url: str, *, name: str, scopes: list[str]) -> str:
    from infra.crm.tokens import create_token

    async def run() -> str:
        engine = make_engine(url, pool_size=1)
        try:
            return await create_token(bind=engine, name=name, scopes=scopes)
        finally:
            await engine.dispose()

    return asyncio.run(run())
