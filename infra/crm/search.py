"""Translate HubSpot search ``filterGroups`` into SQL conditions on contacts.

Groups are OR-ed, filters inside a group are AND-ed. Comparisons are case-insensitive (``email``
is stored lowercased and uses its unique index). ``hs_object_id`` filters on the id.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import ColumnElement, and_, false, func, or_, true

from infra.crm.models import Contact
from infra.crm.schemas import Filter, FilterGroup


def _id_condition(item: Filter) -> ColumnElement[bool]:
    value = (item.value or "").strip()
    if item.operator in ("HAS_PROPERTY", "NOT_HAS_PROPERTY"):
        return true() if item.operator == "HAS_PROPERTY" else false()
    if not value.isdigit():
        return false() if item.operator == "EQ" else true()
    return Contact.id == int(value) if item.operator == "EQ" else Contact.id != int(value)


def filter_condition(item: Filter) -> ColumnElement[bool]:
    if item.propertyName == "hs_object_id":
        return _id_condition(item)
    value = (item.value or "").lower()
    column: ColumnElement[str | None]
    has: ColumnElement[bool]
    if item.propertyName == "email":
        column = Contact.email.expression
        has = Contact.email.is_not(None)
    else:
        raw = Contact.properties[item.propertyName].astext
        column = func.lower(raw)
        has = and_(raw.is_not(None), raw != "")
    if item.operator == "EQ":
        return column == value
    if item.operator == "NEQ":
        return column.is_distinct_from(value)
    if item.operator == "HAS_PROPERTY":
        return has
    return ~has


def search_condition(groups: Sequence[FilterGroup]) -> ColumnElement[bool]:
    """The WHERE condition for ``filterGroups`` (no groups: every contact)."""
    if not groups:
        return true()
    return or_(*(and_(true(), *(filter_condition(item) for item in group.filters)) for group in groups))
