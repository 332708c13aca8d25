"""Response models, used for the OpenAPI documentation (handlers return ready JSON)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field


class SimplePublicObject(BaseModel):
    id: str
    properties: dict[str, str | None]
    createdAt: str
    updatedAt: str
    archived: bool = False


class NextPage(BaseModel):
    after: str


class Paging(BaseModel):
    next: NextPage


class CollectionResponse(BaseModel):
    results: list[SimplePublicObject]
    paging: Paging | None = None


class SearchResponse(CollectionResponse):
    total: int


class BatchUpsertResult(SimplePublicObject):
    new: bool


class BatchUpsertResponse(BaseModel):
    status: Literal["COMPLETE"]
    results: list[BatchUpsertResult]
    startedAt: str
    completedAt: str


class AssociationTypeOut(BaseModel):
    category: str
    typeId: int
    label: str | None = None


class AssociationResult(BaseModel):
    toObjectId: str
    associationTypes: list[AssociationTypeOut]


class AssociationsResponse(BaseModel):
    results: list[AssociationResult]


class ErrorResponse(BaseModel):
    status: Literal["error"]
    message: str
    category: str
    correlationId: str
    errors: list[dict[str, Any]] = Field(default_factory=list)


class Health(BaseModel):
    status: Literal["ok"]


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` argument documenting HubSpot-style errors for a route."""
    return {code: {"model": ErrorResponse} for code in codes}
