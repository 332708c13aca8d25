"""Typed model inputs and outputs.

Docstrings and field descriptions of these classes reach the model (they become the tool
schema of a structured-output call), so they are written as instructions.
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field


class Intent(StrEnum):
    ORDER_STATUS = "order_status"
    REFUND_REQUEST = "refund_request"
    CANCELLATION = "cancellation"
    COMPLAINT = "complaint"
    SALES_INQUIRY = "sales_inquiry"
    SUPPORT_QUESTION = "support_question"
    INVOICE = "invoice"
    NEWSLETTER = "newsletter"
    SPAM = "spam"
    OTHER = "other"


Urgency = Literal["low", "normal", "high"]
Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$", description="ISO 4217 code, e.g. EUR")]


class Money(BaseModel):
    """An amount of money mentioned in the email."""

    model_config = ConfigDict(frozen=True)

    value: Decimal = Field(ge=0, description="The amount as a plain number, e.g. 129.90")
    currency: Currency


class Extraction(BaseModel):
    """Structured facts extracted from one customer email. Extract only what the email states."""

    intent: Intent = Field(description="The single main purpose of the email")
    sender_name: str | None = Field(default=None, max_length=200)
    sender_email: str | None = Field(default=None, max_length=320)
    company: str | None = Field(default=None, max_length=200, description="The sender's company, if stated")
    order_ids: list[Annotated[str, Field(max_length=64)]] = Field(
        default_factory=list, max_length=20, description="Order numbers the sender refers to"
    )
    amounts: list[Money] = Field(default_factory=list, max_length=20)
    urgency: Urgency = "normal"
    language: str = Field(default="en", pattern=r"^[a-z]{2}$", description="ISO 639-1 language code")
    legal_threat: bool = Field(default=False, description="True if the sender threatens legal action")
    summary: str = Field(max_length=500, description="One or two neutral sentences")
    confidence: float = Field(ge=0.0, le=1.0, description="How sure you are of the intent")
