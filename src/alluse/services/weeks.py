"""Week types (ALLUSE_RULES §8): a prediction at week start, a confirmation at week end; fills carry
their week (the Monday of their trade date)."""

from __future__ import annotations

from datetime import date
from typing import NotRequired, TypedDict, cast

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from alluse.domain.errors import Conflict, InvalidInput
from alluse.domain.protocol import WeekType
from alluse.services.trades import week_start
from alluse.store.schema import weeks
from alluse.store.uow import Request, Tx, write

WEEK_TYPES = tuple(WeekType)


class WeekSet(TypedDict):
    week_start: str
    predicted: NotRequired[str]  # the one of the two the call set
    confirmed: NotRequired[str]
    replayed: NotRequired[bool]


def set_week(
    engine: Engine, actor: str, portfolio: str | int | None, key: str, stage: str, week_type: str, week_of: date
) -> WeekSet:
    """stage "predict" (at week start) or "confirm" (at week end). A prediction is not changed once the
    week is confirmed: the accuracy report must measure what was predicted before the week was known."""
    stage, week_type = stage.lower(), week_type.strip().upper()
    if stage not in ("predict", "confirm"):
        raise InvalidInput("stage must be predict or confirm")
    if week_type not in WEEK_TYPES:
        raise InvalidInput(f"week type must be one of {', '.join(WEEK_TYPES)}, got {week_type!r}")
    monday = week_start(week_of)

    def apply(tx: Tx, _reqs: list[Request]) -> list[WeekSet]:
        w = weeks.c
        row = tx.conn.execute(
            sa.select(w.predicted, w.confirmed).where(w.portfolio_id == tx.portfolio_id, w.week_start == monday)
        ).first()
        column = "predicted" if stage == "predict" else "confirmed"
        if row is None:
            tx.conn.execute(
                weeks.insert().values(portfolio_id=tx.portfolio_id, week_start=monday, **{column: week_type})
            )
        else:
            if stage == "predict" and row.confirmed is not None:
                raise Conflict(f"week of {monday} is already confirmed {row.confirmed}: its prediction is final")
            tx.conn.execute(
                weeks.update()
                .where(w.portfolio_id == tx.portfolio_id, w.week_start == monday)
                .values(**{column: week_type})
            )
        if stage == "predict":
            return [{"week_start": monday.isoformat(), "predicted": week_type}]
        return [{"week_start": monday.isoformat(), "confirmed": week_type}]

    payload = {"stage": stage, "type": week_type, "week": monday.isoformat()}
    return cast(WeekSet, write(engine, portfolio, actor, f"week.{stage}", [Request(key, payload)], apply)[0])
