"""The one chart module: what a user noticed in the PNGs stays fixed (no future months, income on its
own scale, dollar and percent axes, a portfolio total, thinned week labels)."""

from __future__ import annotations

import io
from datetime import date
from decimal import Decimal

from alluse import charts


def _monthly(year: int) -> dict:
    months = []
    for m in range(1, 13):
        months.append(
            {
                "month": f"{year}-{m:02d}",
                "income_cents": 12_345 * m,
                "reinvested_cents": 5_000_000 if m == 3 else 0,
                "estimated_tax_cents": 3_700 * m,
                "growth_cents": {"A1-GEN": 10_000 * m, "A1-COM": -2_500},
            }
        )
    return {"year": year, "months": months}


def test_monthly_draws_no_future_month_and_gives_income_its_own_scale() -> None:
    income, reinvested, growth = charts.monthly_charts(_monthly(2026), today=date(2026, 4, 15))
    assert income.labels == ("2026-01", "2026-02", "2026-03", "2026-04")
    # The $50,000 purchase is on its own chart: it cannot flatten the income bars.
    assert [s.name for s in income.series] == ["income", "estimated tax"]
    assert [s.name for s in reinvested.series] == ["reinvested"] and reinvested.series[0].values[2] == Decimal(50_000)
    total = next(s for s in growth.series if s.name == "portfolio total")
    assert total.values == tuple(Decimal(10_000 * m - 2_500) / 100 for m in range(1, 5))
    assert charts.monthly_charts(_monthly(2027), today=date(2026, 4, 15))[0].empty == "2027 has not started yet"


def test_weekly_drops_future_weeks_and_says_what_each_colour_means() -> None:
    weeks = [
        {"week_start": f"2026-03-{d:02d}", "trades": 2, "income_cents": 10_000, "predicted": "GREEN", "confirmed": c}
        for d, c in ((2, "GREEN"), (9, "RED"), (16, None), (23, None))
    ]
    (chart,) = charts.weekly_charts({"weeks": weeks}, today=date(2026, 3, 17))
    assert chart.labels == ("2026-03-02", "2026-03-09", "2026-03-16")
    bars = chart.series[0]
    assert bars.bar_colours == (charts.WEEK_COLOURS["GREEN"], charts.WEEK_COLOURS["RED"], charts.WEEK_COLOURS[None])
    assert bars.bar_notes[1] == "red, predicted green; 2 trades"
    assert charts._tick_step(52) > 1 and charts._tick_step(10) == 1  # crowded week labels are thinned


def test_drawdown_is_in_percent_and_the_portfolio_is_drawn() -> None:
    series_a = [("2026-01-01", 100_000, 0), ("2026-01-02", 110_000, 0), ("2026-01-03", 99_000, 0)]
    series_b = [("2026-01-01", 50_000, 50_000), ("2026-01-02", 50_000, 0), ("2026-01-03", 50_000, 0)]
    report = {"start": "2026-01-01", "end": "2026-01-03", "accounts": [
        {"account": "A1-GEN", "series": series_a}, {"account": "A2-GEN", "series": series_b}]}  # fmt: skip
    nav, index, drawdown = charts.performance_charts(report)
    assert [s.name for s in nav.series][:3] == ["portfolio", "group A1", "group A2"]
    assert nav.series[0].values == (Decimal(1500), Decimal(1600), Decimal(1490))
    a1 = next(s for s in drawdown.series if s.name == "A1-GEN")
    assert a1.values[-1] == Decimal(-10)  # 110,000 -> 99,000 is -10 %, not -0.1
    assert drawdown.unit == "pct" and index.unit == "index"
    # Lines that coincide are told apart by their dash pattern, not colour alone.
    assert len({s.dash for s in nav.series}) == len(nav.series)


def test_axes_say_dollars_and_percent_and_the_png_is_drawn() -> None:
    assert charts._fmt("usd")(1234.0, None) == "$1,234"
    assert charts._fmt("usd")(-50.0, None) == "-$50"
    assert charts._fmt("pct")(-0.12, None) == "-0.12 %"
    buf = io.BytesIO()
    charts.render_png(charts.monthly_charts(_monthly(2026), today=date(2026, 4, 15)), buf)
    assert buf.getvalue().startswith(b"\x89PNG")
    json = charts.monthly_charts(_monthly(2026), today=date(2026, 4, 15))[0].to_json()
    assert json["series"][0]["values"][0] == "123.45"  # exact decimal text for the browser
