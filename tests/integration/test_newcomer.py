"""Transfer numbers per portfolio, the journal view, the default portfolio and lifecycle settings,
on SQLite and PostgreSQL (services and the REST API)."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa

from alluse.domain.errors import Conflict, InvalidInput, NotFound
from alluse.services import cash, configuration, journal, lifecycle
from alluse.services.groups import group_opening, open_group
from alluse.services.portfolios import create_portfolio, use_portfolio
from alluse.store.db import alembic_config, make_engine
from alluse.store.schema import audit_log, transfers
from tests.conftest import db_state


def _two_portfolios(engine: sa.Engine) -> None:
    for name in ("main", "other"):
        create_portfolio(engine, "test", name, f"create-{name}")
        open_group(engine, "test", name, f"open-{name}", group_opening(10_000_000, None, None, None))


def test_numbers_count_per_portfolio_and_reverse_takes_them(engine: sa.Engine) -> None:
    _two_portfolios(engine)
    for i in range(3):  # interleaved writes: each portfolio still counts 1, 2, 3 …
        for name in ("main", "other"):
            (r,) = cash.move_cash(engine, "test", name, [(f"{name}-d{i}", cash.deposit("A1-GEN", 100 + i))])
            assert r["transfer_number"] == i + 2
    r = cash.reverse(engine, "test", "other", None, "typo", "rev-1", number=3)
    assert (r["transfer_number"], r["reverses_transfer_number"]) == (5, 3)
    with engine.connect() as conn:
        numbers = conn.execute(
            sa.select(transfers.c.portfolio_id, transfers.c.number).order_by(transfers.c.portfolio_id, transfers.c.id)
        ).all()
    assert [n for _, n in numbers] == [1, 2, 3, 4, 1, 2, 3, 4, 5]
    j = journal.journal(engine, "other", kind="REVERSAL,DEPOSIT")
    assert [(t["number"], t["reverses"], t["reversed_by"]) for t in j["transfers"]] == [
        (2, None, None),
        (3, None, 5),
        (4, None, None),
        (5, 3, None),
    ]
    before = db_state(engine)
    with pytest.raises(Conflict, match="transfer #3 has already been reversed"):
        cash.reverse(engine, "test", "other", None, "again", "rev-2", number=3)
    with pytest.raises(NotFound, match="no transfer #9"):
        cash.reverse(engine, "test", "other", None, "x", "rev-3", number=9)
    with pytest.raises(InvalidInput, match="transfer #1 is a GROUP_OPEN"):
        cash.reverse(engine, "test", "other", None, "x", "rev-4", number=1)
    assert db_state(engine) == before


def test_the_default_portfolio(engine: sa.Engine) -> None:
    _two_portfolios(engine)
    with pytest.raises(InvalidInput, match=r"several portfolios exist \(main, other\)"):
        journal.journal(engine, None)
    assert use_portfolio(engine, "other") == "other"
    (r,) = cash.move_cash(engine, "test", None, [("d", cash.deposit("A1", 100))])
    assert journal.journal(engine, "other")["total"] == 2 and journal.journal(engine, "main")["total"] == 1
    with pytest.raises(NotFound, match="did you mean main"):
        use_portfolio(engine, "mian")


def test_lifecycle_settings_validated_audited_and_used_by_the_engine(engine: sa.Engine, portfolio: str) -> None:
    open_group(engine, "test", portfolio, "open", group_opening(10_000_000, None, None, None))
    before = db_state(engine)
    for key, value in [("gen_fork_threshold", "0"), ("gen_fork_split", "50/40"), ("com_shares_pct", "101")]:
        with pytest.raises(InvalidInput, match=key):
            configuration.set_value(engine, "test", portfolio, "portfolio", key, value, f"bad-{key}")
    assert db_state(engine) == before
    configuration.set_value(engine, "test", portfolio, "portfolio", "merge_threshold", "250000", "k1")
    with pytest.raises(InvalidInput, match="rev_fork_threshold: the Rev-Acc fork amount may not exceed"):
        configuration.set_value(engine, "test", portfolio, "portfolio", "rev_fork_threshold", "400000", "k2")
    configuration.set_value(engine, "test", portfolio, "portfolio", "rev_fork_amount", "300000", "k3")
    configuration.set_value(engine, "test", portfolio, "portfolio", "rev_fork_threshold", "400000", "k4")
    with engine.connect() as conn:
        cfg = configuration.portfolio_lifecycle(conn, _pid(conn))
        n = conn.execute(sa.select(sa.func.count()).where(audit_log.c.action == "config.set")).scalar_one()
    assert (cfg.merge_threshold, cfg.rev_fork_threshold, cfg.rev_fork_amount) == (25_000_000, 40_000_000, 30_000_000)
    assert n == 3
    shown = configuration.show(engine, portfolio, "portfolio")
    assert shown["lifecycle"]["merge_threshold"] == "$250,000.00"
    assert shown["overridden"] == ["merge_threshold", "rev_fork_amount", "rev_fork_threshold"]
    assert lifecycle.plan(engine, portfolio, date(2026, 12, 31)) == []


def _pid(conn: sa.Connection) -> int:
    from alluse.store.scope import resolve_portfolio

    return resolve_portfolio(conn, "main")


def test_lifecycle_settings_over_the_api(api, portfolio) -> None:  # type: ignore[no-untyped-def]
    owner = api.user("olivia", role="owner")
    viewer = api.user("vic", role="viewer")
    r = api.client.get("/portfolios/main/config/portfolio", headers=viewer)
    assert r.status_code == 200 and r.json()["lifecycle"]["gen_fork_threshold"] == "$50,000.00"
    body = {"key": "gen_fork_threshold", "value": "75000"}
    assert api.client.put("/portfolios/main/config/portfolio", json=body, headers=viewer).status_code == 403
    r = api.client.put("/portfolios/main/config/portfolio", json=body, headers=owner)
    assert r.status_code == 200, r.text
    assert r.json()["gen_fork_threshold"] == "$75,000.00"
    bad = api.client.put(
        "/portfolios/main/config/portfolio", json={"key": "gen_fork_split", "value": "90/20"}, headers=owner
    )
    assert bad.status_code == 400 and "gen_fork_split" in bad.json()["detail"]
    shown = api.client.get("/portfolios/main/config/portfolio", headers=viewer).json()
    assert shown["lifecycle"]["gen_fork_threshold"] == "$75,000.00" and shown["overridden"] == ["gen_fork_threshold"]


def test_the_migration_numbers_existing_transfers(tmp_path: Path) -> None:
    from alembic import command

    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0004_lifecycle")
        for pid in (1, 2):
            conn.exec_driver_sql(
                "INSERT INTO portfolios (id, name, creation_key, template, alloc_gen_bps, alloc_rev_bps, "
                f"alloc_com_bps, created_at) VALUES ({pid}, 'p{pid}', 'k{pid}', 'moderate', 4000, 3000, 3000, "
                "'2026-01-01 00:00:00')"
            )
        for tid, pid in [(1, 1), (2, 2), (3, 1), (4, 1), (5, 2)]:
            conn.exec_driver_sql(
                "INSERT INTO transfers (id, portfolio_id, kind, memo, audit_seq, created_at) "
                f"VALUES ({tid}, {pid}, 'DEPOSIT', '', {tid}, '2026-01-01 00:00:00')"
            )
        command.upgrade(cfg, "head")
    with engine.connect() as conn:
        rows = conn.execute(sa.select(transfers.c.id, transfers.c.number).order_by(transfers.c.id)).all()
        lifecycle_text = conn.exec_driver_sql("SELECT lifecycle FROM portfolios WHERE id = 1").scalar_one()
    assert [tuple(r) for r in rows] == [(1, 1), (2, 1), (3, 2), (4, 3), (5, 2)]
    assert json.loads(lifecycle_text) == {}
    engine.dispose()
