"""Bodies of the weeks routes (api/routers/weeks.py)."""

from datetime import date
from typing import Literal

from pydantic import BaseModel, Field

from alluse.api.schemas.common import Day, In


class WeekIn(In):
    stage: Literal["predict", "confirm"]
    week_type: Literal["GREEN", "RED", "CHOP"]
    week: Day | None = Field(None, description="Any day of the week (default: this week)")


class WeekOut(BaseModel):
    week_start: date
    predicted: str | None = None
    confirmed: str | None = None
    replayed: bool = False


class HitRate(BaseModel):
    correct: int
    weeks: int


class WeekAccuracyOut(BaseModel):
    weeks: int
    correct: int
    by_predicted: dict[str, HitRate]
