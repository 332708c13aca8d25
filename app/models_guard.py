"""Tables of the guard part of the gateway (same metadata as `app.models`).

``injection_corpus`` exists only in databases with pgvector (migration 0006 skips it elsewhere);
the code reaches it through ``app.repo.injection_corpus`` (psycopg), this model documents it.
"""

from __future__ import annotations

from typing import Any

from pgvector.sqlalchemy import Vector
from sqlalchemy import Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.models import Base

EMBEDDING_DIM = 384  # all-MiniLM-L6-v2


class InjectionCorpusEntry(Base):
    __tablename__ = "injection_corpus"
    __table_args__ = (
        Index(
            "ix_injection_corpus_embedding",
            "embedding",
            postgresql_using="hnsw",
            postgresql_ops={"embedding": "vector_cosine_ops"},
        ),
    )

    id: Mapped[str] = mapped_column(Text, primary_key=True)  # sha256 of the text, first 24 hex digits
    text: Mapped[str] = mapped_column(Text)
    lang: Mapped[str] = mapped_column(String(8))
    embedding: Mapped[Any] = mapped_column(Vector(EMBEDDING_DIM))


__all__ = ["Base", "InjectionCorpusEntry"]
