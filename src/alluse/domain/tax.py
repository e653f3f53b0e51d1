"""Estimated tax (ALLUSE_RULES §6): IRS-style netting of a tax year's short- and long-term results.

These are estimates for running the method, not tax advice. Limits (see docs/trades-and-tax.md): a net
capital loss is not deducted against other income nor carried forward; wash sales are flagged in
reports, not applied; dividends are all taxed at the one dividend rate.
"""

from __future__ import annotations

from dataclasses import dataclass

from alluse.domain.money import apply_bps

NOTE = "estimate, not tax advice"


@dataclass(frozen=True, slots=True)
class TaxRates:
    short_term_bps: int = 3000
    long_term_bps: int = 1500
    dividend_bps: int = 1500


@dataclass(frozen=True, slots=True)
class YearFigures:
    short_term: int = 0  # net short-term gain (negative: loss), cents
    long_term: int = 0
    dividends: int = 0

    def __add__(self, other: YearFigures) -> YearFigures:
        return YearFigures(
            self.short_term + other.short_term, self.long_term + other.long_term, self.dividends + other.dividends
        )


@dataclass(frozen=True, slots=True)
class Liability:
    taxable_short_term: int
    taxable_long_term: int
    dividends: int
    tax: int
    net_capital_loss: int  # positive: the year's capital loss left after netting (not used here)


def estimate(f: YearFigures, rates: TaxRates) -> Liability:
    """Net the year: a net loss on one side offsets a net gain on the other, then each side is taxed
    at its rate. Never below zero."""
    st, lt = f.short_term, f.long_term
    if st < 0 < lt:
        lt, st = max(0, lt + st), min(0, lt + st)
    elif lt < 0 < st:
        st, lt = max(0, st + lt), min(0, st + lt)
    loss = -min(0, st) - min(0, lt)
    st, lt = max(0, st), max(0, lt)
    tax = apply_bps(st, rates.short_term_bps) + apply_bps(lt, rates.long_term_bps)
    tax += apply_bps(max(0, f.dividends), rates.dividend_bps)
    return Liability(st, lt, f.dividends, tax, loss)
