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


class AssociatedId(BaseModel):
    id: str
    type: str = Field(description="e.g. `contact_to_ticket`")


class AssociatedIds(BaseModel):
    results: list[AssociatedId]
    paging: Paging | None = None


class SimplePublicObjectWithAssociations(SimplePublicObject):
    associations: dict[str, AssociatedIds] | None = Field(
        default=None, description="With `?associations=`: associated ids per object type (absent when none)"
    )


class BatchReadError(BaseModel):
    status: Literal["error"]
    category: str
    message: str
    context: dict[str, list[str]]


class BatchReadResponse(BaseModel):
    status: Literal["COMPLETE"]
    results: list[SimplePublicObject]
    startedAt: str
    completedAt: str
    numErrors: int | None = Field(default=None, description="Only with status 207")
    errors: list[BatchReadError] | None = Field(default=None, description="Only with status 207")


class V4AssociationType(BaseModel):
    category: Literal["HUBSPOT_DEFINED"]
    typeId: int
    label: str | None = None


class V4Association(BaseModel):
    toObjectId: int
    associationTypes: list[V4AssociationType]


class V4AssociationsPage(BaseModel):
    results: list[V4Association]
    paging: Paging | None = None


class ObjectRef(BaseModel):
    id: str


class AssociationSpec(BaseModel):
    associationCategory: Literal["HUBSPOT_DEFINED"]
    associationTypeId: int


class DefaultAssociation(BaseModel):
    from_: ObjectRef = Field(alias="from")
    to: ObjectRef
    associationSpec: AssociationSpec


class DefaultAssociationResponse(BaseModel):
    status: Literal["COMPLETE"]
    results: list[DefaultAssociation]
    startedAt: str
    completedAt: str


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
