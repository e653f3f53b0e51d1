"""Engines and migrations.

SQLite runs in WAL mode with foreign keys on. Write transactions start with BEGIN IMMEDIATE so that
two writers never deadlock upgrading a read lock; read-only work uses a plain deferred BEGIN.
"""

from __future__ import annotations

import os
import re
import select
import threading

try:
    import fcntl
except ImportError:  # not on Windows: threads still queue, processes meet the busy handler
    fcntl = None  # type: ignore[assignment]

import weakref
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from alluse.store import prepared

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"
# Bound on SQL parameters per IN-list, under SQLite's limit.
IN_CHUNK = 900


def is_sqlite(engine_or_conn: Engine | sa.Connection) -> bool:
    return engine_or_conn.dialect.name == "sqlite"


class _SqliteWriters:
    """The writer lock of one SQLite database: threads of this process queue on an RLock, processes
    (several server workers) on an flock of a file beside the database. The kernel hands a released
    flock straight to a waiter, where SQLite's busy handler would sleep and retry."""

    def __init__(self, database: str | None) -> None:
        self._lock = threading.RLock()
        self._depth = 0
        self._path = (
            f"{database}-writers" if database and database != ":memory:" and not database.startswith("file:") else None
        )
        self._fd: int | None = None
        self._pid = 0

    def __enter__(self) -> _SqliteWriters:
        self._lock.acquire()
        if self._depth == 0 and self._path is not None and fcntl is not None:
            try:
                if self._fd is None or self._pid != os.getpid():  # a forked child opens its own
                    self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
                    self._pid = os.getpid()
                fcntl.flock(self._fd, fcntl.LOCK_EX)
            except BaseException:
                self._lock.release()
                raise
        self._depth += 1
        return self

    def __exit__(self, *exc: object) -> None:
        self._depth -= 1
        if self._depth == 0 and self._fd is not None and fcntl is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        self._lock.release()


_WRITERS: weakref.WeakKeyDictionary[Engine, _SqliteWriters] = weakref.WeakKeyDictionary()


def writer_lock(engine: Engine) -> AbstractContextManager[object]:
    """SQLite admits one writer at a time; writers queue on this lock, the threads of one process and
    the processes of one server alike, instead of on SQLite's busy handler, whose sleeps (up to 100 ms
    each) make the latency tail. Writers that skip it still meet the busy handler. PostgreSQL serialises
    writers per portfolio with row locks."""
    if not is_sqlite(engine):
        return nullcontext()
    lock = _WRITERS.get(engine)
    if lock is None:
        lock = _WRITERS.setdefault(engine, _SqliteWriters(engine.url.database))
    return lock


def _create_owner_only(url: str) -> None:
    """Create a new SQLite file readable by its owner only (0600) before SQLite creates it with the
    umask's mode (usually 0644); SQLite gives its -wal and -shm files the database file's mode."""
    database = sa.engine.make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    try:
        os.close(os.open(database, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except (FileExistsError, FileNotFoundError):  # exists already, or SQLite names the missing directory
        pass


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        _create_owner_only(url)
        engine = sa.create_engine(url, connect_args={"timeout": 30})

        @sa.event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            # Take transaction control away from the sqlite3 module so BEGIN below is ours.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        @sa.event.listens_for(engine, "begin")
        def _on_begin(conn: sa.Connection) -> None:
            mode = "IMMEDIATE" if conn.get_execution_options().get("alluse_write") else "DEFERRED"
            # Straight to the driver: this runs once per unit of work, on the hot path.
            conn.connection.dbapi_connection.execute(f"BEGIN {mode}")  # type: ignore[union-attr]

        return engine
    # No hstore column anywhere: without this SQLAlchemy looks the type up on every engine's first
    # connection, one more round trip for each process that starts (a sweep worker, a command).
    engine = sa.create_engine(url, use_native_hstore=False)
    dialect = engine.dialect

    @sa.event.listens_for(engine, "checkout")
    def _drop_if_gone(dbapi_conn: Any, _record: Any, _proxy: Any) -> None:
        # A pooled connection whose server session has ended (server restarted, session terminated)
        # is replaced before use, as `pool_pre_ping` would, without its round trip on every checkout
        # (one in eight of a single cash move's). An idle session's socket has nothing to read unless
        # the server wrote to it since: a closing session's last error and end of stream. Only then
        # is it pinged; a failed ping drops it and the pool opens a new one.
        if not dbapi_conn.closed and not _readable(dbapi_conn.fileno()):
            return
        try:
            dialect.do_ping(dbapi_conn)
        except dialect.loaded_dbapi.Error as exc:
            raise sa.exc.DisconnectionError(str(exc)) from exc

    # A unit of work's big COPYs may still be going in from a thread of their own (store/prepared.behind):
    # SQLAlchemy's own statements and COMMIT wait for them and raise their error; a rollback waits.
    def _after_copies(conn: sa.Connection, *_args: Any) -> None:
        prepared.driver(conn)

    sa.event.listen(engine, "before_cursor_execute", _after_copies)
    sa.event.listen(engine, "commit", _after_copies)

    @sa.event.listens_for(engine, "rollback")
    def _copies_then_rollback(conn: sa.Connection) -> None:
        if not conn.invalidated:
            prepared.caught_up(conn.connection.dbapi_connection, quiet=True)

    @sa.event.listens_for(engine, "reset")
    def _copies_then_reset(dbapi_conn: Any, _record: Any, _state: Any) -> None:
        prepared.caught_up(dbapi_conn, quiet=True)

    return engine


def _readable(fd: int) -> bool:
    poll = select.poll()
    poll.register(fd, select.POLLIN)
    return bool(poll.poll(0))


def alembic_config(url: str) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def migrate(engine: Engine) -> None:
    """Bring the database to the newest schema (idempotent)."""
    from alembic import command

    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


_REVISION = re.compile(r"^(down_)?revision\b[^=]*=\s*(None|\"([^\"]+)\"|'([^']+)')\s*$", re.M)


def script_head() -> str | None:
    """The newest migration's revision, read from the files in versions/ without loading Alembic
    (which costs a command-line start several times what the rest of it does). None when the files
    do not describe one straight chain (a merge, or a form this reader does not know)."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (MIGRATIONS / "versions").glob("*.py"):
        # Alembic writes the identifiers above the functions; the regular expression over the whole
        # file was most of this check. Identifiers placed below are not found: Alembic answers then.
        head = path.read_text().partition("\ndef ")[0]
        found = {m[0]: m[2] or m[3] for m in _REVISION.findall(head)}
        if "" not in found or "down_" not in found:
            return None
        revisions.add(found[""])
        if found["down_"]:
            parents.add(found["down_"])
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


def ensure_schema(engine: Engine) -> None:
    """Migrate unless the database already stands at the newest revision: one indexed read when it
    does (every start of the command line), Alembic's upgrade when it does not or cannot tell."""
    head = script_head()
    if head is not None:
        try:
            with engine.connect() as conn:
                stored = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars().all()
        except sa.exc.DBAPIError:  # no alembic_version table yet: a new database
            stored = []
        if stored == [head]:
            return
    migrate(engine)


def schema_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()
