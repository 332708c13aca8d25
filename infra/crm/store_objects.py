"""Repository functions for any object type (keyword-only; lookups return ``X | None``).

Contacts keep their own functions in ``store.py`` for what depends on the email column.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import func, literal, select, update
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.ext.asyncio import AsyncSession

from infra.crm.models import CrmObject
from infra.crm.objects import ObjectType
from infra.crm.schemas import FilterGroup
from infra.crm.search import search_condition

_FRESH = {"populate_existing": True}


async def get_object(*, session: AsyncSession, kind: ObjectType, object_id: int) -> CrmObject | None:
    model = kind.model
    statement = select(model).where(model.id == object_id, model.archived.is_(False))
    return (await session.execute(statement)).scalar_one_or_none()


async def get_objects(
    *, session: AsyncSession, kind: ObjectType, object_ids: Iterable[int]
) -> dict[int, CrmObject]:
    """The existing objects among ``object_ids``, by id."""
    wanted = set(object_ids)
    if not wanted:
        return {}
    model = kind.model
    statement = select(model).where(model.id.in_(wanted), model.archived.is_(False))
    return {row.id: row for row in (await session.execute(statement)).scalars()}


async def lock_existing(*, session: AsyncSession, kind: ObjectType, object_ids: Iterable[int]) -> set[int]:
    """The ids among ``object_ids`` that exist, share-locked until the end of the transaction."""
    wanted = set(object_ids)
    if not wanted:
        return set()
    model = kind.model
    statement = (
        select(model.id)
        .where(model.id.in_(wanted), model.archived.is_(False))
        .order_by(model.id)
        .with_for_update(read=True)
    )
    return set((await session.execute(statement)).scalars())


async def insert_object(*, session: AsyncSession, kind: ObjectType, properties: dict[str, str]) -> CrmObject:
    statement = insert(kind.model).values(properties=properties).returning(kind.model)
    return (await session.execute(statement, execution_options=_FRESH)).scalar_one()


async def update_object(
    *, session: AsyncSession, kind: ObjectType, object_id: int, properties: dict[str, str]
) -> CrmObject | None:
    """Merge ``properties`` into an object; None when it does not exist."""
    model = kind.model
    statement = (
        update(model)
        .where(model.id == object_id, model.archived.is_(False))
        .values(
            properties=model.properties.op("||", return_type=JSONB)(literal(properties, JSONB)),
            updated_at=func.now(),
        )
        .returning(model)
    )
    return (await session.execute(statement, execution_options=_FRESH)).scalar_one_or_none()


async def list_objects(
    *, session: AsyncSession, kind: ObjectType, after: int | None, limit: int
) -> list[CrmObject]:
    """Objects ordered by id, starting after the ``after`` id."""
    model = kind.model
    statement = select(model).where(model.archived.is_(False)).order_by(model.id).limit(limit)
    if after is not None:
        statement = statement.where(model.id > after)
    return list((await session.execute(statement)).scalars())


async def search_objects(
    *, session: AsyncSession, kind: ObjectType, groups: Sequence[FilterGroup], offset: int, limit: int
) -> tuple[int, list[CrmObject]]:
    """Matching objects ordered by id: (total number of matches, one page)."""
    model = kind.model
    condition = search_condition(groups, model=model)
    active = model.archived.is_(False)
    total = (
        await session.execute(select(func.count()).select_from(model).where(active, condition))
    ).scalar_one()
    statement = select(model).where(active, condition).order_by(model.id).offset(offset).limit(limit)
    return int(total), list((await session.execute(statement)).scalars())
