"""SQLAlchemy declarative models. Every table lives in the PostgreSQL schema ``crm``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    MetaData,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

SCHEMA = "crm"

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(schema=SCHEMA, naming_convention=NAMING_CONVENTION)


def _created_at() -> Mapped[datetime]:
    return mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())


class CrmObject(Base):
    """Columns every CRM record has: HubSpot-style string properties in JSONB, timestamps, archived."""

    __abstract__ = True

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    properties: Mapped[dict[str, Any]] = mapped_column(
        JSONB, nullable=False, server_default=text("'{}'::jsonb")
    )
    created_at: Mapped[datetime] = _created_at()
    updated_at: Mapped[datetime] = _created_at()
    archived: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("false"))


class Contact(CrmObject):
    __tablename__ = "contacts"
    __table_args__ = (CheckConstraint("email = lower(email)", name="email_lowercase"),)

    email: Mapped[str | None] = mapped_column(Text, unique=True)


class Note(CrmObject):
    __tablename__ = "notes"


class Company(CrmObject):
    """Searchable by ``domain`` (stored lowercased, expression index) and ``name``."""

    __tablename__ = "companies"
    __table_args__ = (Index("ix_companies_domain", func.lower(text("properties ->> 'domain'"))),)


class Ticket(CrmObject):
    __tablename__ = "tickets"


class Deal(CrmObject):
    __tablename__ = "deals"


class Association(Base):
    """A directed association; both directions are stored, like HubSpot reports them."""

    __tablename__ = "associations"

    from_type: Mapped[str] = mapped_column(Text, primary_key=True)
    from_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    to_type: Mapped[str] = mapped_column(Text, primary_key=True)
    to_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    type_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[datetime] = _created_at()


class Token(Base):
    __tablename__ = "tokens"
    __table_args__ = (CheckConstraint("length(token_sha256) = 64", name="token_sha256_hex"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    name: Mapped[str] = mapped_column(Text, nullable=False)
    token_sha256: Mapped[str] = mapped_column(Text, nullable=False, unique=True)
    scopes: Mapped[list[str]] = mapped_column(ARRAY(Text), nullable=False)
    created_at: Mapped[datetime] = _created_at()
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class IdempotencyKey(Base):
    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("token_id", "key"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    key: Mapped[str] = mapped_column(Text, nullable=False)
    token_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("tokens.id", ondelete="CASCADE"), nullable=False
    )
    method: Mapped[str] = mapped_column(Text, nullable=False)
    path: Mapped[str] = mapped_column(Text, nullable=False)
    request_sha256: Mapped[str] = mapped_column(Text, nullable=False)
    status_code: Mapped[int | None] = mapped_column(Integer)
    response_json: Mapped[Any] = mapped_column(JSONB, nullable=True)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now(), index=True
    )
