"""The report charts, once: what each chart shows (`Chart`, built from a report's exact cents) and one
PNG renderer (matplotlib, Agg backend). The CLI and the API draw the PNGs; the web dashboard sends the
same `Chart` as JSON to its browser charting library, so the three never disagree.

Rules every chart follows: money axes in dollars with a `$`; percentages as percent (a drawdown of
0.12 % reads "-0.12 %", never -0.0012); no month or week after today; income and reinvestment each on
their own scale (a large purchase must not flatten the income beside it); a portfolio total wherever
accounts are drawn; lines told apart by dash and marker as well as colour (flat lines overlap), and
colours from the Okabe-Ito palette, readable with the common colour-vision deficiencies.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import IO, TYPE_CHECKING, Any, Literal

from alluse.domain.tax import NOTE

if TYPE_CHECKING:  # the reports' shapes only: drawing a chart needs no service at run time
    from alluse.services.dashboard import Premium, WeeklyIncome
    from alluse.services.reports import Monthly, Performance, WeekAccuracy, Weekly

# Okabe & Ito (2008): distinguishable with protanopia, deuteranopia and tritanopia.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")
TOTAL_COLOUR = "#1a1a1a"
# Week types carry their meaning in the label and the hatch too, never in the colour alone.
WEEK_COLOURS = {"GREEN": "#009E73", "RED": "#D55E00", "CHOP": "#999999", None: "#56B4E9"}
WEEK_HATCH = {"GREEN": "", "RED": "//", "CHOP": "..", None: ""}
DASHES = ((), (6, 3), (2, 2), (8, 3, 2, 3), (1, 3), (4, 1, 1, 1))

Unit = Literal["usd", "pct", "index"]
Kind = Literal["bar", "line"]


@dataclass(frozen=True, slots=True)
class Series:
    name: str
    values: tuple[Decimal | None, ...]  # dollars for a usd chart, percent for pct, a ratio for index
    kind: Kind = "line"
    colour: str = PALETTE[0]
    dash: tuple[int, ...] = ()
    bar_colours: tuple[str, ...] = ()  # per bar, when the bars' colour means something (week types)
    bar_notes: tuple[str, ...] = ()  # per bar, the same meaning in words
    stack: str | None = None
    width: float = 1.8


@dataclass(frozen=True, slots=True)
class Chart:
    key: str
    title: str
    labels: tuple[str, ...]
    series: tuple[Series, ...]
    unit: Unit = "usd"
    note: str = ""
    empty: str = ""  # why there is nothing to draw, when there is nothing
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """For the browser: exact decimal strings (the page parses them for drawing only)."""
        return {
            "key": self.key,
            "title": self.title,
            "labels": list(self.labels),
            "unit": self.unit,
            "note": self.note,
            "empty": self.empty,
            "series": [
                {
                    "name": s.name,
                    "values": [None if v is None else str(v) for v in s.values],
                    "kind": s.kind,
                    "colour": s.colour,
                    "dash": list(s.dash),
                    "bar_colours": list(s.bar_colours),
                    "bar_notes": list(s.bar_notes),
                    "stack": s.stack,
                    "width": s.width,
                }
                for s in self.series
            ],
        }


def dollars(cents: int) -> Decimal:
    return Decimal(cents) / 100


def _colour(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def _dash(i: int) -> tuple[int, ...]:
    return DASHES[i % len(DASHES)]


# --- what each report draws -----------------------------------------------------------------------


def weekly_charts(report: Weekly, today: date | None = None) -> list[Chart]:
    today = today or date.today()
    weeks = [w for w in report["weeks"] if date.fromisoformat(w["week_start"]) <= today]
    notes = []
    for w in weeks:
        text = (w["confirmed"] or "unconfirmed").lower()
        if w["predicted"]:
            text += f", predicted {w['predicted'].lower()}"
        notes.append(f"{text}; {w['trades']} trades")
    bars = Series(
        "income",
        tuple(dollars(w["income_cents"]) for w in weeks),
        "bar",
        bar_colours=tuple(WEEK_COLOURS.get(w["confirmed"], WEEK_COLOURS[None]) for w in weeks),
        bar_notes=tuple(notes),
    )
    return [
        Chart(
            "weekly",
            "Weekly income (realized gains + dividends) by confirmed week type",
            tuple(w["week_start"] for w in weeks),
            (bars,),
            note="green: plain; red: hatched //; chop: grey, dotted; blue: not confirmed yet",
            empty="" if weeks else "no weeks up to today in this period",
        )
    ]


def monthly_charts(report: Monthly, today: date | None = None) -> list[Chart]:
    """Income and reinvestment on separate scales; growth stacked per account with the portfolio total."""
    today = today or date.today()
    this_month = f"{today.year}-{today.month:02d}"
    months = [m for m in report["months"] if m["month"] <= this_month]
    labels = tuple(m["month"] for m in months)
    empty = "" if months else f"{report['year']} has not started yet"
    income = Chart(
        "monthly-income",
        f"{report['year']}: income per month, and estimated tax accrued",
        labels,
        (
            Series("income", tuple(dollars(m["income_cents"]) for m in months), "bar", PALETTE[2]),
            Series(
                "estimated tax", tuple(dollars(m["estimated_tax_cents"]) for m in months), "line", PALETTE[5], (6, 3)
            ),
        ),
        note=f"Tax: {NOTE}",
        empty=empty,
    )
    reinvested = Chart(
        "monthly-reinvested",
        f"{report['year']}: reinvested per month (shares and LEAPS bought)",
        labels,
        (Series("reinvested", tuple(dollars(m["reinvested_cents"]) for m in months), "bar", PALETTE[0]),),
        empty=empty,
    )
    names = sorted({n for m in months for n in m["growth_cents"]})
    growth = [
        Series(n, tuple(dollars(m["growth_cents"].get(n, 0)) for m in months), "bar", _colour(i), stack="growth")
        for i, n in enumerate(names)
    ]
    total = Series(
        "portfolio total",
        tuple(dollars(sum(m["growth_cents"].values())) for m in months),
        "line",
        TOTAL_COLOUR,
        width=2.4,
    )
    growth_chart = Chart(
        "monthly-growth",
        f"{report['year']}: growth per month (NAV change less flows), per account and in total",
        labels,
        (total, *growth),
        empty=empty,
    )
    return [income, reinvested, growth_chart]


def weekly_by_account_chart(report: WeeklyIncome, today: date | None = None) -> Chart:
    """Weekly income stacked per sleeve, with the portfolio total."""
    today = today or date.today()
    keep = [i for i, w in enumerate(report["weeks"]) if date.fromisoformat(w) <= today]
    labels = tuple(report["weeks"][i] for i in keep)
    series = [
        Series(name, tuple(dollars(vals[i]) for i in keep), "bar", _colour(n), stack="income")
        for n, (name, vals) in enumerate(report["accounts"].items())
    ]
    total = Series(
        "portfolio total",
        tuple(dollars(sum(v[i] for v in report["accounts"].values())) for i in keep),
        "line",
        TOTAL_COLOUR,
        width=2.4,
    )
    return Chart(
        "weekly-by-sleeve",
        "Weekly income per sleeve (realized gains + dividends)",
        labels,
        (total, *series) if series else (),
        empty="" if series else "no realized income in these weeks",
    )


def premium_chart(rows: list[Premium], period: str) -> Chart:
    return Chart(
        "premium",
        f"Option premium received by underlying, {period}",
        tuple(r["underlying"] for r in rows),
        (Series("premium", tuple(dollars(r["premium_cents"]) for r in rows), "bar", PALETTE[0]),) if rows else (),
        empty="" if rows else "no options sold in this period",
        extra={"horizontal": True},
    )


def accuracy_chart(report: WeekAccuracy) -> Chart:
    """Share of weeks whose predicted type was confirmed, per predicted type and overall."""
    rows = [(k, v["correct"], v["weeks"]) for k, v in report["by_predicted"].items()]
    if report["weeks"]:
        rows.append(("all", report["correct"], report["weeks"]))
    pct = tuple((Decimal(h) * 100 / n).quantize(Decimal("0.1")) for _k, h, n in rows)
    return Chart(
        "accuracy",
        "Week-type predictions confirmed",
        tuple(f"{k.lower()} ({h} of {n})" for k, h, n in rows),
        (Series("confirmed as predicted", pct, "bar", PALETTE[2]),) if rows else (),
        "pct",
        empty="" if rows else "no week has both a prediction and a confirmation yet",
    )


def _index_path(series: Sequence[tuple[str, int, int]]) -> tuple[list[Decimal], list[Decimal]]:
    """The time-weighted index (flows excluded) and the drawdown from its running peak, in percent.
    The same chaining as `services.history.performance`."""
    idx, peak, prev = Decimal(1), Decimal(1), None
    index, drawdown = [], []
    for _on, nav, flow in series:
        if prev is not None and prev > 0:
            idx *= Decimal(nav - flow) / Decimal(prev)
        peak = max(peak, idx)
        index.append(idx)
        drawdown.append(-(peak - idx) / peak * 100)
        prev = nav
    return index, drawdown


def _sum_series(parts: Iterable[Sequence[tuple[str, int, int]]]) -> list[tuple[str, int, int]]:
    by_day: dict[str, list[int]] = {}
    for series in parts:
        for on, nav, flow in series:
            tot = by_day.setdefault(on, [0, 0])
            tot[0] += nav
            tot[1] += flow
    return [(on, nav, flow) for on, (nav, flow) in sorted(by_day.items())]


def group_of(account: str) -> str:
    """Account names are `<group>-<GEN|REV|COM>` (services.groups)."""
    return account.rsplit("-", 1)[0]


def performance_charts(report: Performance, *, per_account: bool = True) -> list[Chart]:
    """NAV per account, per group and for the portfolio; the time-weighted index and drawdown of each."""
    accounts = [a for a in report["accounts"] if a["series"]]
    if not accounts:
        empty = "no account has history in this period"
        return [Chart(k, t, (), (), u, empty=empty) for k, t, u in _PERF_TITLES]
    groups: dict[str, list[Sequence[tuple[str, int, int]]]] = {}
    for a in accounts:
        groups.setdefault(group_of(a["account"]), []).append(a["series"])
    lines: list[tuple[str, list[tuple[str, int, int]], float]] = [
        ("portfolio", _sum_series(a["series"] for a in accounts), 2.6)
    ]
    lines += [(f"group {g}", _sum_series(parts), 1.8) for g, parts in groups.items()]
    if per_account:
        lines += [(a["account"], list(a["series"]), 1.2) for a in accounts]
    days = tuple(on for on, _n, _f in lines[0][1])
    nav, index, drawdown = [], [], []
    for i, (name, series, width) in enumerate(lines):
        colour = TOTAL_COLOUR if i == 0 else _colour(i - 1)
        dash = () if i == 0 else _dash(i)
        by_day = {on: n for on, n, _f in series}
        nav.append(
            Series(
                name,
                tuple(dollars(by_day[d]) if d in by_day else None for d in days),
                "line",
                colour,
                dash,
                width=width,
            )
        )
        idx, dd = _index_path(series)
        offset = len(days) - len(idx)
        pad: tuple[None, ...] = (None,) * offset
        index.append(Series(name, pad + tuple(idx), "line", colour, dash, width=width))
        drawdown.append(Series(name, pad + tuple(dd), "line", colour, dash, width=width))
    t0, t1, t2 = _PERF_TITLES
    period = f"{report['start']} – {report['end']}"
    return [
        Chart(t0[0], f"{t0[1]}, {period}", days, tuple(nav), "usd"),
        Chart(t1[0], f"{t1[1]}, {period}", days, tuple(index), "index", note="1.00 = the first day's NAV"),
        Chart(t2[0], f"{t2[1]}, {period}", days, tuple(drawdown), "pct"),
    ]


_PERF_TITLES: tuple[tuple[str, str, Unit], ...] = (
    ("nav", "NAV", "usd"),
    ("twr", "Time-weighted index (deposits, forks and merges excluded)", "index"),
    ("drawdown", "Drawdown from the running peak", "pct"),
)


# --- PNG -----------------------------------------------------------------------------------------


def _fmt(unit: Unit) -> Any:
    from matplotlib.ticker import FuncFormatter

    if unit == "usd":
        return FuncFormatter(lambda v, _p: f"-${-v:,.0f}" if v < 0 else f"${v:,.0f}")
    if unit == "pct":
        return FuncFormatter(lambda v, _p: f"{v:.2f} %")
    return FuncFormatter(lambda v, _p: f"{v:.3f}")


def _tick_step(n: int, room: int = 14) -> int:
    return max(1, -(-n // room))


def render_png(charts: Sequence[Chart], out: str | IO[bytes] | Any, title: str = "") -> None:
    """One panel per chart, stacked, into a PNG file or binary stream."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(charts), 1, figsize=(11, 3.8 * len(charts) + 0.6), dpi=110, squeeze=False)
    for ax, chart in zip(axes[:, 0], charts, strict=True):
        _panel(ax, chart)
    if title:
        fig.suptitle(title, fontsize=12, fontweight="bold")
    fig.tight_layout()
    fig.savefig(out, format="png")
    plt.close(fig)


