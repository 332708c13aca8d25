"""Repository functions for notes and association listings (keyword-only; lookups return ``X | None``).

Creating associations is generic: :mod:`infra.crm.store_associations`.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from infra.crm.models import Association, Note

CONTACTS = "contacts"
NOTES = "notes"


async def insert_note(*, session: AsyncSession, properties: dict[str, str]) -> Note:
    statement = insert(Note).values(properties=properties).returning(Note)
    return (await session.execute(statement)).scalar_one()


async def get_note(*, session: AsyncSession, note_id: int) -> Note | None:
    statement = select(Note).where(Note.id == note_id, Note.archived.is_(False))
    return (await session.execute(statement)).scalar_one_or_none()


async def list_associations(
    *, session: AsyncSession, from_type: str, from_id: int, to_type: str
) -> list[Association]:
    statement = (
        select(Association)
        .where(
            Association.from_type == from_type, Association.from_id == from_id, Association.to_type == to_type
        )
        .order_by(Association.to_id, Association.type_id)
    )
    return list((await session.execute(statement)).scalars())
