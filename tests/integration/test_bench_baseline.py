"""The bare-driver baselines of `alluse bench` write the texts the use cases write: for the same units
of work, audit entries of the same actions, events of the same kinds, a row manifest where the use case
puts one, and texts (each request's result, its event's payload, the manifests) of about the same size,
the manifests never longer, so a ratio to the baseline compares like with like."""

from __future__ import annotations

import io
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from alluse.bench import trades
from alluse.bench.run import Bench

N = 6
BULK = (3, 8, 10)  # groups, moves, fills


@pytest.fixture
def bench() -> Bench:
    b = Bench("sqlite", quick=True, out=io.StringIO())
    b.progress = None
    b.single_groups = b.single_moves = b.single_fills = N
    b.bulk_groups, b.bulk_moves, b.bulk_fills = BULK
    return b


def _entries(bench: Bench, run: Callable[[], float]) -> list[tuple]:
    """(action, result, manifest, event kind, event payload) of every audit entry `run` wrote, in order."""
    before = bench.n
    run()
    assert bench.n == before + 1, "one fresh database per run"
    with sqlite3.connect(Path(bench.tmp) / f"bench-{bench.n}.db") as db:
        return db.execute(
            "SELECT a.action, a.result, a.rows, e.kind, e.payload FROM audit_log a "
            "JOIN events e ON e.portfolio_id = a.portfolio_id AND e.audit_seq = a.seq ORDER BY a.seq"
        ).fetchall()


def _texts(entries: list[tuple]) -> tuple[int, int, int]:
    return (sum(len(e[1]) for e in entries), sum(len(e[2] or "") for e in entries), sum(len(e[4]) for e in entries))


@pytest.mark.parametrize(
    ("ours", "raw", "requests"),
    [
        (Bench.accounts_single, lambda b: b.raw_accounts(True), N),
        (Bench.accounts_bulk, lambda b: b.raw_accounts(False), BULK[0]),
        (Bench.postings_single, lambda b: b.raw_postings(True), N),
        (Bench.postings_bulk, lambda b: b.raw_postings(False), BULK[1]),
        (trades.fills_single, lambda b: trades.raw_fills(b, True), N),
        (trades.fills_bulk, lambda b: trades.raw_fills(b, False), BULK[2]),
    ],
    ids=["accounts-single", "accounts-bulk", "postings-single", "postings-bulk", "fills-single", "fills-bulk"],
)
def test_the_baseline_writes_what_the_use_case_writes(
    bench: Bench, ours: Callable[[Bench], float], raw: Callable[[Bench], float], requests: int
) -> None:
    # The timed units of work are the last ones: their entries, one per request.
    ours_timed, raw_timed = (
        _entries(bench, lambda: ours(bench))[-requests:],
        _entries(bench, lambda: raw(bench))[-requests:],
    )
    assert [(e[0], e[3]) for e in raw_timed] == [(e[0], e[3]) for e in ours_timed]  # actions and event kinds
    # A manifest on each unit of work's last entry, none on the others.
    assert [e[2] is None for e in raw_timed] == [e[2] is None for e in ours_timed]
    our_result, our_manifest, our_payload = _texts(ours_timed)
    raw_result, raw_manifest, raw_payload = _texts(raw_timed)
    assert 0.9 * our_result <= raw_result <= 1.05 * our_result
    assert 0.9 * our_payload <= raw_payload <= 1.05 * our_payload
    assert 0.6 * our_manifest <= raw_manifest <= our_manifest


def test_the_sweep_baseline_writes_what_the_sweep_writes(bench: Bench) -> None:
    bench.sweep_groups = 334  # about 11 acting: reinvestments and forks
    template = bench.lifecycle_template()

    def written(run: Callable[[], float]) -> tuple[list[tuple], list[tuple]]:
        run()
        with sqlite3.connect(Path(bench.tmp) / f"bench-{bench.n}.db") as db:
            entries = db.execute(
                "SELECT seq, result, rows FROM audit_log WHERE action = 'lifecycle' ORDER BY seq"
            ).fetchall()
            first = entries[0][0]
            events = db.execute(
                "SELECT kind, payload FROM events WHERE audit_seq >= ? ORDER BY kind, id", (first,)
            ).fetchall()
        return entries, events

    ours, our_events = written(lambda: bench.lifecycle_sweep(template))
    raw, raw_events = written(lambda: bench.raw_lifecycle(template))
    assert len(ours) == len(raw) == bench.sweep_acting > 0
    assert sorted(k for k, _p in raw_events) == sorted(k for k, _p in our_events)
    # One manifest per unit of work: the reinvestments', the forks'.
    assert sum(e[2] is not None for e in raw) == sum(e[2] is not None for e in ours) == 2
    our_result, raw_result = sum(len(e[1]) for e in ours), sum(len(e[1]) for e in raw)
    assert 0.9 * our_result <= raw_result <= 1.05 * our_result
    our_manifest, raw_manifest = sum(len(e[2] or "") for e in ours), sum(len(e[2] or "") for e in raw)
    assert 0.6 * our_manifest <= raw_manifest <= our_manifest
    # A lifecycle event's payload is the action's whole plan where the baseline writes its result:
    # smaller, never larger.
    our_payload, raw_payload = sum(len(p) for _k, p in our_events), sum(len(p) for _k, p in raw_events)
    assert 0.6 * our_payload <= raw_payload <= our_payload
