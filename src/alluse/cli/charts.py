"""PNG charts for the reports (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from alluse.domain.tax import NOTE  # noqa: E402

WEEK_COLOURS = {"GREEN": "#2e9e4f", "RED": "#c8423b", "CHOP": "#8a8f98", None: "#4a78b5"}


def _dollars(cents: int) -> float:
    # Plotting only: the figure is drawn from exact cents converted once for the axis.
    return float(Decimal(cents) / 100)


def weekly_png(report: dict[str, Any], path: Path) -> None:
    weeks = report["weeks"]
    fig, ax = plt.subplots(figsize=(10, 4.5), dpi=110)
    xs = range(len(weeks))
    bars = ax.bar(
        xs,
        [_dollars(w["income_cents"]) for w in weeks],
        color=[WEEK_COLOURS.get(w["confirmed"], WEEK_COLOURS[None]) for w in weeks],
    )
    for bar, w in zip(bars, weeks, strict=True):
        label = f"{w['trades']} trades"
        if w["predicted"]:
            label += f"\npred {w['predicted']}"
        ax.annotate(label, (bar.get_x() + bar.get_width() / 2, bar.get_height()), ha="center", va="bottom", fontsize=7)
    ax.set_xticks(list(xs), [w["week_start"][5:] for w in weeks], rotation=45, fontsize=8)
    ax.axhline(0, color="black", linewidth=0.6)
    ax.set_ylabel("income (realized + dividends), USD")
    ax.set_title("Weekly income by confirmed week type (green / red / chop; blue: unconfirmed)")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def monthly_png(report: dict[str, Any], path: Path) -> None:
    months = report["months"]
    fig, (ax, ax2) = plt.subplots(2, 1, figsize=(10, 7), dpi=110, sharex=True)
    xs = list(range(len(months)))
    w = 0.38
    ax.bar([x - w / 2 for x in xs], [_dollars(m["income_cents"]) for m in months], w, label="income", color="#2e9e4f")
    ax.bar(
        [x + w / 2 for x in xs],
        [_dollars(m["reinvested_cents"]) for m in months],
        w,
        label="reinvested",
        color="#4a78b5",
    )
    ax.plot(
        xs, [_dollars(m["estimated_tax_cents"]) for m in months], "o-", color="#c8423b", label=f"estimated tax ({NOTE})"
    )
    ax.axhline(0, color="black", linewidth=0.6)
    ax.set_ylabel("USD")
    ax.legend(fontsize=8)
    ax.set_title(f"{report['year']}: income vs reinvestment, estimated tax")
    accounts = sorted({name for m in months for name in m["growth_cents"]})
    bottom_pos = [0.0] * len(months)
    bottom_neg = [0.0] * len(months)
    for name in accounts:
        vals = [_dollars(m["growth_cents"].get(name, 0)) for m in months]
        base = [bottom_pos[i] if v >= 0 else bottom_neg[i] for i, v in enumerate(vals)]
        ax2.bar(xs, vals, 0.6, bottom=base, label=name)
        for i, v in enumerate(vals):
            if v >= 0:
                bottom_pos[i] += v
            else:
                bottom_neg[i] += v
    ax2.axhline(0, color="black", linewidth=0.6)
    ax2.set_ylabel("growth (NAV change less flows), USD")
    ax2.set_xticks(xs, [m["month"][5:] for m in months])
    if accounts:
        ax2.legend(fontsize=7, ncol=3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def performance_png(report: dict[str, Any], path: Path) -> None:
    from alluse.services.history import Day

    fig, (ax, ax2) = plt.subplots(2, 1, figsize=(10, 6.5), dpi=110, sharex=True)
    for acc in report["accounts"]:
        series = [Day(date.fromisoformat(d), nav, flow) for d, nav, flow in acc["series"]]
        if not series:
            continue
        days = [d.on for d in series]
        idx, peak, prev = Decimal(1), Decimal(1), None
        index, dd = [], []
        for d in series:
            if prev is not None and prev > 0:
                idx *= Decimal(d.nav - d.flow) / Decimal(prev)
            peak = max(peak, idx)
            index.append(float(idx))
            dd.append(-float((peak - idx) / peak * 100))
            prev = d.nav
        ax.plot(days, index, label=f"{acc['account']} (TWR {Decimal(acc['twr']) * 100:.2f} %)")
        ax2.plot(days, dd, label=acc["account"])
    ax.set_ylabel("time-weighted index (flows excluded)")
    ax.legend(fontsize=7)
    ax.set_title(f"Performance {report['start']} – {report['end']}")
    ax2.set_ylabel("drawdown, %")
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
