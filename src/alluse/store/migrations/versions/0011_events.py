"""events: a per-portfolio sequence and a global id on every outbox event, relay cursors, webhooks

Events written before this revision get their sequence numbers in id order and fresh ids.

Revision ID: 0011_events
Revises: 0010_ibkr
Create Date: 2026-11-30 00:10:00
"""

import uuid
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from alluse.store.partitioning import app_role, isolate

revision: str = "0011_events"
down_revision: str | None = "0008_api"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Ts = sa.DateTime(timezone=True)
NEW_TABLES = ("event_cursors", "webhook_endpoints", "webhook_deliveries")


def upgrade() -> None:
    bind = op.get_bind()
    with op.batch_alter_table("portfolios") as batch_op:
        batch_op.add_column(sa.Column("event_seq", sa.BigInteger(), server_default="0", nullable=False))
    with op.batch_alter_table("events") as batch_op:
        batch_op.add_column(sa.Column("seq", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("event_id", sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column("version", sa.SmallInteger(), server_default="1", nullable=False))
    ev = sa.table("events", sa.column("id"), sa.column("portfolio_id"), sa.column("seq"), sa.column("event_id"))
    heads: dict[int, int] = {}
    for eid, pid in bind.execute(sa.select(ev.c.id, ev.c.portfolio_id).order_by(ev.c.id)).all():
        heads[pid] = heads.get(pid, 0) + 1
        bind.execute(ev.update().where(ev.c.id == eid).values(seq=heads[pid], event_id=str(uuid.uuid4())))
    pf = sa.table("portfolios", sa.column("id"), sa.column("event_seq"))
    for pid, seq in heads.items():
        bind.execute(pf.update().where(pf.c.id == pid).values(event_seq=seq))
    with op.batch_alter_table("events") as batch_op:
        batch_op.alter_column("seq", existing_type=sa.BigInteger(), nullable=False)
        batch_op.alter_column("event_id", existing_type=sa.String(length=36), nullable=False)
        batch_op.create_unique_constraint(batch_op.f("uq_events_portfolio_id_seq"), ["portfolio_id", "seq"])
        batch_op.create_unique_constraint(batch_op.f("uq_events_event_id"), ["event_id"])
        batch_op.create_unique_constraint(batch_op.f("uq_events_id_portfolio_id"), ["id", "portfolio_id"])

    op.create_table(
        "event_cursors",
        sa.Column("consumer", sa.String(length=100), nullable=False),
        sa.Column("portfolio_id", Id, nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", Ts, nullable=False),
        sa.ForeignKeyConstraint(
            ["portfolio_id"], ["portfolios.id"], name=op.f("fk_event_cursors_portfolio_id_portfolios")
        ),
        sa.PrimaryKeyConstraint("consumer", "portfolio_id", name=op.f("pk_event_cursors")),
    )
    op.create_table(
        "webhook_endpoints",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("portfolio_id", Id, nullable=False),
        sa.Column("url", sa.String(length=500), nullable=False),
        sa.Column("kinds", sa.Text(), server_default="[]", nullable=False),
        sa.Column("secret_encrypted", sa.LargeBinary(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", Ts, nullable=False),
        sa.Column("disabled_at", Ts, nullable=True),
        sa.ForeignKeyConstraint(
            ["portfolio_id"], ["portfolios.id"], name=op.f("fk_webhook_endpoints_portfolio_id_portfolios")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_endpoints")),
        sa.UniqueConstraint("id", "portfolio_id", name=op.f("uq_webhook_endpoints_id_portfolio_id")),
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("portfolio_id", Id, nullable=False),
        sa.Column("endpoint_id", Id, nullable=False),
        sa.Column("event_id", Id, nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("next_attempt_at", Ts, nullable=False),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.String(length=300), server_default="", nullable=False),
        sa.Column("created_at", Ts, nullable=False),
        sa.Column("delivered_at", Ts, nullable=True),
        sa.CheckConstraint("status IN ('PENDING', 'DELIVERED', 'FAILED')", name=op.f("ck_webhook_deliveries_status")),
        sa.ForeignKeyConstraint(
            ["endpoint_id", "portfolio_id"],
            ["webhook_endpoints.id", "webhook_endpoints.portfolio_id"],
            name=op.f("fk_webhook_deliveries_endpoint_id_webhook_endpoints"),
        ),
        sa.ForeignKeyConstraint(
            ["event_id", "portfolio_id"],
            ["events.id", "events.portfolio_id"],
            name=op.f("fk_webhook_deliveries_event_id_events"),
        ),
        sa.ForeignKeyConstraint(
            ["portfolio_id"], ["portfolios.id"], name=op.f("fk_webhook_deliveries_portfolio_id_portfolios")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_deliveries")),
        sa.UniqueConstraint("endpoint_id", "event_id", name=op.f("uq_webhook_deliveries_endpoint_id_event_id")),
    )
    op.create_index(
        op.f("ix_webhook_deliveries_status_next_attempt_at"), "webhook_deliveries", ["status", "next_attempt_at"]
    )
    if bind.dialect.name == "postgresql":
        for name in NEW_TABLES:
            isolate(bind, name)
        bind.exec_driver_sql(f"GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO {app_role()}")


def downgrade() -> None:
    op.drop_index(op.f("ix_webhook_deliveries_status_next_attempt_at"), table_name="webhook_deliveries")
    op.drop_table("webhook_deliveries")
    op.drop_table("webhook_endpoints")
    op.drop_table("event_cursors")
    with op.batch_alter_table("events") as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_events_id_portfolio_id"), type_="unique")
        batch_op.drop_constraint(batch_op.f("uq_events_event_id"), type_="unique")
        batch_op.drop_constraint(batch_op.f("uq_events_portfolio_id_seq"), type_="unique")
        batch_op.drop_column("version")
        batch_op.drop_column("event_id")
        batch_op.drop_column("seq")
    with op.batch_alter_table("portfolios") as batch_op:
        batch_op.drop_column("event_seq")
