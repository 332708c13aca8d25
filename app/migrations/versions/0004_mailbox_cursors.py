"""mailbox cursors, the UID key per folder, conversation id

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "mailbox_cursors",
        sa.Column("account", sa.String(length=200), nullable=False),
        sa.Column("folder", sa.String(length=500), nullable=False),
        sa.Column("uidvalidity", sa.BigInteger(), nullable=False),
        sa.Column("last_uid", sa.BigInteger(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("account", "folder"),
    )
    # UIDs are unique per folder, not per account.
    op.drop_constraint("uq_emails_mailbox_uid", "emails", type_="unique")
    op.create_unique_constraint(
        "uq_emails_mailbox_uid", "emails", ["account", "folder", "uidvalidity", "uid"]
    )
    op.add_column("emails", sa.Column("conversation_id", sa.String(length=998), nullable=True))
    op.create_index("ix_emails_conversation_id", "emails", ["conversation_id"])


def downgrade() -> None:
    op.drop_index("ix_emails_conversation_id", table_name="emails")
    op.drop_column("emails", "conversation_id")
    op.drop_constraint("uq_emails_mailbox_uid", "emails", type_="unique")
    op.create_unique_constraint("uq_emails_mailbox_uid", "emails", ["account", "uidvalidity", "uid"])
    op.drop_table("mailbox_cursors")
