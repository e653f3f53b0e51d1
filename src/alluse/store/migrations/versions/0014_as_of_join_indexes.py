"""lifecycle_actions (portfolio_id, audit_seq) and tax_payments (portfolio_id, transfer_id) indexes

The as-of figures (store/asof.py) date each posting by its fill, statement row, tax payment or
lifecycle action, joined on these columns. Without an index SQLite searched every lifecycle action of
the portfolio once per posting read (and built a temporary index over the tax payments on every
read), so a sweep's reads grew with the number of actions ever applied.

Revision ID: 0014_as_of_join_indexes
Revises: 0013_group_kind_index
Create Date: 2026-11-30 12:40:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0014_as_of_join_indexes"
down_revision: str | None = "0013_group_kind_index"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        op.f("ix_lifecycle_actions_portfolio_id_audit_seq"), "lifecycle_actions", ["portfolio_id", "audit_seq"]
    )
    op.create_index(op.f("ix_tax_payments_portfolio_id_transfer_id"), "tax_payments", ["portfolio_id", "transfer_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_tax_payments_portfolio_id_transfer_id"), table_name="tax_payments")
    op.drop_index(op.f("ix_lifecycle_actions_portfolio_id_audit_seq"), table_name="lifecycle_actions")
