"""The closed set of side-effecting actions: the typed inputs of the write tools.

A plan may only propose these; their docstrings and field descriptions reach the planner model.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field


class CrmUpsertContact(BaseModel):
    """Create or update the sender's contact record in the CRM."""

    model_config = ConfigDict(frozen=True)
    kind: Literal["crm_upsert_contact"] = "crm_upsert_contact"
    email: EmailStr
    firstname: str | None = Field(default=None, max_length=100)
    lastname: str | None = Field(default=None, max_length=100)
    company: str | None = Field(default=None, max_length=200)


class CrmAddNote(BaseModel):
    """Attach a note about this email to the sender's CRM contact."""

    model_config = ConfigDict(frozen=True)
    kind: Literal["crm_add_note"] = "crm_add_note"
    contact_email: EmailStr
    body: str = Field(max_length=4000)


class DraftReply(BaseModel):
    """Draft a reply to the sender (a person may review it before it is sent)."""

    model_config = ConfigDict(frozen=True)
    kind: Literal["draft_reply"] = "draft_reply"
    to: EmailStr
    subject: str = Field(max_length=300)
    body: str = Field(max_length=8000)


Action = Annotated[CrmUpsertContact | CrmAddNote | DraftReply, Field(discriminator="kind")]


class Plan(BaseModel):
    """The actions to take for this email, chosen only from the allowed action kinds."""

    actions: list[Action] = Field(default_factory=list, max_length=10)
    rationale: str = Field(max_length=1000, description="Why these actions, in one or two sentences")
