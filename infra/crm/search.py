"""Translate HubSpot search ``filterGroups`` into SQL conditions on one object table.

Groups are OR-ed, filters inside a group are AND-ed. Comparisons are case-insensitive (a contact's
``email`` is stored lowercased and uses its unique index; a company's ``domain`` has an index on
``lower(properties ->> 'domain')``). ``hs_object_id`` filters on the id. ``CONTAINS_TOKEN`` matches
a whole word, or a pattern where ``*`` stands for any text (``*@example.com``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from sqlalchemy import ColumnElement, Text, and_, false, func, literal_column, not_, or_, true

from infra.crm.models import Contact, CrmObject
from infra.crm.schemas import Filter, FilterGroup

_PROPERTY_NAME = re.compile(r"^[A-Za-z0-9_]{1,100}$")


def _id_condition(model: type[CrmObject], item: Filter) -> ColumnElement[bool]:
    if item.operator in ("HAS_PROPERTY", "NOT_HAS_PROPERTY"):
        return true() if item.operator == "HAS_PROPERTY" else false()
    if item.operator in ("IN", "NOT_IN"):
        ids = [int(value) for value in item.values or [] if value.strip().isdigit()]
        return model.id.in_(ids) if item.operator == "IN" else model.id.not_in(ids)
    value = (item.value or "").strip()
    matches = model.id == int(value) if value.isdigit() else false()
    return not_(matches) if item.operator.startswith("N") else matches


def _property(model: type[CrmObject], name: str) -> tuple[ColumnElement[str | None], ColumnElement[bool]]:
    """The lowercased value of a property and the condition "the property is set"."""
    if model is Contact and name == "email":
        return Contact.email.expression, Contact.email.is_not(None)
    if not _PROPERTY_NAME.match(name):  # validated by the request model; inlined below as a literal
        raise ValueError(f"invalid property name {name!r}")
    # The key is a literal (not a bind parameter) so expression indexes such as
    # lower(properties ->> 'domain') can be used.
    raw = model.properties.op("->>", return_type=Text)(literal_column(f"'{name}'"))
    return func.lower(raw), and_(raw.is_not(None), raw != "")


def _token_match(column: ColumnElement[str | None], value: str) -> ColumnElement[bool]:
    if "*" in value:
        escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        return column.like(escaped.replace("*", "%"), escape="\\")
    return column.regexp_match(f"(^|[^[:alnum:]_]){re.escape(value)}($|[^[:alnum:]_])")


def filter_condition(item: Filter, *, model: type[CrmObject]) -> ColumnElement[bool]:
    if item.propertyName == "hs_object_id":
        return _id_condition(model, item)
    column, has = _property(model, item.propertyName)
    value = (item.value or "").lower()
    if item.operator == "EQ":
        return column == value
    if item.operator == "NEQ":
        return column.is_distinct_from(value)
    if item.operator == "HAS_PROPERTY":
        return has
    if item.operator == "NOT_HAS_PROPERTY":
        return ~has
    if item.operator in ("IN", "NOT_IN"):
        values = [entry.lower() for entry in item.values or []]
        return column.in_(values) if item.operator == "IN" else or_(column.is_(None), column.not_in(values))
    matches = and_(column.is_not(None), _token_match(column, value))
    return matches if item.operator == "CONTAINS_TOKEN" else not_(matches)


def search_condition(groups: Sequence[FilterGroup], *, model: type[CrmObject]) -> ColumnElement[bool]:
    """The WHERE condition for ``filterGroups`` (no groups: every object)."""
    if not groups:
        return true()
    return or_(
        *(and_(true(), *(filter_condition(item, model=model) for item in group.filters)) for group in groups)
    )
