"""Revisions of the reference CRM schema."""
