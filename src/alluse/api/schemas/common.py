"""What every router's bodies share: text bounds, money in and out, days, the strict base of request bodies.

Amounts travel as decimal strings ("1250.50"): checked by domain/parsing (the one parser for typed
numbers) on the way in, and written from integer cents, exactly, on the way out (`*_cents` fields lose
the suffix). JSON numbers are refused for money, prices, percentages and deltas: a JSON reader turns
them into binary floats before any code sees the digits that were sent.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Annotated, Any

from annotated_types import GroupedMetadata
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, ValidationInfo
from pydantic_core import PydanticCustomError

from alluse.domain import parsing
from alluse.domain.errors import InvalidNumber


def no_nul(text: str) -> str:
    if "\x00" in text:
        raise ValueError("must not contain NUL characters")
    return text


@dataclass(frozen=True, slots=True)
class Text(GroupedMetadata):
    """Bounded text without NUL characters, as a field's metadata: `name: Annotated[str, Text(100, 1)]`
    (a type checker reads the `Annotated`; pydantic unpacks the group into its constraints)."""

    max_length: int
    min_length: int = 0

    def __iter__(self) -> Iterator[object]:
        yield from StringConstraints(min_length=self.min_length, max_length=self.max_length)
        yield AfterValidator(no_nul)


def typed_number(parse: Any, *, keep_text: bool = True, **options: Any) -> BeforeValidator:
    """Checks a typed number with its domain/parsing function; passes on the text unchanged (services
    parse it again, with the same function) or, with keep_text=False, the parsed value."""

    def check(value: Any, info: ValidationInfo) -> Any:
        field = info.field_name or "value"
        try:
            parsed = parse(value, field=field, **options)
        except InvalidNumber as exc:
            # The problem's location already names the field (and the key, inside a mapping).
            raise PydanticCustomError("invalid_number", f"{exc.problem}; expected {exc.form}") from None
        return value if keep_text else parsed

    return BeforeValidator(check)


# The patterns document the typed forms in the OpenAPI schema (and steer generated requests); the
# validators, which call domain/parsing, are what decides.
Amount = Annotated[
    str,
    StringConstraints(min_length=1, max_length=40),
    AfterValidator(no_nul),
    typed_number(parsing.parse_money),
    Field(
        description='US dollars as a decimal string, at most two decimals: "1250", "1,250.50" or "$1250.50"',
        examples=["1250.50"],
        json_schema_extra={"pattern": r"^\$?([0-9]{1,3}(,[0-9]{3}){1,3}|[0-9]{1,12})(\.[0-9]{1,2})?$"},
    ),
]


Money = Annotated[str, Field(description="US dollars, exact, as a decimal string", examples=["1250.50"])]


def usd(cents: int | Decimal) -> str:
    return str((Decimal(cents) / 100).quantize(Decimal("0.01")))


def money(value: Any) -> Any:
    """Integer-cent fields of a service result as decimal-string dollars, recursively."""
    if isinstance(value, dict):
        return {
            (k[: -len("_cents")] if k.endswith("_cents") else k): (
                usd(v) if k.endswith("_cents") and isinstance(v, int | Decimal) else money(v)
            )
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [money(v) for v in value]
    return value


class In(BaseModel):
    model_config = ConfigDict(extra="forbid")


# Dates the ledger can hold; the bounds keep date arithmetic (week starts, report windows) in range.
Day = Annotated[date, Field(ge=date(1900, 1, 2), le=date(2999, 12, 31), examples=["2026-03-20"])]


Year = Annotated[int, Field(ge=1901, le=2999)]


TaxNote = Annotated[str, Field(description="Every tax figure is an estimate, not tax advice")]
