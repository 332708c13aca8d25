"""audit_log: trace id, payload hash, hash version; an anchor for tail removal; role-level append-only

- ``trace_id``, ``payload_sha256`` and ``hash_version`` columns. Rows written before this revision
  keep ``hash_version = 1`` (their hash covers neither the time nor the new fields); new rows are
  version 2 (see ``app.repo.audit``).
- ``audit_anchor``: one row holding the id, hash and count of the last appended row, kept by an
  ``AFTER INSERT`` trigger in the same transaction as the append (a rolled-back append leaves it as
  it was). ``mailspine audit verify`` compares the log's tail with it, so removing the last rows is
  detected, which the chain alone cannot see. Only that trigger may change the anchor.
- ``TRUNCATE`` on ``audit_log`` is refused by a statement trigger, and UPDATE, DELETE and TRUNCATE
  on both tables are revoked from PUBLIC and from every role other than the owner that holds them.

Revision ID: 0013
Revises: 0009
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("audit_log", sa.Column("trace_id", sa.String(length=32), nullable=True))
    op.add_column("audit_log", sa.Column("payload_sha256", sa.String(length=64), nullable=True))
    # Existing rows become version 1; new rows always state their version (no default afterwards).
    op.add_column(
        "audit_log",
        sa.Column("hash_version", sa.SmallInteger(), server_default=sa.text("1"), nullable=False),
    )
    op.alter_column("audit_log", "hash_version", server_default=None)
    op.create_index("ix_audit_log_action", "audit_log", ["action", "id"])

    op.create_table(
        "audit_anchor",
        sa.Column("singleton", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("last_id", sa.BigInteger(), nullable=False),
        sa.Column("last_hash", sa.String(length=64), nullable=False),
        sa.Column("row_count", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("singleton"),
        sa.CheckConstraint("singleton", name="ck_audit_anchor_singleton"),
    )
    op.execute(
        """
        INSERT INTO audit_anchor (singleton, last_id, last_hash, row_count)
        SELECT true, coalesce(max(id), 0),
               coalesce((SELECT hash FROM audit_log ORDER BY id DESC LIMIT 1), repeat('0', 64)),
               count(*)
        FROM audit_log
        """
    )
    # SECURITY DEFINER: the application's role needs no privilege on audit_anchor to append.
    op.execute(
        """
        CREATE OR REPLACE FUNCTION mailspine_audit_anchor() RETURNS trigger
        LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
        BEGIN
            UPDATE audit_anchor SET last_id = NEW.id, last_hash = NEW.hash, row_count = row_count + 1;
            RETURN NULL;
        END;
        $$;
        """
    )
    op.execute(
        "CREATE TRIGGER audit_log_anchor AFTER INSERT ON audit_log "
        "FOR EACH ROW EXECUTE FUNCTION mailspine_audit_anchor()"
    )
    # Only the trigger above (nesting depth 2) may update the anchor; nothing may delete it.
    op.execute(
        """
        CREATE OR REPLACE FUNCTION mailspine_audit_anchor_guard() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'UPDATE' AND pg_trigger_depth() > 1 THEN
                RETURN NEW;
            END IF;
            RAISE EXCEPTION 'audit_anchor is maintained by the audit_log trigger only (% refused)', TG_OP;
        END;
        $$;
        """
    )
    op.execute(
        "CREATE TRIGGER audit_anchor_guard BEFORE UPDATE OR DELETE ON audit_anchor "
        "FOR EACH ROW EXECUTE FUNCTION mailspine_audit_anchor_guard()"
    )
    op.execute(
        "CREATE TRIGGER audit_anchor_no_truncate BEFORE TRUNCATE ON audit_anchor "
        "FOR EACH STATEMENT EXECUTE FUNCTION mailspine_audit_anchor_guard()"
    )
    op.execute(
        "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log "
        "FOR EACH STATEMENT EXECUTE FUNCTION mailspine_audit_append_only()"
    )
    # Role level: only the owner keeps UPDATE/DELETE/TRUNCATE (and the owner is not the app's role
    # when the app runs as the dedicated role described in docs/security.md).
    op.execute(
        """
        DO $$
        DECLARE
            grantee_name text;
            tbl text;
        BEGIN
            FOREACH tbl IN ARRAY ARRAY['audit_log', 'audit_anchor'] LOOP
                EXECUTE format('REVOKE UPDATE, DELETE, TRUNCATE ON %I FROM PUBLIC', tbl);
                FOR grantee_name IN
                    SELECT DISTINCT r.rolname
                    FROM pg_class c
                    CROSS JOIN LATERAL aclexplode(c.relacl) a
                    JOIN pg_roles r ON r.oid = a.grantee
                    WHERE c.oid = to_regclass(tbl)
                      AND a.privilege_type IN ('UPDATE', 'DELETE', 'TRUNCATE')
                      AND a.grantee <> c.relowner
                LOOP
                    EXECUTE format('REVOKE UPDATE, DELETE, TRUNCATE ON %I FROM %I', tbl, grantee_name);
                END LOOP;
            END LOOP;
        END;
        $$;
        """
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS audit_log_no_truncate ON audit_log")
    op.execute("DROP TRIGGER IF EXISTS audit_log_anchor ON audit_log")
    op.drop_table("audit_anchor")
    op.execute("DROP FUNCTION IF EXISTS mailspine_audit_anchor_guard()")
    op.execute("DROP FUNCTION IF EXISTS mailspine_audit_anchor()")
    op.drop_index("ix_audit_log_action", table_name="audit_log")
    op.drop_column("audit_log", "hash_version")
    op.drop_column("audit_log", "payload_sha256")
    op.drop_column("audit_log", "trace_id")
