"""Citus: distributing a migrated database (deploy/citus.sql, generated from the schema metadata) and
telling whether a database is a Citus coordinator. Used by the benchmark and the test harness; an
operator runs deploy/citus.sql with psql instead (docs/scaling.md)."""

from __future__ import annotations

import sqlalchemy as sa

from alluse.domain.errors import InvalidInput


def is_citus(conn: sa.Connection) -> bool:
    if conn.dialect.name != "postgresql":
        return False
    return conn.exec_driver_sql("SELECT 1 FROM pg_extension WHERE extname = 'citus'").first() is not None


def is_distributed(conn: sa.Connection) -> bool:
    """True once deploy/citus.sql has run: `portfolios` is a distributed table."""
    return is_citus(conn) and (
        conn.exec_driver_sql("SELECT 1 FROM citus_tables WHERE table_name = 'portfolios'::regclass").first() is not None
    )


def statements(script: str) -> list[str]:
    """deploy/citus.sql split into statements, one at a time as psql sends them (Citus forwards a
    DDL statement's text to the workers, which refuse several commands in one)."""
    out: list[str] = []
    current: list[str] = []
    for line in script.splitlines():
        if not current and (not line.strip() or line.startswith("--")):
            continue
        current.append(line)
        text = "\n".join(current)
        if text.count("$$") % 2 == 0 and line.split("  -- ")[0].rstrip().endswith(";"):
            out.append(text)
            current = []
    return out


def distribute(engine: sa.Engine, *, shard_count: int | None = None) -> None:
    """Run deploy/citus.sql on a freshly migrated Citus coordinator (the script is rendered from the
    same metadata the file is generated from). `shard_count` overrides Citus's default of 32 shards
    per table: a scratch database wants few, each partition of a partitioned table gets that many."""
    from alluse.store.schema_doc import render_citus_sql

    with engine.connect() as conn:
        if not is_citus(conn):
            raise InvalidInput(f"{engine.url.database} has no citus extension: create it on every node first")
    raw = engine.raw_connection()
    try:
        driver = raw.driver_connection
        assert driver is not None  # a pooled connection always has its driver's connection
        driver.autocommit = True  # the script has its own BEGIN/COMMIT blocks
        with driver.cursor() as cur:
            if shard_count is not None:
                cur.execute(f"SET citus.shard_count = {int(shard_count)}")
            for statement in statements(render_citus_sql()):
                cur.execute(statement)
            cur.execute("RESET citus.shard_count")
    finally:
        raw.close()
    engine.dispose()  # sessions opened before pick up citus.propagate_set_commands only when new


def nodes(conn: sa.Connection) -> list[tuple[str, int, bool]]:
    """(host, port, is_coordinator) of every primary node of the cluster, the coordinator first."""
    rows = conn.exec_driver_sql(
        "SELECT nodename, nodeport, groupid = 0 FROM pg_dist_node WHERE noderole = 'primary' ORDER BY groupid, nodeid"
    )
    return [(str(h), int(p), bool(c)) for h, p, c in rows]


def create_database(source_url: str, name: str) -> str:
    """A new, empty database `name` on every node of the cluster whose coordinator database is
    `source_url` (dropped first if it exists), with the extension and the nodes registered: Citus
    propagates neither CREATE DATABASE nor CREATE EXTENSION. Returns the new coordinator URL."""
    source = sa.engine.make_url(source_url)
    engine = sa.create_engine(source)
    try:
        with engine.connect() as conn:
            if not is_citus(conn):
                raise InvalidInput(f"{source.database} is not a Citus coordinator database (no citus extension)")
            cluster = nodes(conn)
    finally:
        engine.dispose()
    if name == source.database:
        raise InvalidInput("the new database must not be the one the cluster is read from")
    coordinator = None
    for host, port, is_coordinator in cluster:
        node = source.set(host=host, port=port)
        admin = sa.create_engine(node.set(database="postgres"), isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        finally:
            admin.dispose()
        db = sa.create_engine(node.set(database=name), isolation_level="AUTOCOMMIT")
        try:
            with db.connect() as conn:
                conn.exec_driver_sql("CREATE EXTENSION citus")
        finally:
            db.dispose()
        if is_coordinator:
            coordinator = node.set(database=name)
    if coordinator is None:
        raise InvalidInput(f"{source.database}: pg_dist_node lists no coordinator (citus_set_coordinator_host)")
    db = sa.create_engine(coordinator, isolation_level="AUTOCOMMIT")
    try:
        with db.connect() as conn:
            for host, port, is_coordinator in cluster:
                if is_coordinator:
                    conn.execute(sa.text("SELECT citus_set_coordinator_host(:h, :p)"), {"h": host, "p": port})
                else:
                    conn.execute(sa.text("SELECT citus_add_node(:h, :p)"), {"h": host, "p": port})
    finally:
        db.dispose()
    return coordinator.render_as_string(hide_password=False)
