"""Pydantic request models, HubSpot CRM v3 shapes. Validation failures become 400 VALIDATION_ERROR."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, Field, StringConstraints, field_validator, model_validator

READ_ONLY_PROPERTIES = frozenset(
    {"hs_object_id", "createdate", "lastmodifieddate", "hs_createdate", "hs_lastmodifieddate"}
)
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_OBJECT_ID = re.compile(r"^[0-9]{1,18}$")


def to_text(value: object) -> object:
    """HubSpot property values are strings: numbers and booleans are coerced, null clears."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value


PropertyName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_]{1,100}$")]
PropertyText = Annotated[str, BeforeValidator(to_text), StringConstraints(max_length=65536)]
Properties = dict[PropertyName, PropertyText]


def parse_object_id(value: str) -> int | None:
    """An object id from a path segment; None when it cannot be an id (not digits, too long)."""
    return int(value) if _OBJECT_ID.match(value) else None


def normalize_email(value: str) -> str:
    email = value.strip().lower()
    if not _EMAIL.match(email):
        raise ValueError(f"{value!r} is not a valid email address")
    return email


def normalize_timestamp(value: str) -> str:
    """Accept epoch milliseconds or ISO 8601 (naive means UTC); return ISO 8601 UTC with millis."""
    text = value.strip()
    try:
        if text.isdigit():
            moment = datetime.fromtimestamp(int(text) / 1000, UTC)
        else:
            moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ValueError(f"{value!r} is neither ISO 8601 nor epoch milliseconds") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class ContactInput(BaseModel):
    properties: Properties = Field(default_factory=dict)

    @field_validator("properties")
    @classmethod
    def _contact_properties(cls, value: dict[str, str]) -> dict[str, str]:
        read_only = sorted(READ_ONLY_PROPERTIES & value.keys())
        if read_only:
            raise ValueError(f"read-only properties cannot be set: {read_only}")
        if value.get("email"):
            value["email"] = normalize_email(value["email"])
        return value


Operator = Literal[
    "EQ", "NEQ", "HAS_PROPERTY", "NOT_HAS_PROPERTY", "CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN", "IN", "NOT_IN"
]


class Filter(BaseModel):
    propertyName: PropertyName
    operator: Operator
    value: PropertyText | None = None
    values: list[PropertyText] | None = Field(default=None, max_length=100, description="For IN / NOT_IN")

    @model_validator(mode="after")
    def _value_needed(self) -> Filter:
        if self.operator in ("EQ", "NEQ", "CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN") and self.value is None:
            raise ValueError(f"operator {self.operator} needs a value")
        if self.operator in ("IN", "NOT_IN") and self.values is None:
            raise ValueError(f"operator {self.operator} needs values")
        return self


class FilterGroup(BaseModel):
    filters: list[Filter] = Field(default_factory=list, max_length=6)


class SearchRequest(BaseModel):
    filterGroups: list[FilterGroup] = Field(default_factory=list, max_length=5)
    limit: int = Field(default=10, ge=1, le=200)
    after: Annotated[str, StringConstraints(pattern=r"^[0-9]{1,9}$")] | None = None
    properties: list[str] = Field(default_factory=list)
    sorts: list[Any] = Field(default_factory=list, description="Accepted and ignored: results are by id.")


class UpsertInput(ContactInput):
    idProperty: Literal["email"]
    id: Annotated[str, StringConstraints(max_length=254)]

    @model_validator(mode="after")
    def _email_id(self) -> UpsertInput:
        self.id = normalize_email(self.id)
        if self.properties.get("email", self.id) != self.id:
            raise ValueError("properties.email differs from the email given as id")
        return self


class BatchUpsertRequest(BaseModel):
    inputs: list[UpsertInput] = Field(min_length=1, max_length=100)

    @model_validator(mode="after")
    def _unique_ids(self) -> BatchUpsertRequest:
        ids = [item.id for item in self.inputs]
        duplicates = sorted({email for email in ids if ids.count(email) > 1})
        if duplicates:
            raise ValueError(f"Duplicate IDs found in batch input: {duplicates}")
        return self


class AssociationType(BaseModel):
    associationCategory: Literal["HUBSPOT_DEFINED", "USER_DEFINED", "INTEGRATOR_DEFINED"]
    associationTypeId: int


class AssociationTarget(BaseModel):
    id: Annotated[str, StringConstraints(pattern=r"^[0-9]{1,18}$")]


class AssociationInput(BaseModel):
    to: AssociationTarget
    types: list[AssociationType] = Field(min_length=1)


class ContactCreate(ContactInput):
    associations: list[AssociationInput] = Field(default_factory=list, max_length=100)


class NoteCreate(BaseModel):
    properties: Properties
    associations: list[AssociationInput] = Field(default_factory=list, max_length=100)

    @field_validator("properties")
    @classmethod
    def _note_properties(cls, value: dict[str, str]) -> dict[str, str]:
        read_only = sorted(READ_ONLY_PROPERTIES & value.keys())
        if read_only:
            raise ValueError(f"read-only properties cannot be set: {read_only}")
        if not value.get("hs_timestamp"):
            raise ValueError("hs_timestamp is required")
        value["hs_timestamp"] = normalize_timestamp(value["hs_timestamp"])
        return value
