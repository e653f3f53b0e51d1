"""auth: users, roles per portfolio, API keys and their scopes

Revision ID: 0003_auth
Revises: 0002_trades
Create Date: 2026-11-21 04:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_auth"
down_revision: str | None = "0002_trades"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
ROLE_CHECK = "role IN ('viewer', 'trader', 'owner')"


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("username", sa.String(length=50), nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=False),
        sa.Column("is_admin", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("token_version", sa.Integer(), server_default="0", nullable=False),
        sa.Column("disabled", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("username", name=op.f("uq_users_username")),
    )
    op.create_table(
        "portfolio_roles",
        sa.Column("portfolio_id", Id, nullable=False),
        sa.Column("user_id", Id, nullable=False),
        sa.Column("role", sa.String(length=10), nullable=False),
        sa.Column("granted_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(ROLE_CHECK, name=op.f("ck_portfolio_roles_role")),
        sa.ForeignKeyConstraint(
            ["portfolio_id"], ["portfolios.id"], name=op.f("fk_portfolio_roles_portfolio_id_portfolios")
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_portfolio_roles_user_id_users")),
        sa.PrimaryKeyConstraint("portfolio_id", "user_id", name=op.f("pk_portfolio_roles")),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("user_id", Id, nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_api_keys_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
    )
    op.create_table(
        "api_key_scopes",
        sa.Column("api_key_id", Id, nullable=False),
        sa.Column("portfolio_id", Id, nullable=False),
        sa.Column("role", sa.String(length=10), nullable=False),
        sa.CheckConstraint(ROLE_CHECK, name=op.f("ck_api_key_scopes_role")),
        sa.ForeignKeyConstraint(["api_key_id"], ["api_keys.id"], name=op.f("fk_api_key_scopes_api_key_id_api_keys")),
        sa.ForeignKeyConstraint(
            ["portfolio_id"], ["portfolios.id"], name=op.f("fk_api_key_scopes_portfolio_id_portfolios")
        ),
        sa.PrimaryKeyConstraint("api_key_id", "portfolio_id", name=op.f("pk_api_key_scopes")),
    )


def downgrade() -> None:
    op.drop_table("api_key_scopes")
    op.drop_table("api_keys")
    op.drop_table("portfolio_roles")
    op.drop_table("users")
