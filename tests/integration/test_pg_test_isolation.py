"""The cause of the one-cent flake in `test_pnl_reconciles_with_nav[postgres]`, reproduced: a writer
that outlives its test commits in the middle of the next test's wipe. Its postings survive (they were
not yet visible when the wipe deleted postings) while their transfer and account are deleted; with
the sequences reset, the next test's account with that id "owns" them, and verify finds a cached
balance off by their amount. The wipe (`tests/conftest._truncate_pg`) now ends such a writer first
and holds every table exclusively, so nothing straddles it."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from alluse.domain.ledger import Leg, TransferKind
from alluse.services import groups
from alluse.services.portfolios import create_portfolio
from alluse.store.db import make_engine
from alluse.store.repo import JournalEntry, insert_journal
from alluse.store.schema import accounts, metadata
from tests.conftest import _truncate_pg

pytestmark = pytest.mark.postgres


def test_a_writer_outliving_its_test_leaves_nothing_behind_the_wipe(pg: sa.Engine) -> None:
    pid = create_portfolio(pg, "t", "stale", "k:stale")["portfolio_id"]
    groups.open_group(pg, "t", "stale", "open", groups.group_opening(1_000_000))
    with pg.connect() as conn:
        ids = dict(conn.execute(sa.select(accounts.c.name, accounts.c.id)).all())
    stray = make_engine(pg.url.render_as_string(hide_password=False))
    ready, outcome = threading.Event(), []

    def stray_writer() -> None:
        # A one-cent move, as a worker of an earlier test would make it: postings, then its cached
        # balances, committed a moment later, while the next test is already wiping the database.
        conn = stray.connect()
        tx = conn.begin()
        legs = [Leg(ids["A1-GEN"], -1), Leg(ids["ext:bank"], 1)]
        insert_journal(conn, pid, datetime.now(UTC), [JournalEntry(TransferKind.WITHDRAWAL, legs, 999)])
        conn.execute(
            accounts.update().where(accounts.c.id == ids["A1-GEN"]).values(cash_cents=accounts.c.cash_cents - 1)
        )
        ready.set()
        threading.Event().wait(1.0)
        try:
            tx.commit()
            outcome.append("committed")
        except sa.exc.DBAPIError:
            outcome.append("ended")
        finally:
            conn.invalidate()

    t = threading.Thread(target=stray_writer)
    t.start()
    assert ready.wait(30)
    ended = _truncate_pg(pg)
    t.join(30)
    stray.dispose()
    with pg.connect() as conn:
        left = {tbl.name: conn.execute(sa.select(sa.func.count()).select_from(tbl)).scalar_one()
                for tbl in metadata.sorted_tables}  # fmt: skip
    assert set(left.values()) == {0}, {k: v for k, v in left.items() if v}
    assert len(ended) == 1 and outcome == ["ended"]  # the stray writer was ended, its work rolled back
