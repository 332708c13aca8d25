"""Repository functions for associations between any two object types (both directions stored)."""

from __future__ import annotations

from sqlalchemy import and_, delete, or_, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from infra.crm.association_types import default_type_id
from infra.crm.models import Association
from infra.crm.objects import ObjectType


def _type_ids(source: ObjectType, target: ObjectType) -> tuple[int, int]:
    forward, inverse = default_type_id(source, target), default_type_id(target, source)
    if forward is None or inverse is None:
        raise ValueError(f"{source.name} cannot be associated with {target.name}")
    return forward, inverse


async def associate(
    *, session: AsyncSession, source: ObjectType, source_id: int, target: ObjectType, target_id: int
) -> tuple[int, int]:
    """Store the default association both ways; repeating it is a no-op. Returns (type id, inverse id)."""
    forward, inverse = _type_ids(source, target)
    rows: list[dict[str, str | int]] = [
        {
            "from_type": source.name,
            "from_id": source_id,
            "to_type": target.name,
            "to_id": target_id,
            "type_id": forward,
        },
        {
            "from_type": target.name,
            "from_id": target_id,
            "to_type": source.name,
            "to_id": source_id,
            "type_id": inverse,
        },
    ]
    # A fixed row order, so two requests linking the same pair from either side cannot deadlock.
    rows.sort(key=lambda row: (str(row["from_type"]), int(row["from_id"])))
    await session.execute(insert(Association).values(rows).on_conflict_do_nothing())
    return forward, inverse


async def dissociate(
    *, session: AsyncSession, source: ObjectType, source_id: int, target: ObjectType, target_id: int
) -> int:
    """Remove every association between the two objects (both directions); returns rows removed."""
    one_way = and_(
        Association.from_type == source.name,
        Association.from_id == source_id,
        Association.to_type == target.name,
        Association.to_id == target_id,
    )
    other_way = and_(
        Association.from_type == target.name,
        Association.from_id == target_id,
        Association.to_type == source.name,
        Association.to_id == source_id,
    )
    result = await session.execute(
        delete(Association).where(or_(one_way, other_way)).returning(Association.to_id)
    )
    return len(result.all())


async def list_page(
    *,
    session: AsyncSession,
    source: ObjectType,
    source_id: int,
    target: ObjectType,
    after: int | None,
    limit: int,
) -> tuple[list[Association], int | None]:
    """Associations to up to ``limit`` target objects with ids above ``after``, ordered by target id,
    and the cursor of the next page (None on the last page)."""
    mine = and_(
        Association.from_type == source.name,
        Association.from_id == source_id,
        Association.to_type == target.name,
    )
    ids_statement = (
        select(Association.to_id).where(mine).group_by(Association.to_id).order_by(Association.to_id)
    )
    if after is not None:
        ids_statement = ids_statement.where(Association.to_id > after)
    ids = list((await session.execute(ids_statement.limit(limit + 1))).scalars())
    page, more = ids[:limit], len(ids) > limit
    if not page:
        return [], None
    rows_statement = (
        select(Association)
        .where(mine, Association.to_id.in_(page))
        .order_by(Association.to_id, Association.type_id)
    )
    rows = list((await session.execute(rows_statement)).scalars())
    return rows, page[-1] if more else None
