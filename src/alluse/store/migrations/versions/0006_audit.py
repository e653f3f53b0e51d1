"""audit: keyed chain, row manifests, the system chain and sealed audit keys

Revision ID: 0006_audit
Revises: 0011_events
Create Date: 2026-11-30 00:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from alluse.store.partitioning import app_role

revision: str = "0006_audit"
down_revision: str | None = "0011_events"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("audit_log", sa.Column("key_id", sa.String(length=16), nullable=True))
    op.add_column("audit_log", sa.Column("rows", sa.Text(), nullable=True))
    op.create_table(
        "system_audit",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("action", sa.String(length=50), nullable=False),
        sa.Column("idempotency_key", sa.String(length=200), nullable=False),
        sa.Column("input_digest", sa.String(length=64), nullable=False),
        sa.Column("result", sa.Text(), nullable=False),
        sa.Column("override_reason", sa.Text(), nullable=True),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("key_id", sa.String(length=16), nullable=True),
        sa.Column("rows", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_system_audit")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_system_audit_idempotency_key")),
    )
    op.create_table(
        "audit_keys",
        sa.Column("key_id", sa.String(length=16), nullable=False),
        sa.Column("sealed", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("key_id", name=op.f("pk_audit_keys")),
    )
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        # Neither table is per portfolio; the system chain is append-only for the application role.
        bind.exec_driver_sql(f"GRANT SELECT, INSERT ON system_audit TO {app_role()}")
        bind.exec_driver_sql(f"GRANT SELECT, INSERT, UPDATE ON audit_keys TO {app_role()}")


def downgrade() -> None:
    op.drop_table("audit_keys")
    op.drop_table("system_audit")
    op.drop_column("audit_log", "rows")
    op.drop_column("audit_log", "key_id")
