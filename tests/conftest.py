"""Shared fixtures. `engine` runs a test on SQLite and on PostgreSQL, `pg` on PostgreSQL; both also
on a Citus cluster when ALLUSE_TEST_CITUS_URL is set (those variants carry the `citus` marker).

PostgreSQL comes from ALLUSE_TEST_PG_URL (the database is created if missing). Without it the
PostgreSQL variants skip locally; under CI=true a missing or unreachable server is a failure.
ALLUSE_TEST_CITUS_URL names a database on a Citus coordinator with the extension and the workers
registered (`scripts/citus-cluster start DB`); the suite works in `<DB>_tests`, created on every
node, migrated and distributed with deploy/citus.sql once per session.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from alluse.store.citus import is_citus
from alluse.store.db import make_engine, migrate
from alluse.store.schema import metadata

IN_CI = os.environ.get("CI", "").lower() == "true"
# One keyring for the test run and every process it starts: the audit chain is MAC'd with a key
# derived from it, so a database written here must be verified with the same key.
os.environ.setdefault("ALLUSE_SECRET_KEY", "yOx3Fq0rJ0Mm3g0y2T8u0YtN2dQF6bA7Zp5W3Hk1cVs=")


def pg_url() -> str | None:
    return os.environ.get("ALLUSE_TEST_PG_URL") or None


def citus_url() -> str | None:
    return os.environ.get("ALLUSE_TEST_CITUS_URL") or None


# The servers the PostgreSQL fixtures run on: plain PostgreSQL, and Citus when a cluster is named.
PG_BACKENDS = [pytest.param("postgres", marks=pytest.mark.postgres)]
if citus_url():
    PG_BACKENDS.append(pytest.param("citus", marks=[pytest.mark.postgres, pytest.mark.citus]))
# Shards per table (and per partition) in the test cluster: Citus's default 32 makes distributing
# the schema take about a minute on two cores; the routing under test is the same with 4.
CITUS_TEST_SHARDS = 4


def _ensure_pg_database(url: str) -> None:
    target = sa.engine.make_url(url)
    admin = sa.create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        exists = conn.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :d"), {"d": target.database}).first()
        if not exists:
            conn.exec_driver_sql(f'CREATE DATABASE "{target.database}"')
    admin.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied for each test (migrating once is much faster)."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    engine = make_engine(f"sqlite:///{path}")
    migrate(engine)
    engine.dispose()
    return path


@pytest.fixture(scope="session")
def pg_engine() -> Iterator[sa.Engine]:
    url = pg_url()
    if url is None:
        if IN_CI:
            pytest.fail("CI=true but ALLUSE_TEST_PG_URL is not set: PostgreSQL tests must run in CI")
        pytest.skip("set ALLUSE_TEST_PG_URL to run the PostgreSQL variants")
    try:
        _ensure_pg_database(url)
        engine = make_engine(url)
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
        migrate(engine)
    except sa.exc.OperationalError as exc:
        if IN_CI:
            pytest.fail(f"PostgreSQL at {url} is unreachable under CI=true: {exc.orig}")
        pytest.skip(f"PostgreSQL unreachable: {exc.orig}")
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def citus_engine() -> Iterator[sa.Engine]:
    from alluse.store.citus import create_database, distribute

    url = citus_url()
    if url is None:
        pytest.skip("set ALLUSE_TEST_CITUS_URL to run the Citus variants")
    target = sa.engine.make_url(url)
    try:
        scratch = create_database(url, f"{target.database}_tests")
    except sa.exc.OperationalError as exc:
        pytest.fail(f"Citus at {url} is unreachable: {exc.orig}")
    engine = make_engine(scratch)
    migrate(engine)
    distribute(engine, shard_count=CITUS_TEST_SHARDS)
    yield engine
    engine.dispose()


def plain_postgres_only(engine: sa.Engine, why: str) -> None:
    """Skip a test of the undistributed schema (partitions, keys as migrated) on the Citus variant."""
    with engine.connect() as conn:
        if is_citus(conn):
            pytest.skip(f"not on Citus: {why}")


def _backend_engine(request: pytest.FixtureRequest, backend: str) -> sa.Engine:
    return request.getfixturevalue("citus_engine" if backend == "citus" else "pg_engine")


# Other sessions on the test database that are inside a transaction when a test starts: writers that
# outlived their test (a forked worker, a killed client's backend still finishing its statement).
_STRAY_WRITERS = (
    "SELECT pid, pg_terminate_backend(pid) FROM pg_stat_activity "
    "WHERE datname = current_database() AND pid <> pg_backend_pid() "
    "AND state IN ('active', 'idle in transaction', 'idle in transaction (aborted)')"
)


def _truncate_pg(engine: sa.Engine) -> list[int]:
    """Wipe the test database; returns the ids of stray writer sessions it had to end first.

    DELETE, not TRUNCATE: with the partitions there are ~100 relations, and TRUNCATE gives each a new
    file (about half a second a test); a test leaves only a few rows behind. Foreign-key triggers are
    off for the wipe (the cycle between groups and accounts), sequences start again at 1.

    Airtight: a writer still running from an earlier test is ended first, and the wipe holds every
    table in ACCESS EXCLUSIVE mode, so no transaction can commit half before and half after it. (One
    that did left postings whose transfer and account were deleted; with the sequences reset, the
    next test's account with that id "owned" them, and verify found a cached balance a cent off.)
    """
    with engine.begin() as conn:
        stray = [int(r[0]) for r in conn.exec_driver_sql(_STRAY_WRITERS)]
    with engine.begin() as conn:
        if is_citus(conn):
            # One connection per worker for the whole wipe: a reference table may not be written
            # after a parallel write to a table that refers to it.
            conn.exec_driver_sql("SET LOCAL citus.multi_shard_modify_mode TO 'sequential'")
        conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
        names = ", ".join(t.name for t in metadata.sorted_tables)
        conn.exec_driver_sql(f"LOCK TABLE {names} IN ACCESS EXCLUSIVE MODE")
        for t in reversed(metadata.sorted_tables):
            conn.exec_driver_sql(f"DELETE FROM {t.name}")
        conn.exec_driver_sql(
            "SELECT setval(c.oid, 1, false) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relkind = 'S' AND n.nspname = current_schema()"
        )
    return stray


@pytest.fixture
def sqlite_engine(sqlite_template: Path, tmp_path: Path) -> Iterator[sa.Engine]:
    path = tmp_path / "alluse.db"
    shutil.copy(sqlite_template, path)
    engine = make_engine(f"sqlite:///{path}")
    yield engine
    engine.dispose()


@contextmanager
def sqlite_statements(engine: sa.Engine) -> Iterator[list[str]]:
    """Every statement SQLite runs on the engine's connections meanwhile, its own BEGINs and COMMITs
    included, as SQLite traces them. Connections already open are closed first (`dispose`, the unit
    of work's kept one too), so each one used meanwhile is a new one, traced from its start."""
    statements: list[str] = []

    def trace(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.set_trace_callback(statements.append)

    engine.dispose()
    sa.event.listen(engine, "connect", trace)
    try:
        yield statements
    finally:
        sa.event.remove(engine, "connect", trace)
        engine.dispose()


@pytest.fixture(params=["sqlite", *PG_BACKENDS])
def engine(request: pytest.FixtureRequest) -> Iterator[sa.Engine]:
    """A migrated, empty database: SQLite, then PostgreSQL (then Citus)."""
    if request.param == "sqlite":
        yield request.getfixturevalue("sqlite_engine")
    else:
        pg = _backend_engine(request, request.param)
        _truncate_pg(pg)
        yield pg


@pytest.fixture(params=PG_BACKENDS)
def pg(request: pytest.FixtureRequest) -> sa.Engine:
    """PostgreSQL only (partitioning, row-level security, races): migrated, empty, as the owner."""
    engine = _backend_engine(request, request.param)
    _truncate_pg(engine)
    return engine


_APP_ENGINES: dict[str, sa.Engine] = {}


@pytest.fixture
def pg_app_engine(pg: sa.Engine) -> sa.Engine:
    """The `pg` database as the application's own non-superuser role. The migration creates the role
    without a login; letting it log in is the documented deployment step (docs/scaling.md)."""
    from alluse.store.partitioning import app_role

    url = pg.url.render_as_string(hide_password=False)
    if url not in _APP_ENGINES:
        role = app_role()
        with pg.begin() as conn:
            conn.exec_driver_sql(f"ALTER ROLE {role} LOGIN")
        _APP_ENGINES[url] = make_engine(pg.url.set(username=role, password=None).render_as_string(hide_password=False))
    return _APP_ENGINES[url]


@pytest.fixture(scope="session", autouse=True)
def _dispose_app_engines() -> Iterator[None]:
    yield
    for engine in _APP_ENGINES.values():
        engine.dispose()


@pytest.fixture
def portfolio(engine: sa.Engine) -> str:
    from alluse.services.portfolios import create_portfolio

    create_portfolio(engine, "test", "main", "test:portfolio")
    return "main"


def db_state(engine: sa.Engine) -> dict[str, list[tuple]]:
    """Every row of every table, sorted: equal before and after means the database did not change."""
    out = {}
    with engine.connect() as conn:
        for table in metadata.sorted_tables:
            rows = conn.execute(sa.select(table)).all()
            out[table.name] = sorted((tuple(r) for r in rows), key=repr)
    return out


# --- NATS JetStream (the event relay, the price feed) -------------------------------------------


def nats_test_url() -> str:
    return os.environ.get("ALLUSE_TEST_NATS_URL") or "nats://127.0.0.1:4222"


@pytest.fixture(scope="session")
def nats_url() -> str:
    """A live NATS server with JetStream; under CI=true an unreachable one is a failure."""
    import asyncio

    import nats

    url = nats_test_url()

    async def probe() -> bool:
        try:
            nc = await nats.connect(url, connect_timeout=2, allow_reconnect=False)
        except Exception:
            return False
        try:
            await nc.jetstream().account_info()
            return True
        except Exception:
            return False
        finally:
            await nc.close()

    if not asyncio.run(probe()):
        if IN_CI:
            pytest.fail(f"CI=true but NATS with JetStream at {url} is unreachable")
        pytest.skip(f"NATS with JetStream at {url} is unreachable")
    return url


class Stream:
    """A JetStream stream and subject prefix of this test alone (engineers and CI runs share the server)."""

    def __init__(self, url: str) -> None:
        import uuid

        tag = uuid.uuid4().hex[:12]
        self.url, self.name, self.prefix = url, f"TEST_{tag}", f"t{tag}"

    def messages(self) -> list[tuple[str, dict, dict]]:
        """Every message in the stream, in stream order: (subject, envelope, headers)."""
        import asyncio
        import json

        import nats

        async def read() -> list[tuple[str, dict, dict]]:
            nc = await nats.connect(self.url)
            try:
                js = nc.jetstream()
                total = (await js.stream_info(self.name)).state.messages
                out = []
                for seq in range(1, total + 1):
                    m = await js.get_msg(self.name, seq)
                    out.append((m.subject, json.loads(m.data), dict(m.headers or {})))
                return out
            finally:
                await nc.close()

        return asyncio.run(read())

    def delete(self) -> None:
        import asyncio

        import nats
        from nats.js.errors import NotFoundError

        async def drop() -> None:
            nc = await nats.connect(self.url)
            try:
                await nc.jetstream().delete_stream(self.name)
            except NotFoundError:
                pass
            finally:
                await nc.close()

        asyncio.run(drop())


@pytest.fixture
def stream(nats_url: str) -> Iterator[Stream]:
    s = Stream(nats_url)
    yield s
    s.delete()
