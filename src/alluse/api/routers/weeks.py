"""Week types: predicted at week start, confirmed at week end, and the accuracy of the predictions."""

from datetime import date

from fastapi import APIRouter

from alluse.api.deps import Ctx, IdemKey, Trader, Viewer
from alluse.api.problems import responses
from alluse.api.schemas.weeks import WeekAccuracyOut, WeekIn, WeekOut
from alluse.services.reports import WeekAccuracy, week_accuracy
from alluse.services.weeks import WeekSet, set_week

router = APIRouter(tags=["weeks"], responses=responses(400, 401, 403, 404, 409, 422))


@router.post("/portfolios/{portfolio}/weeks", response_model=WeekOut, status_code=201)
def set_type(scope: Trader, body: WeekIn, c: Ctx, key: IdemKey) -> WeekSet:
    """Predict (at week start) or confirm (at week end) a week's type. A prediction is final once the
    week is confirmed (409)."""
    week = body.week or date.today()
    return set_week(c.engine, scope.actor, scope.portfolio_id, key, body.stage, body.week_type, week)


@router.get("/portfolios/{portfolio}/weeks/accuracy", response_model=WeekAccuracyOut)
def accuracy(scope: Viewer, c: Ctx) -> WeekAccuracy:
    """How often the predicted week type was right, over weeks both predicted and confirmed."""
    return week_accuracy(c.engine, scope.portfolio_id)
