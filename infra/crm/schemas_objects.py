"""Request models for companies, tickets and deals, plus batch read.

Properties are HubSpot-style strings. The properties HubSpot defines for a type are declared (and
validated: pipeline stages, numbers, dates) so ``/docs`` shows them; any other property name is
accepted and stored as a string, like a custom property. ``null`` clears a property.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

from infra.crm.schemas import READ_ONLY_PROPERTIES, AssociationInput, normalize_timestamp, to_text

_NAME = re.compile(r"^[A-Za-z0-9_]{1,100}$")
_MAX_VALUE = 65536

TICKET_STAGES = {"1": "New", "2": "Waiting on contact", "3": "Waiting on us", "4": "Closed"}
DEAL_STAGES = (
    "appointmentscheduled",
    "qualifiedtobuy",
    "presentationscheduled",
    "decisionmakerboughtin",
    "contractsent",
    "closedwon",
    "closedlost",
)
TicketStage = Literal["1", "2", "3", "4"]
DealStage = Literal[
    "appointmentscheduled",
    "qualifiedtobuy",
    "presentationscheduled",
    "decisionmakerboughtin",
    "contractsent",
    "closedwon",
    "closedlost",
]


class ObjectProperties(BaseModel):
    """Any properties; values become strings (numbers/booleans coerced, null clears)."""

    model_config = ConfigDict(extra="allow")

    @model_validator(mode="before")
    @classmethod
    def _as_strings(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            raise ValueError("properties must be an object of name: value")
        bad = sorted(str(name) for name in data if not isinstance(name, str) or not _NAME.match(name))
        if bad:
            raise ValueError(f"invalid property names: {bad}")
        read_only = sorted(READ_ONLY_PROPERTIES & data.keys())
        if read_only:
            raise ValueError(f"read-only properties cannot be set: {read_only}")
        coerced = {name: to_text(value) for name, value in data.items()}
        for name, value in coerced.items():
            if not isinstance(value, str) or len(value) > _MAX_VALUE:
                raise ValueError(f"property {name} must be a string of at most {_MAX_VALUE} characters")
        return coerced

    def as_dict(self) -> dict[str, str]:
        return {name: str(value) for name, value in self.model_dump(exclude_unset=True).items()}


Text = Annotated[str, StringConstraints(max_length=_MAX_VALUE)]


class CompanyProperties(ObjectProperties):
    name: Text | None = None
    domain: Text | None = Field(default=None, description="Stored lowercased, without scheme or trailing /")
    phone: Text | None = None
    city: Text | None = None
    country: Text | None = None
    industry: Text | None = None

    @field_validator("domain")
    @classmethod
    def _domain(cls, value: str | None) -> str | None:
        if value is None:
            return None
        domain = value.strip().lower().removeprefix("https://").removeprefix("http://").rstrip("/")
        if any(char.isspace() for char in domain) or "/" in domain:
            raise ValueError(f"{value!r} is not a domain name")
        return domain


class TicketProperties(ObjectProperties):
    subject: Text | None = None
    content: Text | None = None
    hs_pipeline: Literal["0"] | None = Field(default=None, description="Only the default pipeline, `0`")
    hs_pipeline_stage: TicketStage | None = Field(
        default=None, description="1 New, 2 Waiting on contact, 3 Waiting on us, 4 Closed"
    )
    hs_ticket_priority: Literal["", "LOW", "MEDIUM", "HIGH", "URGENT"] | None = None


class DealProperties(ObjectProperties):
    dealname: Text | None = None
    dealstage: DealStage | None = None
    pipeline: Literal["default"] | None = Field(default=None, description="Only the `default` pipeline")
    amount: Text | None = Field(default=None, description="A decimal number, e.g. `1200.50`")
    closedate: Text | None = Field(default=None, description="ISO 8601 or epoch milliseconds")

    @field_validator("amount")
    @classmethod
    def _amount(cls, value: str | None) -> str | None:
        if not value:
            return value
        try:
            number = Decimal(value.strip())
        except InvalidOperation as exc:
            raise ValueError(f"amount {value!r} is not a number") from exc
        if not number.is_finite():
            raise ValueError(f"amount {value!r} is not a number")
        return value.strip()

    @field_validator("closedate")
    @classmethod
    def _closedate(cls, value: str | None) -> str | None:
        return normalize_timestamp(value) if value else value


def _require(properties: ObjectProperties, *names: str) -> None:
    values = properties.as_dict()
    missing = [name for name in names if not values.get(name)]
    if missing:
        raise ValueError(f"required properties missing: {missing}")


class _Create(BaseModel):
    associations: list[AssociationInput] = Field(default_factory=list, max_length=100)


class CompanyCreate(_Create):
    properties: CompanyProperties

    @model_validator(mode="after")
    def _name_or_domain(self) -> CompanyCreate:
        values = self.properties.as_dict()
        if not (values.get("name") or values.get("domain")):
            raise ValueError("a company needs a name or a domain")
        return self


class CompanyUpdate(BaseModel):
    properties: CompanyProperties


class TicketCreate(_Create):
    properties: TicketProperties

    @model_validator(mode="after")
    def _required(self) -> TicketCreate:
        _require(self.properties, "subject", "hs_pipeline_stage")
        return self


class TicketUpdate(BaseModel):
    properties: TicketProperties


class DealCreate(_Create):
    properties: DealProperties

    @model_validator(mode="after")
    def _required(self) -> DealCreate:
        _require(self.properties, "dealname", "dealstage")
        return self


class DealUpdate(BaseModel):
    properties: DealProperties


class BatchReadInput(BaseModel):
    id: Annotated[str, StringConstraints(min_length=1, max_length=254)]


class BatchReadRequest(BaseModel):
    inputs: list[BatchReadInput] = Field(min_length=1, max_length=100)
    properties: list[str] = Field(default_factory=list, description="Properties to return (default: all)")
    propertiesWithHistory: list[str] = Field(default_factory=list, description="Accepted and ignored")
    idProperty: str | None = Field(default=None, description="`email` for contacts; default: the object id")
