"""`alluse project`: the method simulated forward under a scenario (docs/projections.md)."""

import csv
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from alluse.cli.common import app, friendly, state
from alluse.cli.render import console, usd
from alluse.domain.tax import NOTE

# The method's published moderate growth model, year 10 (the figures docs/projections.md compares with).
PUBLISHED = {
    "moderate": {
        "gen_cents": 41_257_800,
        "rev_cents": 20_309_200,
        "com_cents": 37_135_800,
        "total_cents": 98_702_800,
        "monthly_income_cents": 1_184_400,
        "first_fork_month": 27,
        "forks": 2,
    },
}
_LABELS = {
    "total_cents": "Total value",
    "booked_cents": "Booked results",
    "gen_cents": "Gen-Acc network",
    "rev_cents": "Rev-Acc",
    "com_cents": "Com-Acc",
    "monthly_income_cents": "Monthly income",
    "withdrawn_cents": "Income withdrawn",
    "tax_paid_cents": "Tax paid",
    "groups": "Groups",
    "accounts": "Accounts",
    "gen_forks": "Gen-Acc forks",
    "rev_forks": "Rev-Acc forks",
    "merges": "Merges",
}


def _band(p: dict[str, int], money: bool = True) -> str:
    f = usd if money else str
    return f"{f(p['p50'])} [{f(p['p5'])} – {f(p['p95'])}]"


def _table(s: dict[str, Any]) -> Table:
    t = Table(
        title=f"Projection '{s['scenario']}' from the {s['start']}: {s['paths']:,} path(s), seed {s['seed']}"
        + (" (exact engine path)" if s["exact"] else "")
        + (" — median [5 % – 95 %]" if s["paths"] > 1 else ""),
        title_justify="left",
    )
    for col in ("Year", "Total value", "Gen-Acc network", "Rev-Acc", "Com-Acc", "Monthly income", "Tax paid",
                "Groups", "Accounts", "Forks", "Merges"):  # fmt: skip
        t.add_column(col, justify="left" if col == "Year" else "right")
    for r in s["years"]:
        forks = r["gen_forks"]["p50"] + r["rev_forks"]["p50"]
        total = _band(r["total_cents"]) if s["paths"] > 1 else usd(r["total_cents"]["p50"])
        t.add_row(
            str(r["year"]), total, usd(r["gen_cents"]["p50"]), usd(r["rev_cents"]["p50"]),
            usd(r["com_cents"]["p50"]), usd(r["monthly_income_cents"]["p50"]), usd(r["tax_paid_cents"]["p50"]),
            str(r["groups"]["p50"]), str(r["accounts"]["p50"]), str(forks), str(r["merges"]["p50"]),
        )  # fmt: skip
    return t


def _csv_rows(s: dict[str, Any]) -> list[list[Any]]:
    rows: list[list[Any]] = [["year", "metric", "p5", "p25", "p50", "p75", "p95"]]
    for r in s["years"]:
        for metric, p in r.items():
            if metric != "year":
                rows.append([r["year"], metric, *(p[f"p{q}"] for q in (5, 25, 50, 75, 95))])
    return rows


def _run(scenario: str, paths: int | None, seed: int | None, years: int | None, exact: bool, portfolio: bool) -> dict:
    from alluse.sim.project import load_scenario, project

    sc = load_scenario(scenario, paths=paths, seed=seed, years=years)
    engine = state.engine() if portfolio else None
    if console.is_terminal:
        from rich.progress import Progress

        with Progress(console=console, transient=True) as bar:
            task = bar.add_task(f"projecting '{sc.name}'", total=sc.horizon_years)
            return project(sc, engine=engine, portfolio=state.portfolio, exact=exact,
                           progress=lambda done, _total: bar.update(task, completed=done))  # fmt: skip
    return project(sc, engine=engine, portfolio=state.portfolio, exact=exact)


