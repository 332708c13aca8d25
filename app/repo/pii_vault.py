"""The PII vault: encrypted at rest; only the tool boundary and the reviewer API decrypt it."""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import ConfigurationError
from app.models_pii import PiiVaultEntry


def _fernet(key: str) -> Fernet:
    try:
        return Fernet(key.encode())
    except ValueError as exc:
        raise ConfigurationError(
            "MAILSPINE_PII__VAULT_KEY is not a Fernet key (urlsafe base64 of 32 bytes)"
        ) from exc


async def store(
    session: AsyncSession, *, email_id: int, entries: dict[str, tuple[str, str]], key: str
) -> None:
    if not entries:
        return
    f = _fernet(key)
    rows = [
        {"email_id": email_id, "token": token, "kind": kind, "ciphertext": f.encrypt(value.encode())}
        for token, (kind, value) in entries.items()
    ]
    await session.execute(insert(PiiVaultEntry).values(rows).on_conflict_do_nothing())


async def load(session: AsyncSession, *, email_id: int, key: str) -> dict[str, tuple[str, str]]:
    f = _fernet(key)
    rows = (await session.execute(select(PiiVaultEntry).where(PiiVaultEntry.email_id == email_id))).scalars()
    try:
        return {r.token: (r.kind, f.decrypt(r.ciphertext).decode()) for r in rows}
    except InvalidToken as exc:
        raise ConfigurationError(
            f"the PII vault of email {email_id} does not open with the configured key"
        ) from exc
