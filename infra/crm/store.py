"""Repository functions for contacts (keyword-only; lookups return ``X | None``)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Boolean, func, literal, literal_column, select, update
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from infra.crm.models import Contact
from infra.crm.schemas import FilterGroup
from infra.crm.search import search_condition

_ACTIVE = Contact.archived.is_(False)
_FRESH = {"populate_existing": True}


class EmailConflict(Exception):
    """Another contact already has this email."""

    def __init__(self, existing_id: int | None) -> None:
        super().__init__(f"email already used by contact {existing_id}")
        self.existing_id = existing_id


def _email_of(properties: dict[str, str]) -> str | None:
    return properties.get("email") or None


async def get_contact(*, session: AsyncSession, contact_id: int) -> Contact | None:
    statement = select(Contact).where(Contact.id == contact_id, _ACTIVE)
    return (await session.execute(statement)).scalar_one_or_none()


async def get_contact_by_email(*, session: AsyncSession, email: str) -> Contact | None:
    statement = select(Contact).where(Contact.email == email.strip().lower(), _ACTIVE)
    return (await session.execute(statement)).scalar_one_or_none()


async def insert_contact(*, session: AsyncSession, properties: dict[str, str]) -> Contact | None:
    """Create a contact; None when its email already belongs to another contact."""
    statement = (
        insert(Contact)
        .values(properties=properties, email=_email_of(properties))
        .on_conflict_do_nothing(index_elements=[Contact.email])
        .returning(Contact)
    )
    return (await session.execute(statement, execution_options=_FRESH)).scalar_one_or_none()


async def update_contact(
    *, session: AsyncSession, contact_id: int, properties: dict[str, str]
) -> Contact | None:
    """Merge ``properties`` into a contact; None when it does not exist. Raises EmailConflict."""
    values: dict[str, object] = {
        "properties": Contact.properties.op("||", return_type=JSONB)(literal(properties, JSONB)),
        "updated_at": func.now(),
    }
    if "email" in properties:
        values["email"] = _email_of(properties)
    statement = update(Contact).where(Contact.id == contact_id, _ACTIVE).values(values).returning(Contact)
    try:
        async with session.begin_nested():
            result = await session.execute(statement, execution_options=_FRESH)
            return result.scalar_one_or_none()
    except IntegrityError as exc:
        existing = await get_contact_by_email(session=session, email=properties.get("email", ""))
        raise EmailConflict(existing.id if existing else None) from exc


async def upsert_contact_by_email(
    *, session: AsyncSession, email: str, properties: dict[str, str]
) -> tuple[Contact, bool]:
    """Create the contact with this email or merge properties into it. Returns (contact, created)."""
    merged = {**properties, "email": email}
    values = insert(Contact).values(properties=merged, email=email)
    statement = values.on_conflict_do_update(
        index_elements=[Contact.email],
        set_={
            "properties": Contact.properties.op("||", return_type=JSONB)(values.excluded.properties),
            "updated_at": func.now(),
        },
    ).returning(Contact, literal_column("xmax = 0", Boolean).label("created"))
    row = (await session.execute(statement, execution_options=_FRESH)).one()
    return row[0], bool(row[1])


async def list_contacts(*, session: AsyncSession, after: int | None, limit: int) -> list[Contact]:
    """Contacts ordered by id, starting after the ``after`` id."""
    statement = select(Contact).where(_ACTIVE).order_by(Contact.id).limit(limit)
    if after is not None:
        statement = statement.where(Contact.id > after)
    return list((await session.execute(statement)).scalars())


async def search_contacts(
    *, session: AsyncSession, groups: Sequence[FilterGroup], offset: int, limit: int
) -> tuple[int, list[Contact]]:
    """Matching contacts ordered by id: (total number of matches, one page)."""
    condition = search_condition(groups, model=Contact)
    count = select(func.count()).select_from(Contact).where(_ACTIVE, condition)
    total = (await session.execute(count)).scalar_one()
    statement = select(Contact).where(_ACTIVE, condition).order_by(Contact.id).offset(offset).limit(limit)
    return int(total), list((await session.execute(statement)).scalars())
