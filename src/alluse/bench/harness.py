"""What a part of the benchmark may ask of the run it belongs to (`bench/run.py`'s `Bench`).

The parts (trades, ibkr, events, cli …) are imported by the run; they name the run by this
protocol, so no part imports the run back."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol


class Bench(Protocol):
    db: str  # sqlite | postgres | citus
    quick: bool
    repeat: int
    tmp: Path
    progress: Any  # a rich Progress on a terminal, else None
    single_fills: int
    bulk_fills: int
    ledger_lots: int

    def emit(self, metric: str, value: float, unit: str, **extra: Any) -> None: ...

    def fresh_url(self) -> str: ...

    def fresh_engine(self) -> Any: ...

    def raw(self) -> Any: ...

    def median_rate(self, label: str, count: int, run: Callable[[], float]) -> float: ...

    def clock(self) -> tuple[float, float]: ...

    def elapsed(self, start: tuple[float, float]) -> float: ...

    def ratio(self, metric: str, ours: float, raw: float, ours_label: str, raw_label: str) -> None: ...
