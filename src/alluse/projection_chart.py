"""Fan chart of a projection (PNG, matplotlib Agg backend: no display needed). Shared by the CLI and
the API, next to the report charts."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

BANDS = (("p5", "p95", "5–95 %", "#c6d7ec"), ("p25", "p75", "25–75 %", "#7fa6d4"))
SERIES = (
    ("total_cents", "total value"),
    ("gen_cents", "Gen-Acc network"),
    ("rev_cents", "Rev-Acc"),
    ("com_cents", "Com-Acc"),
)


def _dollars(cents: int) -> float:
    # Plotting only: exact cents converted once for the axis.
    return float(Decimal(cents) / 100)


def fan_png(summary: dict[str, Any], path: Path, published: dict[int, int] | None = None) -> None:
    """One panel per series: the median path with the 25–75 % and 5–95 % bands over the paths, by
    year. `published`: year -> total value of the published model, drawn as points."""
    years = [r["year"] for r in summary["years"]]
    fig, axes = plt.subplots(2, 2, figsize=(11, 7.5), dpi=110, sharex=True)
    for ax, (metric, title) in zip(axes.flat, SERIES, strict=True):
        rows = summary["years"]
        for lo, hi, label, colour in BANDS:
            ax.fill_between(
                years, [_dollars(r[metric][lo]) for r in rows], [_dollars(r[metric][hi]) for r in rows],
                color=colour, label=label, linewidth=0,
            )  # fmt: skip
        ax.plot(years, [_dollars(r[metric]["p50"]) for r in rows], color="#1f3f73", label="median")
        if published and metric == "total_cents":
            ax.plot(
                list(published),
                [_dollars(v) for v in published.values()],
                "o",
                color="#c8423b",
                label="published model",
            )
        ax.set_title(title)
        ax.set_xlabel("year")
        ax.set_ylabel("USD")
        ax.ticklabel_format(axis="y", style="plain")
        ax.grid(alpha=0.3)
    axes.flat[0].legend(loc="upper left", fontsize=8)
    fig.suptitle(
        f"Projection '{summary['scenario']}': {summary['paths']:,} paths, seed {summary['seed']} "
        "(a projection, not a forecast; tax figures are estimates, not tax advice)",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
