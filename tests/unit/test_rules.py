from decimal import Decimal

import pytest

from alluse.domain.accounts import AccountKind
from alluse.domain.errors import InvalidInput
from alluse.domain.rules import effective_rules, parse_override, template_rules


def test_moderate_template_is_the_methods_table() -> None:
    gen = template_rules("moderate", AccountKind.GEN)
    assert (gen.delta_min, gen.delta_max, gen.dte_max, gen.entry_days) == (
        Decimal("0.40"),
        Decimal("0.50"),
        1,
        ("THU",),
    )
    rev = template_rules("moderate", AccountKind.REV)
    assert (rev.delta_min, rev.delta_max, rev.entry_days) == (Decimal("0.30"), Decimal("0.40"), ("MON", "TUE", "WED"))
    assert template_rules("moderate", AccountKind.COM).entry_days == ("MON",)
    assert (
        template_rules("conservative", AccountKind.GEN).delta_max
        < gen.delta_max
        < template_rules("aggressive", AccountKind.GEN).delta_max
    )


def test_overrides_are_validated_and_applied() -> None:
    overrides = dict(
        [
            parse_override("delta_min", "0.42"),
            parse_override("buffer_pct", "7.5"),
            parse_override("entry_days", "mon,tue"),
        ]
    )
    rules = effective_rules("moderate", AccountKind.GEN, overrides)
    assert rules.delta_min == Decimal("0.42") and rules.buffer_bps == 750 and rules.entry_days == ("MON", "TUE")


@pytest.mark.parametrize(
    ("key", "value"),
    [("delta_min", "x"), ("entry_days", "SUN"), ("buffer_pct", "150"), ("dte_max", "soon"), ("nonsense", "1")],
)
def test_bad_overrides(key: str, value: str) -> None:
    with pytest.raises(InvalidInput):
        parse_override(key, value)


def test_inconsistent_band_is_refused() -> None:
    with pytest.raises(InvalidInput, match="delta band"):
        effective_rules("moderate", AccountKind.GEN, dict([parse_override("delta_min", "0.9")]))
