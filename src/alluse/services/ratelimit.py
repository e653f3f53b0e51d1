"""Login throttling: at most N login attempts per username and per client address in a fixed window,
counted in the database so that every server process shares one count.

The check and the count are one statement: an upsert that adds the attempt and returns the new
count (`INSERT … ON CONFLICT DO UPDATE … RETURNING`, on SQLite and PostgreSQL alike). An attempt
whose count is over the limit is refused before the password is checked, so N parallel wrong
logins let exactly the limit through to the password check, never more. A successful login clears
the username's count and gives the address back its attempt, so only failures use up the budget.

Why not the `limits` library: its storages are memory (per process), Redis, Memcached, MongoDB and
etcd; none is the SQL database every alluse deployment already has (docs/security.md)."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from alluse.domain.errors import TooManyAttempts
from alluse.store.db import writer_lock
from alluse.store.schema import login_throttle
from alluse.store.uow import write_connection

T = login_throttle.c


def _digest(key: str) -> str:
    # What was typed as a username is not stored; the digest is enough to count it.
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


class LoginThrottle:
    def __init__(
        self, engine: sa.Engine, max_attempts: int, window_seconds: int, clock: Callable[[], float] = time.time
    ) -> None:
        self.engine = engine
        self.max_attempts = max_attempts
        self.window = window_seconds
        self.clock = clock
        insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert
        stmt = insert(login_throttle).values(key=sa.bindparam("k"), window_start=sa.bindparam("w"), attempts=1)
        same_window = T.window_start == stmt.excluded.window_start
        self._hit = stmt.on_conflict_do_update(
            index_elements=[T.key],
            set_={
                "attempts": sa.case((same_window, T.attempts + 1), else_=1),
                "window_start": stmt.excluded.window_start,
            },
        ).returning(T.attempts)

    def attempt(self, *keys: str) -> None:
        """Count one attempt against every key; refuse (429) when any key is over its limit. Refused
        attempts count too."""
        now = self.clock()
        start = int(now // self.window * self.window)
        with writer_lock(self.engine), write_connection(self.engine) as conn, conn.begin():
            counts = [conn.execute(self._hit, {"k": _digest(k), "w": start}).scalar_one() for k in keys]
            # Rows of finished windows go here. SKIP LOCKED (PostgreSQL; SQLite has one writer at a
            # time anyway): a row another attempt holds is left for later, so pruning never waits
            # and two attempts cannot deadlock.
            stale = sa.select(T.key).where(T.window_start < start).with_for_update(skip_locked=True)
            conn.execute(login_throttle.delete().where(T.key.in_(stale.scalar_subquery())))
        if max(counts) > self.max_attempts:
            retry = max(1, int(start + self.window - now + 0.999))
            raise TooManyAttempts(f"too many login attempts; try again in {retry} s", retry)

    def succeeded(self, username_key: str, client_key: str) -> None:
        with writer_lock(self.engine), write_connection(self.engine) as conn, conn.begin():
            conn.execute(login_throttle.delete().where(T.key == _digest(username_key)))
            conn.execute(
                login_throttle.update()
                .where(T.key == _digest(client_key), T.attempts > 0)
                .values(attempts=T.attempts - 1)
            )