@app.command("project")
@friendly
def project_cmd(
    scenario: Annotated[
        str, typer.Option("--scenario", "-s", help="conservative, moderate, optimistic, or a TOML scenario file.")
    ] = "moderate",
    paths: Annotated[int | None, typer.Option(help="Number of paths (default: the scenario's).")] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed (default: the scenario's).")] = None,
    years: Annotated[int | None, typer.Option(help="Horizon in years (default: the scenario's).")] = None,
    exact: Annotated[
        bool, typer.Option("--exact", help="One path through the real engine on a throw-away database (--paths 1).")
    ] = False,
    from_portfolio: Annotated[
        bool, typer.Option("--from-portfolio", help="Start from the portfolio as it stands (read only).")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    csv_path: Annotated[Path | None, typer.Option("--csv", help="Write the per-year percentiles as CSV.")] = None,
    png: Annotated[Path | None, typer.Option("--png", help="Write the fan chart as PNG.")] = None,
    compare_published: Annotated[
        bool,
        typer.Option("--compare-published", help="Run the three shipped scenarios; print the comparison tables."),
    ] = False,
) -> None:
    """Simulate the method forward in weekly steps with the engine's own rules. Never writes to the
    portfolio."""
    if compare_published:
        _compare(paths, seed)
        return
    s = _run(scenario, paths, seed, years, exact, from_portfolio)
    if csv_path:
        with csv_path.open("w", newline="") as f:
            csv.writer(f).writerows(_csv_rows(s))
    if png:
        from alluse.charts import projection_png

        projection_png(s, str(png))
    if as_json:
        json.dump(s, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return
    console.print(_table(s))
    f = s["first_fork_month"]
    if f["paths_with_a_fork"] and s["paths"] == 1:
        console.print(f"first fork: month {f['p50']}")
    elif f["paths_with_a_fork"]:
        console.print(
            f"first fork: month {f['p50']} (median; 5–95 %: {f['p5']}–{f['p95']}) in "
            f"{f['paths_with_a_fork']:,} of {s['paths']:,} path(s)"
        )
    else:
        console.print("no fork within the horizon")
    for e in s.get("events", []):
        console.print(f"  {e['day']}  {e['rule']:<8} account #{e['account']}  {usd(e['amount_cents'])}")
    console.print(f"[dim]{s['seconds']} s; tax figures are an {NOTE}; a projection, not a forecast.[/]")


def _compare(paths: int | None, seed: int | None) -> None:
    """Markdown tables for docs/projections.md: the published model beside the engine's median and
    5–95 % band at year 10 (or the last year), for each shipped scenario."""
    from alluse.sim.project import load_scenario, project
    from alluse.sim.scenario import SHIPPED

    out = []
    for name in SHIPPED:
        sc = load_scenario(name, paths=paths, seed=seed)
        s = project(sc)
        last = s["years"][-1]
        pub = PUBLISHED.get(name, {})
        out.append(f"### {name} ({s['paths']:,} paths, seed {s['seed']}, year {last['year']})\n")
        out.append("| figure | published model | engine median | engine 5–95 % |")
        out.append("|---|---:|---:|---:|")
        for metric in ("gen_cents", "rev_cents", "com_cents", "total_cents", "monthly_income_cents", "tax_paid_cents"):
            p = last[metric]
            published = usd(pub[metric]) if metric in pub else "—"
            out.append(f"| {_LABELS[metric]} | {published} | {usd(p['p50'])} | {usd(p['p5'])} – {usd(p['p95'])} |")
        forks = last["gen_forks"]
        out.append(
            f"| Gen-Acc forks by year {last['year']} | {pub.get('forks', '—')} | {forks['p50']} | "
            f"{forks['p5']} – {forks['p95']} |"
        )
        out.append(f"| Rev-Acc forks / merges | — | {last['rev_forks']['p50']} / {last['merges']['p50']} | "
                   f"{last['rev_forks']['p95']} / {last['merges']['p95']} (95 %) |")  # fmt: skip
        f = s["first_fork_month"]
        first = f"{f['p50']}" if f["paths_with_a_fork"] else "none"
        band = f"{f['p5']} – {f['p95']}" if f["paths_with_a_fork"] else "—"
        out.append(f"| month of the first fork | {pub.get('first_fork_month', '—')} | {first} | {band} |")
        out.append(
            f"| accounts (active) | — | {last['accounts']['p50']} | {last['accounts']['p5']} – {last['accounts']['p95']} |\n"
        )
    print("\n".join(out))
