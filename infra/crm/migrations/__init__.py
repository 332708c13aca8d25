"""Alembic environment of the reference CRM (a package so that installs ship it)."""
