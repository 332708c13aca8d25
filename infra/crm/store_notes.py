"""Repository functions for notes and associations (keyword-only; lookups return ``X | None``)."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from infra.crm.models import Association, Contact, Note

CONTACTS = "contacts"
NOTES = "notes"
CONTACT_TO_NOTE = 201
NOTE_TO_CONTACT = 202


async def insert_note(*, session: AsyncSession, properties: dict[str, str]) -> Note:
    statement = insert(Note).values(properties=properties).returning(Note)
    return (await session.execute(statement)).scalar_one()


async def get_note(*, session: AsyncSession, note_id: int) -> Note | None:
    statement = select(Note).where(Note.id == note_id, Note.archived.is_(False))
    return (await session.execute(statement)).scalar_one_or_none()


async def lock_existing_contacts(*, session: AsyncSession, contact_ids: Iterable[int]) -> set[int]:
    """The ids among ``contact_ids`` that exist, share-locked until the end of the transaction."""
    wanted = set(contact_ids)
    if not wanted:
        return set()
    statement = (
        select(Contact.id)
        .where(Contact.id.in_(wanted), Contact.archived.is_(False))
        .with_for_update(read=True)
    )
    return set((await session.execute(statement)).scalars())


async def associate_note_with_contact(*, session: AsyncSession, note_id: int, contact_id: int) -> None:
    """Store both directions (note→contact 202, contact→note 201); repeating it is a no-op."""
    rows = [
        {
            "from_type": NOTES,
            "from_id": note_id,
            "to_type": CONTACTS,
            "to_id": contact_id,
            "type_id": NOTE_TO_CONTACT,
        },
        {
            "from_type": CONTACTS,
            "from_id": contact_id,
            "to_type": NOTES,
            "to_id": note_id,
            "type_id": CONTACT_TO_NOTE,
        },
    ]
    await session.execute(insert(Association).values(rows).on_conflict_do_nothing())


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
