"""Alembic environment for mailspine's own tables (configured in code by ``app.migrate``)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool

import app.models_auth
import app.models_eval
import app.models_guard
import app.models_llm
import app.models_online
import app.models_pii
import app.models_prompts
import app.models_tools  # noqa: F401  (their tables join Base.metadata)
from app.models import Base

config = context.config
url = config.get_main_option("sqlalchemy.url")
assert url, "app.migrate sets sqlalchemy.url"


def include_object(obj: object, name: str | None, type_: str, reflected: bool, compare_to: object) -> bool:
    # Autogenerate compares only our own tables: procrastinate's and LangGraph's are managed elsewhere.
    return not (type_ == "table" and reflected and compare_to is None)


engine = create_engine(url, poolclass=pool.NullPool)
with engine.connect() as connection:
    context.configure(
        connection=connection, target_metadata=Base.metadata, compare_type=True, include_object=include_object
    )
    with context.begin_transaction():
        context.run_migrations()
engine.dispose()
