"""Repositories: keyword-only async functions over an ``AsyncSession``; lookups return ``X | None``."""
