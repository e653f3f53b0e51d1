"""Prepared statements spell SQLite's dates and timestamps with `isoformat` (store/prepared.py): the same
text as SQLAlchemy's own processors, for every date, naive or zoned timestamp and odd value."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.dialects import sqlite

from alluse.store.prepared import _converter

_DIALECT = sqlite.dialect()
zones = st.one_of(st.none(), st.just(UTC), st.integers(-23 * 60, 23 * 60).map(lambda m: timezone(timedelta(minutes=m))))


def _both(column_type: sa.types.TypeEngine[Any]) -> tuple[Any, Any]:
    impl = column_type.dialect_impl(_DIALECT)
    proc = impl.bind_processor(_DIALECT)
    return proc, _converter("sqlite", impl, proc)


def _same(proc: Any, fast: Any, value: Any) -> None:
    try:
        expected = proc(value)
    except TypeError:
        with pytest.raises(TypeError):
            fast(value)
        return
    assert fast(value) == expected


@given(st.one_of(st.dates(), st.datetimes(timezones=zones), st.none(), st.text(max_size=3)))
def test_dates_as_sqlalchemy_spells_them(value: Any) -> None:
    proc, fast = _both(sa.Date())
    _same(proc, fast, value)
    _same(proc, fast, value)  # spelled before: from the texts kept by date


@given(st.one_of(st.datetimes(timezones=zones), st.dates(), st.none(), st.text(max_size=3)))
def test_timestamps_as_sqlalchemy_spells_them(value: Any) -> None:
    _same(*_both(sa.DateTime(timezone=True)), value)
    _same(*_both(sa.DateTime()), value)


def test_own_storage_formats_keep_their_processor() -> None:
    for t in (
        sqlite.DATE(storage_format="%(day)02d/%(month)02d/%(year)04d"),
        sqlite.DATETIME(truncate_microseconds=True),
    ):
        proc, fast = _both(t)
        for value in (date(2027, 1, 4), datetime(2027, 1, 4, 9, 30, 5, 7)):
            _same(proc, fast, value)
    assert fast(datetime(2027, 1, 4, 9, 30, 5, 7)) == "2027-01-04 09:30:05"
    assert _both(sa.Date())[1](date(5, 1, 2)) == "0005-01-02"
