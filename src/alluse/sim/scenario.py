"""Projection scenarios: a TOML file that says how the market treats the method, week by week.

Every field is required and range-checked; a missing or out-of-range field is refused with its name
and the accepted range. Rates are read as exact decimals and turned into integer units once, here
(weekly yields in parts per million, losses and tax in basis points), so the simulators only ever do
integer arithmetic on cents.

Three scenarios ship with the package (`conservative`, `moderate`, `optimistic`): the method's
published parameters, see docs/projections.md.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, replace
from datetime import date, timedelta
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any

from alluse.domain.accounts import Allocation
from alluse.domain.errors import InvalidInput
from alluse.domain.money import BPS_PER_UNIT, MAX_CENTS, round_half_even
from alluse.domain.protocol import WeekType

PPM = 1_000_000  # weekly yields are integer parts per million of NAV
WEEKS_PER_YEAR = 52
WEEK_TYPES = tuple(WeekType)  # the §7 week types, in the order the simulators index them
DISTRIBUTIONS = ("uniform", "normal", "empirical")
SHIPPED = ("conservative", "moderate", "optimistic")
MAX_PATHS = 100_000
MAX_YEARS = 30
MAX_CAPITAL_CENTS = 100_000_000_000  # $1 billion: far above any start the method describes


@dataclass(frozen=True, slots=True)
class SleeveYield:
    """Weekly return of one sleeve: a mean in ppm for each year of the horizon (strategy decay
    applied), a spread in ppm, and how the spread is drawn."""

    mean_ppm: tuple[int, ...]  # per year of the horizon
    spread_ppm: int
    distribution: str
    empirical_ppm: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class WeekOdds:
    """What one of the domain's week types (`domain.protocol.WeekType`) does in a scenario: not a
    kind of week but the odds and effects a projection draws for it."""

    share_ppm: int  # how often this kind of week comes
    yield_factor_bps: int  # what it does to the week's premium (10,000 = unchanged)
    assignment_ppm: int  # chance that a Gen-Acc or Rev-Acc is assigned that week


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    description: str
    horizon_years: int
    paths: int
    seed: int
    start_date: date
    capital_cents: int
    allocation: Allocation
    gen: SleeveYield
    rev: SleeveYield
    com: SleeveYield
    weeks: dict[WeekType, WeekOdds]
    assignment_loss_bps: int
    drawdowns: dict[int, int]  # year of the horizon (1-based) -> loss in bps of every sleeve's NAV
    short_term_tax_bps: int
    rev_withdrawal_bps: int  # share of each Rev-Acc's month's net income withdrawn as income

    def anniversary(self, years: int) -> date:
        d = self.start_date
        try:
            return d.replace(year=d.year + years)
        except ValueError:  # 29 February
            return d.replace(year=d.year + years, day=28)

    def week_years(self) -> list[int]:
        """For each week of the horizon, the year of the horizon (0-based) its Monday falls in. Years
        run from one anniversary of the start to the next, so every year holds its Dec 31."""
        out, w, y = [], 0, 0
        end = self.anniversary(self.horizon_years)
        while (monday := self.start_date + timedelta(weeks=w)) < end:
            while monday >= self.anniversary(y + 1):
                y += 1
            out.append(y)
            w += 1
        return out

    def with_run(self, *, paths: int | None = None, seed: int | None = None, years: int | None = None) -> Scenario:
        """The same scenario with another number of paths, seed or horizon (command-line overrides)."""
        out = self
        if paths is not None:
            out = replace(out, paths=_int_in("paths", paths, 1, MAX_PATHS))
        if seed is not None:
            out = replace(out, seed=_int_in("seed", seed, 0, 2**63 - 1))
        if years is not None:
            y = _int_in("horizon_years", years, 1, MAX_YEARS)
            out = replace(
                out,
                horizon_years=y,
                gen=_extend(out.gen, y),
                rev=_extend(out.rev, y),
                com=_extend(out.com, y),
            )
        return out


def _extend(s: SleeveYield, years: int) -> SleeveYield:
    means = s.mean_ppm[:years] + (s.mean_ppm[-1],) * max(0, years - len(s.mean_ppm))
    return replace(s, mean_ppm=means)


# --- reading and validation ---------------------------------------------------------------------


def _get(table: dict[str, Any], field: str, where: str, accepted: str) -> Any:
    if field not in table:
        raise InvalidInput(f"scenario field {where}{field} is missing ({accepted})")
    return table[field]


class _Missing:
    pass


MISSING = _Missing()


def _field(table: dict[str, Any], field: str, where: str) -> Any:
    """A field that `_dec` or `_int_in` checks: when absent, they name it with its accepted range."""
    return table.get(field, MISSING)


def _dec(where: str, value: Any, lo: str, hi: str) -> Decimal:
    if value is MISSING:
        raise InvalidInput(f"scenario field {where} is missing (a number between {lo} and {hi})")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInput(f"scenario field {where} must be a number between {lo} and {hi}, got {value!r}")
    d = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    if not Decimal(lo) <= d <= Decimal(hi):
        raise InvalidInput(f"scenario field {where} must be between {lo} and {hi}, got {value}")
    return d


def _int_in(where: str, value: Any, lo: int, hi: int) -> int:
    if value is MISSING:
        raise InvalidInput(f"scenario field {where} is missing (a whole number between {lo} and {hi})")
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(f"scenario field {where} must be a whole number between {lo} and {hi}, got {value!r}")
    if not lo <= value <= hi:
        raise InvalidInput(f"scenario field {where} must be between {lo} and {hi}, got {value}")
    return value


def _units(d: Decimal, per_unit: int) -> int:
    """An exact decimal percentage as integer units (bps: 10,000; ppm: 1,000,000), half-even."""
    num, den = (d * per_unit / 100).as_integer_ratio()
    return round_half_even(num, den)


def _monthly_to_weekly_ppm(monthly_pct: Decimal) -> int:
    # Twelve months are fifty-two weeks: the weekly rate is the monthly one times 12/52 (simple, as
    # the published model states monthly rates).
    num, den = (monthly_pct * PPM * 12 / 100).as_integer_ratio()
    return round_half_even(num, den * WEEKS_PER_YEAR)


def _sleeve(t: dict[str, Any], name: str, years: int, decay_every: int, decay_drop: Decimal) -> SleeveYield:
    where = f"{name}."
    if name == "com":
        # Share growth is stated a year at a time: the weekly rate compounds to it over 52 weeks.
        g = _dec(where + "yearly_growth_pct", _field(t, "yearly_growth_pct", where), "-50", "100")
        spread = _dec(where + "yearly_spread_pct", _field(t, "yearly_spread_pct", where), "0", "50")
        weekly = (1 + float(g) / 100) ** (1 / WEEKS_PER_YEAR) - 1  # a rate, turned into ppm once
        means = tuple(round(weekly * PPM) for _ in range(years))
        return SleeveYield(means, _units(spread, PPM) // WEEKS_PER_YEAR, "uniform")
    mean = _dec(where + "monthly_yield_pct", _field(t, "monthly_yield_pct", where), "-10", "20")
    spread = _dec(where + "monthly_spread_pct", _field(t, "monthly_spread_pct", where), "0", "10")
    dist = _get(t, "distribution", where, "one of " + ", ".join(DISTRIBUTIONS))
    if dist not in DISTRIBUTIONS:
        raise InvalidInput(
            f"scenario field {where}distribution must be one of {', '.join(DISTRIBUTIONS)}, got {dist!r}"
        )
    empirical: tuple[int, ...] = ()
    if dist == "empirical":
        values = _get(t, "values", where, "a list of monthly percentages")
        if not isinstance(values, list) or not 1 <= len(values) <= 10_000:
            raise InvalidInput(f"scenario field {where}values must be a list of 1 to 10,000 monthly percentages")
        empirical = tuple(
            _monthly_to_weekly_ppm(_dec(f"{where}values[{i}]", v, "-50", "50")) for i, v in enumerate(values)
        )
    means = tuple(_monthly_to_weekly_ppm(mean - decay_drop * (y // decay_every)) for y in range(years))
    return SleeveYield(means, _monthly_to_weekly_ppm(spread), dist, empirical)


def parse(doc: dict[str, Any], source: str = "scenario") -> Scenario:
    try:
        return _parse(doc)
    except InvalidInput as exc:
        raise InvalidInput(f"{source}: {exc}") from None


def _table(doc: dict[str, Any], name: str) -> dict[str, Any]:
    t = _get(doc, name, "", f"a [{name}] table")
    if not isinstance(t, dict):
        raise InvalidInput(f"scenario field {name} must be a table ([{name}])")
    return t


_TOP = ("name", "description", "horizon_years", "paths", "seed", "start_date", "start", "gen", "rev", "com",
        "weeks", "assignment", "drawdowns", "decay", "tax", "income")  # fmt: skip
_YIELD = ("monthly_yield_pct", "monthly_spread_pct", "distribution", "values")
_TABLES = {
    "start": ("capital", "allocation"),
    "gen": _YIELD,
    "rev": _YIELD,
    "com": ("yearly_growth_pct", "yearly_spread_pct"),
    "weeks": tuple(wt.lower() for wt in WEEK_TYPES),
    "assignment": ("loss_pct",),
    "decay": ("every_years", "monthly_drop_pct"),
    "tax": ("short_term_pct",),
    "income": ("rev_withdrawal_pct",),
}


def _known(t: dict[str, Any], where: str, fields: tuple[str, ...]) -> None:
    for key in t:
        if key not in fields:
            raise InvalidInput(f"scenario field {where}{key} is not a scenario field (here: {', '.join(fields)})")


def _no_unknown(doc: dict[str, Any]) -> None:
    """A field the model does not read is refused, or a misspelt optional one would be silently
    ignored. Checked after every required field was read, which names a misspelt required one."""
    _known(doc, "", _TOP)
    for name, fields in _TABLES.items():
        _known(doc[name], f"{name}.", fields)
    for wt in _TABLES["weeks"]:
        _known(doc["weeks"][wt], f"weeks.{wt}.", ("share", "yield_factor", "assignment_odds"))
    for i, d in enumerate(doc.get("drawdowns", [])):
        _known(d, f"drawdowns[{i}].", ("year", "loss_pct"))


def _parse(doc: dict[str, Any]) -> Scenario:
    name = _get(doc, "name", "", "text of 1 to 60 characters")
    if not isinstance(name, str) or not 1 <= len(name) <= 60:
        raise InvalidInput("scenario field name must be text of 1 to 60 characters")
    description = doc.get("description", "")
    years = _int_in("horizon_years", _field(doc, "horizon_years", ""), 1, MAX_YEARS)
    paths = _int_in("paths", _field(doc, "paths", ""), 1, MAX_PATHS)
    seed = _int_in("seed", _field(doc, "seed", ""), 0, 2**63 - 1)
    start = _get(doc, "start_date", "", "a Monday, a TOML date like 2027-01-04")
    if not isinstance(start, date) or start.weekday() != 0:
        got = f"{start:%A %Y-%m-%d}" if isinstance(start, date) else repr(start)
        raise InvalidInput(f"scenario field start_date must be a Monday (a TOML date like 2027-01-04), got {got}")

    st = _table(doc, "start")
    capital = _dec("start.capital", _field(st, "capital", "start."), "1000", str(MAX_CAPITAL_CENTS // 100))
    if capital.as_tuple().exponent < -2:  # type: ignore[operator]
        raise InvalidInput("scenario field start.capital must be whole cents")
    alloc = _get(st, "allocation", "start.", "[Gen, Rev, Com] percentages summing to 100")
    if not isinstance(alloc, list) or len(alloc) != 3:
        raise InvalidInput("scenario field start.allocation must be [Gen, Rev, Com] percentages summing to 100")
    parts = [_units(_dec(f"start.allocation[{i}]", v, "0.01", "100"), BPS_PER_UNIT) for i, v in enumerate(alloc)]
    if sum(parts) != BPS_PER_UNIT:
        raise InvalidInput(
            "scenario field start.allocation must sum to 100 (each of Gen, Rev, Com between 0.01 and 100)"
        )

    decay = _table(doc, "decay")
    every = _int_in("decay.every_years", _field(decay, "every_years", "decay."), 1, MAX_YEARS)
    drop = _dec("decay.monthly_drop_pct", _field(decay, "monthly_drop_pct", "decay."), "0", "5")

    weeks_t = _table(doc, "weeks")
    weeks = {}
    for wt in WEEK_TYPES:
        t = _get(weeks_t, wt.lower(), "weeks.", f"a [weeks.{wt.lower()}] table")
        where = f"weeks.{wt.lower()}."
        if not isinstance(t, dict):
            raise InvalidInput(f"scenario field weeks.{wt.lower()} must be a table ([weeks.{wt.lower()}])")
        weeks[wt] = WeekOdds(
            _units(_dec(where + "share", _field(t, "share", where), "0", "1") * 100, PPM),
            _units(_dec(where + "yield_factor", _field(t, "yield_factor", where), "0", "5") * 100, BPS_PER_UNIT),
            _units(_dec(where + "assignment_odds", _field(t, "assignment_odds", where), "0", "1") * 100, PPM),
        )
    if (total := sum(w.share_ppm for w in weeks.values())) != PPM:
        raise InvalidInput(
            "scenario fields weeks.green.share + weeks.red.share + weeks.chop.share must sum to 1, "
            f"got {Decimal(total) / PPM}"
        )

    assignment = _table(doc, "assignment")
    loss = _units(_dec("assignment.loss_pct", _field(assignment, "loss_pct", "assignment."), "0", "50"), BPS_PER_UNIT)

    drawdowns: dict[int, int] = {}
    dds = doc.get("drawdowns", [])
    if not isinstance(dds, list):
        raise InvalidInput("scenario field drawdowns must be a list of [[drawdowns]] tables")
    for i, d in enumerate(dds):
        where = f"drawdowns[{i}]."
        if not isinstance(d, dict):
            raise InvalidInput(f"scenario field drawdowns[{i}] must be a table with year and loss_pct")
        y = _int_in(where + "year", _field(d, "year", where), 1, MAX_YEARS)
        if y in drawdowns:
            raise InvalidInput(f"scenario field {where}year: two drawdowns in year {y}")
        drawdowns[y] = _units(_dec(where + "loss_pct", _field(d, "loss_pct", where), "0", "90"), BPS_PER_UNIT)

    tax = _table(doc, "tax")
    tax_bps = _units(_dec("tax.short_term_pct", _field(tax, "short_term_pct", "tax."), "0", "60"), BPS_PER_UNIT)
    income = _table(doc, "income")
    wd = _units(
        _dec("income.rev_withdrawal_pct", _field(income, "rev_withdrawal_pct", "income."), "0", "100"), BPS_PER_UNIT
    )
    gen, rev, com = (_sleeve(_table(doc, name), name, years, every, drop) for name in ("gen", "rev", "com"))
    _no_unknown(doc)
    cents = int(capital * 100)
    if cents > MAX_CENTS:
        raise InvalidInput("scenario field start.capital is implausibly large")
    return Scenario(
        name,
        str(description),
        years,
        paths,
        seed,
        start,
        cents,
        Allocation(*parts),
        gen,
        rev,
        com,
        weeks,
        loss,
        drawdowns,
        tax_bps,
        wd,
    )


def load(name_or_path: str) -> Scenario:
    """A shipped scenario by name, or a TOML file by path."""
    if name_or_path in SHIPPED:
        text = resources.files("alluse.sim").joinpath(f"scenarios/{name_or_path}.toml").read_text("utf-8")
        return parse(tomllib.loads(text), name_or_path)
    path = Path(name_or_path)
    if not path.is_file():
        raise InvalidInput(f"no scenario {name_or_path!r}: name one of {', '.join(SHIPPED)} or a TOML file")
    return loads(path.read_text("utf-8"), str(path))


def loads(text: str, source: str = "scenario") -> Scenario:
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InvalidInput(f"{source}: not valid TOML: {exc}") from None
    return parse(doc, source)
