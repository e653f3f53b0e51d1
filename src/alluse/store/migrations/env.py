"""Alembic environment: runs on the connection handed in by alluse.store.db.migrate, or on the URL."""

from alembic import context
from sqlalchemy import create_engine

from alluse.store.schema import metadata

config = context.config


def _run(connection) -> None:  # type: ignore[no-untyped-def,unused-ignore]
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    with create_engine(config.get_main_option("sqlalchemy.url", "")).connect() as conn:
        _run(conn)
        conn.commit()
