"""A unit of work that writes many rows of a table records them column by column in its manifest
(store/rowlog.py), and every unit of work its outbox events' payloads as references to its entries'
results: verify reads them as it reads the row-by-row spelling, catches every edit of the rows they
cover, and still verifies manifests spelled row by row whatever their size, without references
(every database written before)."""

from __future__ import annotations

import json
from datetime import date

import pytest
import sqlalchemy as sa
from test_tamper_campaign import run_campaign

from alluse.services import cash, groups
from alluse.services.trades import Fill, FillAction, record_fills
from alluse.services.verify import verify, verify_on
from alluse.store import rowlog
from alluse.store.schema import audit_log, events, metadata

GROUPS = 20
MOVES = 60
FILLS = 40


def _bulk(engine: sa.Engine, portfolio: str) -> None:
    """Group openings, cash moves and fills, each kind in one unit of work of many requests."""
    opened = groups.open_groups(
        engine, "t", portfolio, [(f"g{i}", groups.group_opening(1_000_000)) for i in range(GROUPS)]
    )
    gens = [g["accounts"]["GEN"]["account_id"] for g in opened]
    moves = [
        (
            f"m{i}",
            cash.deposit(gens[i % GROUPS], 5_000, group=False) if i % 3 else cash.withdrawal(gens[i % GROUPS], 700),
        )
        for i in range(MOVES)
    ]
    cash.move_cash(engine, "t", portfolio, moves)
    facts = []
    for i in range(FILLS):
        action = FillAction.BTO if (i // 10) % 2 == 0 else FillAction.STC
        facts.append((f"f{i}", Fill(f"A{1 + i % 10}-COM", action, "XYZ", 10, "10.25", 100, date(2027, 1, 4))))
    # A purchase that leaves a Com-Acc below its buffer: an alert event, whose payload is its own,
    # not its entry's result, beside the announcing ones.
    facts.append(("f-big", Fill("A1-COM", FillAction.BTO, "XYZ", 290, "10.25", 100, date(2027, 1, 5))))
    record_fills(engine, "t", portfolio, facts)


def _manifests(engine: sa.Engine) -> list[dict[str, object]]:
    with engine.connect() as conn:
        q = sa.select(audit_log.c.rows).where(audit_log.c.rows.is_not(None)).order_by(audit_log.c.seq)
        texts = conn.execute(q).scalars()
        return [json.loads(t) for t in texts]


@pytest.fixture
def bulk(engine: sa.Engine, portfolio: str) -> sa.Engine:
    _bulk(engine, portfolio)
    return engine


def test_many_rows_are_recorded_column_by_column_and_verify(bulk: sa.Engine) -> None:
    columnwise = {table for m in _manifests(bulk) for table, rows in m.items() if isinstance(rows, dict)}
    assert {"accounts", "events", "postings", "transfers", "fills", "lots", "lot_closes"} <= columnwise
    events = [m["events"] for m in _manifests(bulk) if isinstance(m.get("events"), dict)]
    # Announcing events name their entry's result instead of repeating it ...
    assert all("result" in e for e in events)
    # ... and an alert, whose payload is its own, keeps its text beside them.
    mixed = [e for e in events if isinstance(e["c"][e["result"][0]], list)]  # type: ignore[index]
    assert mixed, "no bulk unit of work wrote an event of its own"
    report = verify(bulk)
    assert report.ok, report.problems


def test_every_edit_of_a_row_recorded_column_by_column_is_caught(bulk: sa.Engine) -> None:
    """The tamper campaign on the newest row of each table the bulk units of work wrote."""
    tables = [
        metadata.tables[n] for n in ("accounts", "events", "postings", "transfers", "fills", "lots", "lot_closes")
    ]
    missed = run_campaign(bulk, tables, last=True)
    assert not missed, "\n".join(missed)


def test_an_edited_alert_payload_written_beside_references_is_caught(bulk: sa.Engine) -> None:
    with bulk.begin() as conn:
        conn.execute(events.update().where(events.c.kind.like("alert.%")).values(payload=events.c.payload + " "))
    report = verify(bulk)
    assert any(f.table == "events" for f in report.findings), report.problems


def test_an_event_whose_payload_no_longer_repeats_its_result_is_caught(bulk: sa.Engine) -> None:
    with bulk.begin() as conn:
        conn.execute(events.update().where(events.c.kind == "cash.move").values(payload="{}"))
    report = verify(bulk)
    assert sum(f.table == "events" for f in report.findings) >= MOVES


def test_manifests_spelled_row_by_row_still_verify(
    engine: sa.Engine, portfolio: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every manifest written before the column-by-column spelling is row by row, however many rows."""
    monkeypatch.setattr(rowlog, "_COLUMNWISE", 10**9)
    # Nor did a manifest of few rows refer to any result.
    manifest = rowlog.Capture.manifest
    monkeypatch.setattr(rowlog.Capture, "manifest", lambda cap, results=None: manifest(cap))
    before = len(_manifests(engine))
    _bulk(engine, portfolio)
    spelled = [rows for m in _manifests(engine)[before:] for rows in m.values()]
    assert spelled and all(isinstance(rows, list) and len(rows) == 2 for rows in spelled)
    monkeypatch.undo()
    report = verify(engine)
    assert report.ok, report.problems


@pytest.fixture
def singles(engine: sa.Engine, portfolio: str) -> sa.Engine:
    """Units of work of one request each: a group opening, a purchase that leaves its Com-Acc below
    its buffer (an alert, whose payload is its own), then a cash move (its event the newest row)."""
    gen = groups.open_group(engine, "t", portfolio, "s1", groups.group_opening(1_000_000))["accounts"]["GEN"]
    record_fills(
        engine, "t", portfolio, [("s2", Fill("A1-COM", FillAction.BTO, "XYZ", 290, "10.25", 100, date(2027, 1, 5)))]
    )
    cash.move_cash(engine, "t", portfolio, [("s3", cash.deposit(gen["account_id"], 5_000, group=False))])
    return engine


def test_a_few_events_refer_to_their_entry_s_result(singles: sa.Engine) -> None:
    events = [m["events"] for m in _manifests(singles)[-3:]]
    assert len(events) == 3 and all(isinstance(e, list) and len(e) == 3 for e in events)
    at = events[0][2][0]  # type: ignore[index]
    payloads = [image[at] for e in events for image in e[1]]  # type: ignore[index]
    assert None in payloads and any(p is not None for p in payloads), "no alert kept its payload"
    report = verify(singles)
    assert report.ok, report.problems


def test_every_edit_of_a_row_recorded_with_a_reference_is_caught(singles: sa.Engine) -> None:
    tables = [
        metadata.tables[n]
        for n in ("events", "accounts", "postings", "transfers", "account_groups", "brokerage_accounts")
    ]
    missed = run_campaign(singles, tables, last=True)
    assert not missed, "\n".join(missed)


def test_an_edited_payload_of_a_few_events_is_caught(singles: sa.Engine) -> None:
    for kind in ("alert.%", "group.open", "trade.fill", "cash.%"):
        with singles.begin() as conn:
            conn.execute(events.update().where(events.c.kind.like(kind)).values(payload=events.c.payload + " "))
            report = verify_on(conn)
            conn.rollback()
        assert any(f.table == "events" for f in report.findings), (kind, report.problems)
