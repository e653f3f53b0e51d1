"""Projections (docs/projections.md): the method simulated forward under a scenario. Reads only:
a projection never writes to a portfolio."""

from __future__ import annotations

import io
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import Response
from pydantic import Field

from alluse.api.deps import Caller, Ctx, Viewer
from alluse.api.problems import responses
from alluse.api.schemas.common import In, usd
from alluse.domain.errors import InvalidInput
from alluse.sim.project import load_scenario, project
from alluse.sim.scenario import MAX_YEARS, SHIPPED

router = APIRouter(tags=["projections"], responses=responses(400, 401, 403, 404, 422))

# One request may use the machine for a second or two, not minutes: the CLI has no such limits.
MAX_API_PATHS = 10_000
MAX_API_PATH_YEARS = 5_000  # e.g. 500 paths × 10 years
DEFAULT_API_PATHS = 500
MAX_API_EXACT_YEARS = 1


class ProjectionIn(In):
    scenario: str = Field("moderate", description="A shipped scenario: conservative, moderate or optimistic")
    scenario_toml: str | None = Field(default=None, max_length=200_000, description="A whole scenario file instead")
    paths: int | None = Field(None, ge=1, le=MAX_API_PATHS)
    seed: int | None = Field(None, ge=0, le=2**63 - 1)
    years: int | None = Field(None, ge=1, le=MAX_YEARS)
    exact: bool = Field(
        default=False, description="One path through the real engine on a throw-away database (paths 1)"
    )


def _dollars(summary: dict[str, Any]) -> dict[str, Any]:
    """Percentiles of `*_cents` metrics as decimal-string dollars, as everywhere in the API."""
    out = dict(summary)
    out["years"] = [
        {(k.removesuffix("_cents")): ({q: usd(v) for q, v in p.items()} if k.endswith("_cents") else p)
         for k, p in row.items()}
        for row in summary["years"]
    ]  # fmt: skip
    if "events" in summary:
        out["events"] = [{**{k: v for k, v in e.items() if k != "amount_cents"}, "amount": usd(e["amount_cents"])}
                         for e in summary["events"]]  # fmt: skip
    return out


def _run(body: ProjectionIn) -> dict[str, Any]:
    if body.scenario_toml is None and body.scenario not in SHIPPED:
        raise InvalidInput(f"scenario must be one of {', '.join(SHIPPED)} (or send scenario_toml)")
    if body.exact:
        # One path of one year unless the request says otherwise (the scenario's own are 10,000 × 10).
        if body.paths not in (None, 1):
            raise InvalidInput(f"paths: the exact path is one path, got {body.paths}")
        years = MAX_API_EXACT_YEARS if body.years is None else body.years
        if years > MAX_API_EXACT_YEARS:
            raise InvalidInput(
                f"years: over the API the exact path runs {MAX_API_EXACT_YEARS} year (the CLI runs more)"
            )
        sc = load_scenario(body.scenario, body.scenario_toml, seed=body.seed, years=years, paths=1)
        return project(sc, exact=True)
    sc = _bounded(load_scenario(body.scenario, body.scenario_toml, seed=body.seed, years=body.years), body.paths)
    return project(sc)


def _bounded(sc: Any, paths: int | None) -> Any:
    """The request's paths (default 500), within the API's budget of path-years."""
    sc = sc.with_run(paths=paths if paths is not None else min(sc.paths, DEFAULT_API_PATHS))
    if sc.paths * sc.horizon_years > MAX_API_PATH_YEARS:
        raise InvalidInput(
            f"paths × years must be at most {MAX_API_PATH_YEARS:,} per request, got {sc.paths:,} × "
            f"{sc.horizon_years} (run more with `alluse project`)"
        )
    return sc


@router.get("/projections/scenarios")
def scenarios(_who: Caller) -> list[dict[str, Any]]:
    """The shipped scenarios (the method's published parameters)."""
    out = []
    for name in SHIPPED:
        sc = load_scenario(name)
        out.append({"name": name, "description": sc.description, "horizon_years": sc.horizon_years,
                    "paths": sc.paths, "seed": sc.seed, "capital": usd(sc.capital_cents)})  # fmt: skip
    return out


@router.post("/projections")
def run(_who: Caller, body: ProjectionIn) -> dict[str, Any]:
    """Simulate a scenario from its own start (capital and allocation); per-year percentiles over the
    paths (default 500; paths × years at most 5,000; the exact path for 1 year)."""
    return _dollars(_run(body))


@router.post("/projections/fan.png", response_class=Response, responses={200: {"content": {"image/png": {}}}})
def fan(_who: Caller, body: ProjectionIn) -> Response:
    """The same projection as a fan chart (PNG)."""
    from alluse.charts import projection_png

    buf = io.BytesIO()
    projection_png(_run(body), buf)
    return Response(buf.getvalue(), media_type="image/png")


@router.get("/portfolios/{portfolio}/projection")
def from_portfolio(
    scope: Viewer,
    c: Ctx,
    scenario: Annotated[str, Query(description="conservative, moderate or optimistic")] = "moderate",
    paths: Annotated[int | None, Query(ge=1, le=MAX_API_PATHS)] = None,
    seed: Annotated[int | None, Query(ge=0, le=2**63 - 1)] = None,
    years: Annotated[int | None, Query(ge=1, le=MAX_YEARS)] = None,
) -> dict[str, Any]:
    """Viewer: project the portfolio as it stands under a shipped scenario. Reads only."""
    body = ProjectionIn(scenario=scenario, paths=paths, seed=seed, years=years)
    if body.scenario not in SHIPPED:
        raise InvalidInput(f"scenario must be one of {', '.join(SHIPPED)}")
    sc = _bounded(load_scenario(scenario, seed=seed, years=years), paths)
    return _dollars(project(sc, engine=c.engine, portfolio=scope.portfolio_id))
