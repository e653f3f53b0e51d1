"""core: portfolios, groups, accounts, brokerage mapping, ledger, audit

On PostgreSQL the ledger postings (per account) and the audit log (per portfolio) are hash-partitioned;
the partition count comes from ALLUSE_PARTITIONS when this runs (default 16).

Revision ID: 0001
Revises:
Create Date: 2026-11-21 04:25:17.883419
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from alluse.store.partitioning import create_partitioned

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _group_fork_fk(inline: bool) -> list:
    # account_groups and accounts reference each other. SQLite accepts the forward reference inline
    # (and cannot add a constraint later); PostgreSQL needs it added once accounts exists.
    sqlite = op.get_bind().dialect.name == "sqlite"
    if inline != sqlite:
        return []
    return [
        sa.ForeignKeyConstraint(
            ["forked_from_account_id", "portfolio_id"],
            ["accounts.id", "accounts.portfolio_id"],
            name=op.f("fk_account_groups_forked_from_account_id_accounts"),
        )
    ]


def upgrade() -> None:
    op.create_table(
        "portfolios",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("creation_key", sa.String(length=200), nullable=False),
        sa.Column("template", sa.String(length=20), nullable=False),
        sa.Column("alloc_gen_bps", sa.Integer(), nullable=False),
        sa.Column("alloc_rev_bps", sa.Integer(), nullable=False),
        sa.Column("alloc_com_bps", sa.Integer(), nullable=False),
        sa.Column("audit_seq", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("audit_head", sa.String(length=64), server_default="", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "alloc_gen_bps + alloc_rev_bps + alloc_com_bps = 10000", name=op.f("ck_portfolios_allocation_sums_to_100")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_portfolios")),
        sa.UniqueConstraint("creation_key", name=op.f("uq_portfolios_creation_key")),
        sa.UniqueConstraint("name", name=op.f("uq_portfolios_name")),
    )
    op.create_table(
        "account_groups",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("portfolio_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("name", sa.String(length=50), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("parent_group_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("forked_from_account_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("alloc_gen_bps", sa.Integer(), nullable=False),
        sa.Column("alloc_rev_bps", sa.Integer(), nullable=False),
        sa.Column("alloc_com_bps", sa.Integer(), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("kind IN ('PRIMARY', 'FORK')", name=op.f("ck_account_groups_kind")),
        sa.CheckConstraint("status IN ('ACTIVE', 'MERGED', 'CLOSED')", name=op.f("ck_account_groups_status")),
        sa.CheckConstraint(
            "alloc_gen_bps + alloc_rev_bps + alloc_com_bps = 10000",
            name=op.f("ck_account_groups_allocation_sums_to_100"),
        ),
        *_group_fork_fk(inline=True),
        sa.ForeignKeyConstraint(
            ["parent_group_id", "portfolio_id"],
            ["account_groups.id", "account_groups.portfolio_id"],
            name=op.f("fk_account_groups_parent_group_id_account_groups"),
        ),
        sa.ForeignKeyConstraint(
            ["portfolio_id"], ["portfolios.id"], name=op.f("fk_account_groups_portfolio_id_portfolios")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_account_groups")),
        sa.UniqueConstraint("id", "portfolio_id", name=op.f("uq_account_groups_id_portfolio_id")),
        sa.UniqueConstraint("portfolio_id", "name", name=op.f("uq_account_groups_portfolio_id_name")),
    )
    create_partitioned(
        op,
        "audit_log",
        sa.Column("portfolio_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
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
        sa.ForeignKeyConstraint(["portfolio_id"], ["portfolios.id"], name=op.f("fk_audit_log_portfolio_id_portfolios")),
        sa.PrimaryKeyConstraint("portfolio_id", "seq", name=op.f("pk_audit_log")),
        sa.UniqueConstraint("portfolio_id", "idempotency_key", name=op.f("uq_audit_log_portfolio_id_idempotency_key")),
        by="portfolio_id",
    )
    op.create_table(
        "transfers",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("portfolio_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("memo", sa.String(length=200), server_default="", nullable=False),
        sa.Column("reverses_transfer_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("audit_seq", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["portfolio_id"], ["portfolios.id"], name=op.f("fk_transfers_portfolio_id_portfolios")),
        sa.ForeignKeyConstraint(
            ["reverses_transfer_id", "portfolio_id"],
            ["transfers.id", "transfers.portfolio_id"],
            name=op.f("fk_transfers_reverses_transfer_id_transfers"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_transfers")),
        sa.UniqueConstraint("id", "portfolio_id", name=op.f("uq_transfers_id_portfolio_id")),
        sa.UniqueConstraint("reverses_transfer_id", name=op.f("uq_transfers_reverses_transfer_id")),
    )
    op.create_table(
        "accounts",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("portfolio_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("group_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("kind", sa.String(length=3), nullable=False),
        sa.Column("name", sa.String(length=60), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("forked_from_account_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("buffer_bps", sa.Integer(), nullable=False),
        sa.Column("cash_cents", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("positions_value_cents", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("collateral_cents", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("earmarked_cents", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("base_capital_cents", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("(kind = 'EXT') = (group_id IS NULL)", name=op.f("ck_accounts_ext_has_no_group")),
        sa.CheckConstraint("kind IN ('GEN', 'REV', 'COM', 'EXT')", name=op.f("ck_accounts_kind")),
        sa.CheckConstraint("status IN ('ACTIVE', 'SUSPENDED', 'MERGED', 'CLOSED')", name=op.f("ck_accounts_status")),
        sa.CheckConstraint("buffer_bps BETWEEN 0 AND 10000", name=op.f("ck_accounts_buffer_bps")),
        sa.CheckConstraint(
            "collateral_cents >= 0 AND earmarked_cents >= 0", name=op.f("ck_accounts_holds_non_negative")
        ),
        sa.ForeignKeyConstraint(
            ["forked_from_account_id", "portfolio_id"],
            ["accounts.id", "accounts.portfolio_id"],
            name=op.f("fk_accounts_forked_from_account_id_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["group_id", "portfolio_id"],
            ["account_groups.id", "account_groups.portfolio_id"],
            name=op.f("fk_accounts_group_id_account_groups"),
        ),
        sa.ForeignKeyConstraint(["portfolio_id"], ["portfolios.id"], name=op.f("fk_accounts_portfolio_id_portfolios")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_accounts")),
        sa.UniqueConstraint("group_id", "kind", name=op.f("uq_accounts_group_id_kind")),
        sa.UniqueConstraint("id", "portfolio_id", name=op.f("uq_accounts_id_portfolio_id")),
        sa.UniqueConstraint("portfolio_id", "name", name=op.f("uq_accounts_portfolio_id_name")),
    )
    for fk in _group_fork_fk(inline=False):
        op.create_foreign_key(
            fk.name,
            "account_groups",
            "accounts",
            ["forked_from_account_id", "portfolio_id"],
            ["id", "portfolio_id"],
        )
    op.create_table(
        "account_config",
        sa.Column("account_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("portfolio_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("template", sa.String(length=20), nullable=False),
        sa.Column("overrides", sa.Text(), server_default="{}", nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id", "portfolio_id"],
            ["accounts.id", "accounts.portfolio_id"],
            name=op.f("fk_account_config_account_id_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["portfolio_id"], ["portfolios.id"], name=op.f("fk_account_config_portfolio_id_portfolios")
        ),
        sa.PrimaryKeyConstraint("account_id", name=op.f("pk_account_config")),
    )
    op.create_table(
        "brokerage_accounts",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("portfolio_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("broker", sa.String(length=20), nullable=False),
        sa.Column("number", sa.String(length=40), nullable=False),
        sa.Column("account_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("credentials_encrypted", sa.LargeBinary(), nullable=True),
        sa.Column("registered_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id", "portfolio_id"],
            ["accounts.id", "accounts.portfolio_id"],
            name=op.f("fk_brokerage_accounts_account_id_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["portfolio_id"], ["portfolios.id"], name=op.f("fk_brokerage_accounts_portfolio_id_portfolios")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_brokerage_accounts")),
        sa.UniqueConstraint("account_id", name=op.f("uq_brokerage_accounts_account_id")),
        sa.UniqueConstraint("broker", "number", name=op.f("uq_brokerage_accounts_broker_number")),
    )
    create_partitioned(
        op,
        "postings",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("portfolio_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("transfer_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("account_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("amount_cents", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("amount_cents <> 0", name=op.f("ck_postings_non_zero")),
        sa.ForeignKeyConstraint(
            ["account_id", "portfolio_id"],
            ["accounts.id", "accounts.portfolio_id"],
            name=op.f("fk_postings_account_id_accounts"),
        ),
        sa.ForeignKeyConstraint(["portfolio_id"], ["portfolios.id"], name=op.f("fk_postings_portfolio_id_portfolios")),
        sa.ForeignKeyConstraint(
            ["transfer_id", "portfolio_id"],
            ["transfers.id", "transfers.portfolio_id"],
            name=op.f("fk_postings_transfer_id_transfers"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_postings")),
        by="account_id",
    )
    op.create_index(op.f("ix_postings_account_id"), "postings", ["account_id"], unique=False)
    op.create_index(op.f("ix_postings_transfer_id"), "postings", ["transfer_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_postings_transfer_id"), table_name="postings")
    op.drop_index(op.f("ix_postings_account_id"), table_name="postings")
    op.drop_table("postings")
    op.drop_table("brokerage_accounts")
    op.drop_table("account_config")
    if op.get_bind().dialect.name != "sqlite":
        op.drop_constraint(op.f("fk_account_groups_forked_from_account_id_accounts"), "account_groups")
    op.drop_table("accounts")
    op.drop_table("transfers")
    op.drop_table("audit_log")
    op.drop_table("account_groups")
    op.drop_table("portfolios")
