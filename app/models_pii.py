"""The PII vault: placeholder → real value per email, encrypted at rest (Fernet)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, ForeignKey, LargeBinary, String, func
from sqlalchemy.orm import Mapped, mapped_column

from app.models import Base


class PiiVaultEntry(Base):
    __tablename__ = "pii_vault"

    email_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("emails.id"), primary_key=True)
    token: Mapped[str] = mapped_column(String(100), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
