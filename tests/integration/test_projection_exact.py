"""Projections against the real engine: for 20 seeds the fast simulator's path equals the exact
engine path to the cent (every sleeve's NAV at every quarter end, every fork and merge with its day
and amount, every yearly figure); the exact path on SQLite and PostgreSQL; a projection from the
portfolio reads it and writes nothing; the CLI and the API."""

from __future__ import annotations

import json
from collections import Counter

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from alluse.cli.main import app
from alluse.services import groups
from alluse.services.verify import verify
from alluse.sim import projection, scenario
from alluse.sim.exact import exact_path
from alluse.sim.project import load_scenario, project
from tests.conftest import db_state
from tests.projection_scenarios import BUSY, shipped_text, stress


def _same_path(fast: projection.Result, exact: projection.Result) -> None:
    assert fast.events == exact.events
    assert [(q.day, q.navs, q.active) for q in fast.quarters] == [(q.day, q.navs, q.active) for q in exact.quarters]
    for m in projection.YEAR_METRICS:
        assert fast.years[m].tolist() == exact.years[m].tolist(), m
    assert fast.first_fork_month.tolist() == exact.first_fork_month.tolist()


def test_fast_path_equals_the_engine_path_for_20_seeds() -> None:
    sc = stress(years=1)
    cfg = projection.lifecycle_config(sc, BUSY)
    seen: Counter[str] = Counter()
    for seed in range(20):
        exact = exact_path(sc, seed=seed, cfg=BUSY)
        fast = projection.simulate(sc, paths=1, seed=seed, cfg=cfg, record=True)
        _same_path(fast, exact)
        seen.update(e.rule for e in exact.events[0])
        assert len(exact.quarters) == 4
    # The seeds exercised every rule, many times.
    assert seen["GEN_FORK"] >= 20 and seen["REV_FORK"] >= 10 and seen["MERGE"] >= 10, seen


def test_exact_path_on_both_databases(engine: sa.Engine) -> None:
    """The busy scenario's year through the engine on SQLite and PostgreSQL: the same path, and the
    journal, balances and audit chain check out afterwards."""
    sc = stress(years=1)
    exact = exact_path(sc, seed=3, engine=engine, cfg=BUSY)
    _same_path(projection.simulate(sc, paths=1, seed=3, cfg=projection.lifecycle_config(sc, BUSY), record=True), exact)
    assert {e.rule for e in exact.events[0]} == {"GEN_FORK", "REV_FORK", "MERGE"}
    report = verify(engine)
    assert report.ok, report.problems


def test_published_moderate_exact_path_at_the_methods_thresholds() -> None:
    """Three years of the shipped moderate scenario at the engine's own configuration: the first
    Gen-Acc fork comes, on the same day and to the same cent in both."""
    sc = scenario.load("moderate").with_run(years=3)
    exact = exact_path(sc, seed=7)
    _same_path(projection.simulate(sc, paths=1, seed=7, record=True), exact)
    assert [e.rule for e in exact.events[0]] == ["GEN_FORK"] and exact.events[0][0].amount >= 5_000_000


def test_a_projection_from_the_portfolio_writes_nothing(engine: sa.Engine, portfolio: str) -> None:
    groups.open_group(engine, "t", portfolio, "open", groups.group_opening(25_000_000))
    before = db_state(engine)
    s = project(load_scenario("moderate", paths=50, years=2), engine=engine, portfolio=portfolio)
    assert db_state(engine) == before
    assert s["start"] == "portfolio" and s["years"][0]["accounts"]["p50"] == 3
    assert s["years"][0]["total_cents"]["p50"] > 25_000_000
    with pytest.raises(Exception, match="not built"):
        project(load_scenario("moderate", paths=1, years=1), engine=engine, portfolio=portfolio, exact=True)
    assert db_state(engine) == before


