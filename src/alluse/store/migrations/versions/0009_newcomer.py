"""newcomer: transfer numbers per portfolio, lifecycle settings per portfolio, CLI defaults

Transfers get a `number` that counts 1, 2, 3 … within their portfolio, in the order they were
written (existing rows are numbered by id, which is that order: a portfolio's writes are serialised).
Portfolios get `lifecycle`, the JSON object of their lifecycle settings that differ from the
method's defaults. `cli_defaults` holds the command line's default portfolio.

SQLite can only add a NOT NULL column with a default, so there `number` keeps DEFAULT 0 in its DDL;
every insert names the number, and the unique index refuses a second 0.

Revision ID: 0009_newcomer
Revises: 0004_lifecycle
Create Date: 2026-11-30 00:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from alluse.store.partitioning import app_role

revision: str = "0009_newcomer"
down_revision: str | None = "0004_lifecycle"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    bind = op.get_bind()
    op.add_column("transfers", sa.Column("number", sa.BigInteger(), nullable=False, server_default="0"))
    op.execute(
        "UPDATE transfers SET number = ranked.n FROM (SELECT id, row_number() OVER "
        "(PARTITION BY portfolio_id ORDER BY id) AS n FROM transfers) AS ranked WHERE ranked.id = transfers.id"
    )
    if bind.dialect.name == "postgresql":
        op.alter_column("transfers", "number", server_default=None)
    op.create_index("ix_transfers_portfolio_id_number", "transfers", ["portfolio_id", "number"], unique=True)
    op.add_column("portfolios", sa.Column("lifecycle", sa.Text(), server_default="{}", nullable=False))
    op.create_table(
        "cli_defaults",
        sa.Column("name", sa.String(length=50), nullable=False),
        sa.Column("value", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_cli_defaults")),
    )
    if bind.dialect.name == "postgresql":
        bind.exec_driver_sql(f"GRANT SELECT, INSERT, UPDATE ON cli_defaults TO {app_role()}")


def downgrade() -> None:
    op.drop_table("cli_defaults")
    with op.batch_alter_table("portfolios", schema=None) as batch_op:
        batch_op.drop_column("lifecycle")
    op.drop_index("ix_transfers_portfolio_id_number", table_name="transfers")
    with op.batch_alter_table("transfers", schema=None) as batch_op:
        batch_op.drop_column("number")
