"""The lifecycle (§5): plan (changes nothing), run (forks, merges, quarterly reinvestment, exactly once),
history, earmarks planned versus executed, and the fork/merge tree."""

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Query

from alluse.api.deps import Ctx, Owner, Viewer
from alluse.api.money import typed_money
from alluse.api.problems import responses
from alluse.api.schemas.common import Day, usd
from alluse.api.schemas.lifecycle import AsOfIn, EarmarkRowOut, HistoryRowOut, PlanRowOut, RunOut, TreeNodeOut
from alluse.services import lifecycle
from alluse.services.earmarks import EarmarkLine, earmark_report
from alluse.views import lifecycle as lifecycle_view

router = APIRouter(tags=["lifecycle"], responses=responses(400, 401, 403, 404, 409, 422))

# Per-rule maps of cents whose keys are names (sleeve kinds, purposes, account ids), not `*_cents`.
_CENT_MAPS = ("legs", "moves", "earmarks")


def _dollars(row: Any, shape: type) -> dict[str, Any]:
    out: dict[str, Any] = typed_money(row, shape)
    for k in _CENT_MAPS:
        if isinstance(row.get(k), dict):
            out[k] = {name: usd(cents) for name, cents in row[k].items()}
    return out


@router.get("/portfolios/{portfolio}/lifecycle/plan", response_model=list[PlanRowOut])
def plan(scope: Viewer, c: Ctx, as_of: Annotated[Day, Query(description="The day the rules run for")]) -> list:
    """Every action a run on `as_of` would take, with amounts and reasons. Changes nothing."""
    return [_dollars(r, lifecycle.PlannedAction) for r in lifecycle.plan(c.engine, scope.portfolio_id, as_of)]


@router.post("/portfolios/{portfolio}/lifecycle/run", response_model=RunOut)
def run(scope: Owner, body: AsOfIn, c: Ctx) -> dict:
    """Owner: apply the plan. Every action is one unit of work keyed by (rule, account or group, period
    or day), so repeating the request — or resuming after a failure — never acts twice: the answer
    then lists no applied actions. No Idempotency-Key is taken: the rule keys are the idempotency."""
    report = lifecycle.run(c.engine, scope.actor, scope.portfolio_id, body.as_of)
    out = asdict(report)
    out["applied"] = [_dollars(a, lifecycle.ActionApplied) for a in report.applied]
    return out


@router.get("/portfolios/{portfolio}/lifecycle/history", response_model=list[HistoryRowOut])
def history(scope: Viewer, c: Ctx) -> list:
    """Every lifecycle action applied so far, oldest first."""
    return typed_money(lifecycle_view.history(c.engine, scope.portfolio_id), list[lifecycle_view.ActionRecord])


@router.get("/portfolios/{portfolio}/lifecycle/earmarks", response_model=list[EarmarkRowOut])
def earmarks(scope: Viewer, c: Ctx) -> list:
    """Reinvestment planned versus executed per account and purpose."""
    return typed_money(earmark_report(c.engine, scope.portfolio_id), list[EarmarkLine])


@router.get("/portfolios/{portfolio}/tree", response_model=list[TreeNodeOut])
def tree(scope: Viewer, c: Ctx) -> list:
    """The fork/merge genealogy: root groups with their forks, recursively."""
    return typed_money(lifecycle_view.family_tree(c.engine, scope.portfolio_id), list[lifecycle_view.FamilyNode])
