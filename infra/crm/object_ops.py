"""Shared steps of the object endpoints: association inputs on create, ``?associations=`` on reads."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from infra.crm import association_types, store_associations, store_objects
from infra.crm.auth import check_scopes
from infra.crm.errors import OBJECT_NOT_FOUND, VALIDATION_ERROR, CrmError
from infra.crm.objects import ALL_TYPES, ObjectType, resolve
from infra.crm.schemas import AssociationInput
from infra.crm.tokens import Principal

Targets = list[tuple[ObjectType, int]]

# ``?associations=`` returns at most this many per type; the v4 endpoint pages through all of them.
EMBEDDED_ASSOCIATIONS_LIMIT = 500


def not_found(kind: ObjectType, object_id: str) -> CrmError:
    return CrmError(404, OBJECT_NOT_FOUND, f"{kind.label} {object_id} does not exist.")


def object_type(name: str) -> ObjectType:
    """The object type named in a path or query (400 when unknown)."""
    kind = resolve(name)
    if kind is None:
        known = ", ".join(each.name for each in ALL_TYPES)
        raise CrmError(400, VALIDATION_ERROR, f"Unable to infer object type from: {name} (known: {known}).")
    return kind


def association_targets(kind: ObjectType, associations: Sequence[AssociationInput]) -> Targets:
    """The (type, id) targets of a create request's ``associations``; 400 on unsupported types."""
    targets: set[tuple[str, int]] = set()
    for association in associations:
        for spec in association.types:
            target = association_types.target_of(kind, spec.associationTypeId)
            if spec.associationCategory != association_types.HUBSPOT_DEFINED or target is None:
                raise CrmError(
                    400,
                    VALIDATION_ERROR,
                    f"Unsupported association type {spec.associationCategory}/{spec.associationTypeId} "
                    f"for a {kind.singular}: supported are HUBSPOT_DEFINED "
                    f"{association_types.supported_from(kind)}.",
                )
            targets.add((target, int(association.to.id)))
    order = {each.name: index for index, each in enumerate(ALL_TYPES)}
    return [
        (object_type(name), object_id)
        for name, object_id in sorted(targets, key=lambda t: (order[t[0]], t[1]))
    ]


async def require_targets(session: AsyncSession, kind: ObjectType, targets: Targets) -> None:
    """Share-lock the targets until commit; 404 naming the ones that do not exist."""
    problems: list[str] = []
    missing_ids: list[str] = []
    for target in ALL_TYPES:
        wanted = [object_id for target_kind, object_id in targets if target_kind is target]
        if not wanted:
            continue
        found = await store_objects.lock_existing(session=session, kind=target, object_ids=wanted)
        missing = sorted(set(wanted) - found)
        if missing:
            problems.append(f"{target.singular}(s) {', '.join(map(str, missing))}")
            missing_ids += [str(object_id) for object_id in missing]
    if problems:
        raise CrmError(
            404,
            OBJECT_NOT_FOUND,
            f"Cannot associate the {kind.singular}: {'; '.join(problems)} do not exist.",
            errors=[{"message": "Associated object not found", "context": {"id": missing_ids}}],
        )


async def link(session: AsyncSession, kind: ObjectType, object_id: int, targets: Targets) -> None:
    for target, target_id in targets:
        await store_associations.associate(
            session=session, source=kind, source_id=object_id, target=target, target_id=target_id
        )


def requested_association_types(
    principal: Principal, kind: ObjectType, names: list[str] | None
) -> list[ObjectType]:
    """The types named by ``?associations=``; each needs its read scope (403) and a default type (400)."""
    kinds = [object_type(name) for name in names or []]
    check_scopes(principal, *(target.read_scope for target in kinds))
    for target in kinds:
        if association_types.default_type_id(kind, target) is None:
            raise CrmError(400, VALIDATION_ERROR, f"{kind.name} cannot be associated with {target.name}.")
    return list(dict.fromkeys(kinds))


async def embedded_associations(
    session: AsyncSession, kind: ObjectType, object_id: int, targets: list[ObjectType]
) -> dict[str, Any]:
    """The v3 ``associations`` block: ``{"contacts": {"results": [{"id", "type"}], "paging"?}}``."""
    block: dict[str, Any] = {}
    for target in targets:
        rows, next_after = await store_associations.list_page(
            session=session,
            source=kind,
            source_id=object_id,
            target=target,
            after=None,
            limit=EMBEDDED_ASSOCIATIONS_LIMIT,
        )
        name = association_types.label(kind, target)
        entry: dict[str, Any] = {"results": [{"id": str(row.to_id), "type": name} for row in rows]}
        if next_after is not None:
            entry["paging"] = {"next": {"after": str(next_after)}}
        if rows:
            block[target.name] = entry
    return block
