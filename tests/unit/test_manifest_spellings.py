"""The two spellings of a table's rows in a manifest (store/rowlog.py) say the same: whatever the rows,
reading back either spelling, outbox payloads referring to their entries' results or not, gives for
every key the image the row-by-row spelling without references gives (the last one written for that
key, or None for a deleted row)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from alluse.domain.audit import canonical_json, timestamp_text
from alluse.store import rowlog
from alluse.store.schema import events, lot_closes, portfolio_roles, postings, weeks

AT = datetime(2026, 11, 30, 12, 0, 1, 5, tzinfo=UTC)
ON = date(2027, 1, 4)
SEQS = st.integers(1, 6)


def _value(column: Any, seq_column: bool) -> st.SearchStrategy[Any]:
    """Few distinct values, so columns are often constant or runs; every type the hot path hands in."""
    if seq_column:
        return SEQS
    if column.name == "id":
        return st.integers(1, 40)
    python = column.type.python_type
    if python is int:
        return st.one_of(st.integers(-3, 3), st.just(10**12), st.none() if column.nullable else st.integers(5, 6))
    if python is bool:
        return st.booleans()
    if python is datetime:
        return st.sampled_from([AT, timestamp_text(AT)])
    if python is date:
        return st.sampled_from([ON, ON.isoformat(), date(2027, 1, 11)])
    return st.one_of(
        st.sampled_from(["", "a", '{"r":1}', 'é\n"x"']), st.just(None) if column.nullable else st.just("b")
    )


def _images(table: Any) -> st.SearchStrategy[list[list[Any]]]:
    s = rowlog.shape(table)
    seq_at = s.result_at[1] if s.result_at else -1
    row = st.tuples(*[_value(c, i == seq_at) for i, c in enumerate(s.columns)]).map(list)
    ranges = st.integers(1, 30).map(lambda n: [[i, *([None] * (len(s.columns) - 1))] for i in range(100, 100 + n)])
    return st.one_of(st.lists(row, min_size=1, max_size=40), ranges.flatmap(lambda rs: _filled(rs, row)))


def _filled(rows: list[list[Any]], row: st.SearchStrategy[list[Any]]) -> st.SearchStrategy[list[list[Any]]]:
    """Rows with consecutive ids (a run) and the other columns drawn."""
    return st.lists(row, min_size=len(rows), max_size=len(rows)).map(
        lambda drawn: [[r[0], *d[1:]] for r, d in zip(rows, drawn, strict=True)]
    )


def _final(keys: list[Any], images: list[Any]) -> dict[Any, Any]:
    return {tuple(k) if type(k) is list else k: image for k, image in zip(keys, images, strict=True)}


def _check(table: Any, images: list[list[Any]], gone: list[Any], results: dict[int, str]) -> None:
    """Both spellings, referring to `results` where they can, read back as the rows spelled without."""
    s = rowlog.shape(table)
    plain = _final(*rowlog.table_rows(json.loads(canonical_json(rowlog._rows(s, images, gone, {}))), {}))
    by_rows = json.loads(canonical_json(rowlog._rows(s, images, gone, results)))
    by_columns = json.loads(canonical_json(rowlog._columns(s, images, gone, results)))
    assert isinstance(by_rows, list) and isinstance(by_columns, dict)
    assert _final(*rowlog.table_rows(by_rows, results)) == plain
    assert _final(*rowlog.table_rows(by_columns, results)) == plain


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_column_by_column_reads_back_as_row_by_row(data: st.DataObject) -> None:
    table = data.draw(st.sampled_from([postings, lot_closes, events, weeks, portfolio_roles]))
    images = data.draw(_images(table))
    if len(rowlog.shape(table).pk_at) == 1:
        gone = data.draw(st.lists(st.integers(1, 50), max_size=3))
    else:  # keys as the manifest notes them: tuples of spelled values
        gone = data.draw(st.lists(st.tuples(st.integers(-3, 3), st.sampled_from(["2027-01-04", "a"])), max_size=3))
    _check(table, images, gone, {})


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_event_payloads_that_repeat_their_entry_s_result_read_back_as_that_result(data: st.DataObject) -> None:
    s = rowlog.shape(events)
    assert s.result_at is not None
    text_at, seq_at = s.result_at
    results = data.draw(st.dictionaries(SEQS, st.sampled_from(['{"r":1}', '{"r":2}', 'é\n"x"']), min_size=1))
    images = data.draw(_images(events))
    for image in images:  # most events announce their entry: its result, the same text
        if data.draw(st.booleans()) and image[seq_at] in results:
            image[text_at] = results[image[seq_at]]
    _check(events, images, [], results)


def test_a_column_of_the_wrong_length_is_refused() -> None:
    s = rowlog.shape(postings)
    rows = json.loads(canonical_json(rowlog._columns(s, [[i, 1, 2, 3, 4] for i in range(1, 20)], [], {})))
    rows["c"][4] = [5]
    try:
        rowlog.table_rows(rows, {})
    except ValueError:
        return
    raise AssertionError("a malformed manifest was read")
