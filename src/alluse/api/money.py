"""Money in responses, found by type: a service result's fields typed `Cents` (integer cents) are
shown as decimal-string dollars, their `_cents` suffix dropped from the name (`cash_cents: 12345` →
`cash: "123.45"`). Results typed as TypedDicts are converted by their annotations; `schemas.money`
keeps the name-suffix rule for results not typed yet."""

from __future__ import annotations

import functools
import types
import typing
from typing import Any, Union, get_args, get_origin, is_typeddict

from alluse.api.schemas import usd
from alluse.domain.money import Cents


@functools.cache
def _fields(shape: type) -> dict[str, Any]:
    return typing.get_type_hints(shape)


def _is_cents(hint: Any) -> bool:
    if hint is Cents:
        return True
    return get_origin(hint) in (Union, types.UnionType) and Cents in get_args(hint)


@functools.cache
def _cents_fields(shape: type) -> frozenset[str]:
    return frozenset(k for k, hint in _fields(shape).items() if _is_cents(hint))


def typed_money(value: Any, shape: Any) -> Any:
    """`value` (a result shaped as `shape`: a TypedDict, or a list or dict of them) with its `Cents`
    fields as dollars."""
    if is_typeddict(shape) and isinstance(value, dict):
        hints, cents = _fields(shape), _cents_fields(shape)
        out = {}
        for k, v in value.items():
            if k in cents:
                out[k.removesuffix("_cents")] = usd(v) if v is not None else None
            elif isinstance(v, dict | list):  # only these can hold money; anything else stays as it is
                out[k] = typed_money(v, hints.get(k))
            else:
                out[k] = v
        return out
    origin, args = get_origin(shape), get_args(shape)
    if origin is list and isinstance(value, list):
        return [typed_money(v, args[0]) for v in value]
    if origin is dict and isinstance(value, dict):
        return {k: typed_money(v, args[1]) for k, v in value.items()}
    return value