def test_cli_json_csv_png_and_a_bad_scenario(tmp_path) -> None:  # type: ignore[no-untyped-def]
    runner = CliRunner()
    out_csv, out_png = tmp_path / "p.csv", tmp_path / "p.png"
    r = runner.invoke(
        app, ["project", "--paths", "30", "--years", "2", "--json", "--csv", str(out_csv), "--png", str(out_png)]
    )
    assert r.exit_code == 0, r.output
    s = json.loads(r.output)
    assert s["paths"] == 30 and [y["year"] for y in s["years"]] == [1, 2]
    lines = out_csv.read_text().splitlines()
    assert lines[0] == "year,metric,p5,p25,p50,p75,p95" and len(lines) == 1 + 2 * len(projection.YEAR_METRICS)
    assert out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    bad = tmp_path / "bad.toml"
    bad.write_text(shipped_text().replace("monthly_yield_pct = 2.0", "monthly_yield_pct = 40"))
    r = runner.invoke(app, ["project", "--scenario", str(bad)])
    assert r.exit_code == 1
    assert "gen.monthly_yield_pct must be between -10 and 20, got 40" in r.output


def test_cli_exact_path() -> None:
    r = CliRunner().invoke(app, ["project", "--paths", "1", "--exact", "--years", "1", "--seed", "7"])
    assert r.exit_code == 0, r.output
    assert "exact engine path" in r.output and "no fork within the horizon" in r.output
    r = CliRunner().invoke(app, ["project", "--paths", "2", "--exact", "--years", "1"])
    assert r.exit_code == 1 and "--exact runs one path: use --paths 1" in r.output


def test_api_projection_scenarios_run_chart_and_portfolio(api, portfolio) -> None:  # type: ignore[no-untyped-def]
    h = api.user("vera", role="viewer")
    r = api.client.get("/projections/scenarios", headers=h)
    assert r.status_code == 200 and [s["name"] for s in r.json()] == ["conservative", "moderate", "optimistic"]
    r = api.client.post("/projections", json={"scenario": "optimistic", "paths": 20, "years": 2}, headers=h)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["paths"] == 20 and body["years"][1]["total"]["p50"].count(".") == 1
    r = api.client.post(
        "/projections", json={"scenario_toml": shipped_text().replace("seed = 20270104", "seed = -1")}, headers=h
    )
    assert r.status_code == 400 and "seed must be between 0" in r.text
    r = api.client.post("/projections", json={"paths": 10_000, "years": 10}, headers=h)
    assert r.status_code == 400 and "paths × years must be at most 5,000" in r.text
    r = api.client.post("/projections", json={"scenario": "reckless"}, headers=h)
    assert r.status_code == 400 and "scenario must be one of" in r.text
    r = api.client.post("/projections", json={"exact": True, "seed": 7}, headers=h)  # one path, one year
    assert r.status_code == 200, r.text
    assert r.json()["exact"] and r.json()["paths"] == 1 and [y["year"] for y in r.json()["years"]] == [1]
    r = api.client.post("/projections", json={"exact": True, "paths": 3}, headers=h)
    assert r.status_code == 400 and "paths: the exact path is one path, got 3" in r.text
    r = api.client.post("/projections", json={"exact": True, "years": 2}, headers=h)
    assert r.status_code == 400 and "the exact path runs 1 year" in r.text
    r = api.client.post("/projections/fan.png", json={"paths": 20, "years": 2}, headers=h)
    assert r.status_code == 200 and r.content[:4] == b"\x89PNG"
    api.client.post("/portfolios/main/groups", json={"amount": "100000"}, headers=api.user("olga", role="owner"))
    before = db_state(api.engine)
    r = api.client.get("/portfolios/main/projection", params={"paths": 20, "years": 2}, headers=h)
    assert r.status_code == 200, r.text
    assert r.json()["start"] == "portfolio" and r.json()["years"][0]["accounts"]["p50"] == 3
    assert db_state(api.engine) == before


def test_bench_projection_at_a_reduced_size() -> None:
    """`alluse bench --quick --only projection`: every figure printed, the baseline in the same run."""
    import io

    from alluse.bench.run import run_bench

    out = io.StringIO()
    run_bench("sqlite", quick=True, out=out, only="projection")
    rows = {r["metric"]: r for r in map(json.loads, out.getvalue().splitlines())}
    assert set(rows) == {
        "projection_path_years_per_s", "projection_s", "projection_cpu_s", "python_projection_path_years_per_s",
        "projection_vs_python", "projection_exact_path_s", "projection_exact_path_cpu_s",
    }  # fmt: skip
    assert all(r["value"] > 0 for r in rows.values())
    assert rows["projection_path_years_per_s"]["paths"] == 1_000 and rows["projection_exact_path_s"]["years"] == 1