def _panel(ax: Any, chart: Chart) -> None:
    ax.set_title(chart.title, fontsize=10, loc="left")
    n = len(chart.labels)
    if not n or not chart.series:
        ax.text(0.5, 0.5, chart.empty or "nothing to draw", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return
    xs = list(range(n))
    bars = [s for s in chart.series if s.kind == "bar"]
    unstacked = [s for s in bars if s.stack is None]
    width = 0.8 / max(1, len(unstacked) + (1 if any(s.stack for s in bars) else 0))
    pos, neg = [0.0] * n, [0.0] * n
    slot = 0
    for s in bars:
        vals = [float(v or 0) for v in s.values]  # plotting only: exact decimals converted for the axis
        if s.stack:
            base = [pos[i] if v >= 0 else neg[i] for i, v in enumerate(vals)]
            ax.bar(xs, vals, width, bottom=base, label=s.name, color=s.colour, edgecolor="white", linewidth=0.4)
            for i, v in enumerate(vals):
                if v >= 0:
                    pos[i] += v
                else:
                    neg[i] += v
            continue
        offset = (slot - (len(unstacked) - 1) / 2) * width
        slot += 1
        colours = list(s.bar_colours) or s.colour
        drawn = ax.bar(
            [x + offset for x in xs], vals, width, label=s.name, color=colours, edgecolor="#333333", linewidth=0.4
        )
        if s.bar_colours:
            for rect, colour in zip(drawn, s.bar_colours, strict=True):
                week = next((k for k, c in WEEK_COLOURS.items() if c == colour), None)
                rect.set_hatch(WEEK_HATCH.get(week, ""))
    for s in chart.series:
        if s.kind != "line":
            continue
        pts = [(x, float(v)) for x, v in zip(xs, s.values, strict=True) if v is not None]
        if not pts:
            continue
        (line,) = ax.plot(
            [p[0] for p in pts],
            [p[1] for p in pts],
            label=s.name,
            color=s.colour,
            linewidth=s.width,
            marker="o" if n <= 24 else None,
            markersize=3,
        )
        if s.dash:
            line.set_dashes(s.dash)
    ax.yaxis.set_major_formatter(_fmt(chart.unit))
    ax.margins(y=0.12)  # room above the tallest bar: nothing is clipped
    if chart.unit == "usd" or chart.unit == "pct":
        ax.axhline(0, color="#333333", linewidth=0.6)
    step = _tick_step(n)
    ax.set_xticks(xs[::step], [_short(lab) for lab in chart.labels[::step]], rotation=30, ha="right", fontsize=8)
    ax.grid(axis="y", color="#dddddd", linewidth=0.6)
    ax.set_axisbelow(True)
    handles, _labels = ax.get_legend_handles_labels()
    if len(handles) > 1:
        ax.legend(fontsize=7, ncol=min(4, len(handles)), loc="upper left", frameon=False)
    if chart.note:
        ax.annotate(chart.note, (0, -0.32), xycoords="axes fraction", fontsize=7, color="#555555")


def _short(label: str) -> str:
    # 2026-03-02 -> 03-02 on crowded day axes; months stay whole
    return label[5:] if len(label) == 10 else label


def weekly_png(report: Weekly, out: str | IO[bytes] | Any) -> None:
    render_png(weekly_charts(report), out)


def monthly_png(report: Monthly, out: str | IO[bytes] | Any) -> None:
    render_png(monthly_charts(report), out)


def performance_png(report: Performance, out: str | IO[bytes] | Any) -> None:
    render_png(performance_charts(report, per_account=len(report["accounts"]) <= 9), out)


# --- projections (docs/projections.md) -----------------------------------------------------------

_FAN = (  # percentile, name, colour, dash, width: the median bold, the bands around it lighter
    ("p95", "95th percentile", PALETTE[4], (2, 2), 1.2),
    ("p75", "75th percentile", PALETTE[0], (6, 3), 1.5),
    ("p50", "median", TOTAL_COLOUR, (), 2.4),
    ("p25", "25th percentile", PALETTE[0], (6, 3), 1.5),
    ("p5", "5th percentile", PALETTE[4], (2, 2), 1.2),
)
_PROJECTED = (
    ("total_cents", "Total value"),
    ("gen_cents", "Gen-Acc network"),
    ("rev_cents", "Rev-Acc"),
    ("com_cents", "Com-Acc"),
)


def projection_charts(summary: dict[str, Any]) -> list[Chart]:
    """The fan of a projection: per year, the 5th to 95th percentile over the paths of total value
    and of each sleeve (the summary of `sim/project.project`)."""
    rows = summary["years"]
    labels = tuple(f"year {r['year']}" for r in rows)
    note = f"{summary['paths']:,} paths, seed {summary['seed']}; a projection, not a forecast; tax is an {NOTE}"
    return [
        Chart(
            f"projection-{metric.removesuffix('_cents')}",
            f"{title}: percentiles over the paths",
            labels,
            tuple(
                Series(name, tuple(dollars(r[metric][q]) for r in rows), colour=colour, dash=dash, width=width)
                for q, name, colour, dash, width in _FAN
            ),
            note=note,
        )
        for metric, title in _PROJECTED
    ]


def projection_png(summary: dict[str, Any], out: str | IO[bytes] | Any) -> None:
    render_png(projection_charts(summary), out, title=f"Projection '{summary['scenario']}'")
