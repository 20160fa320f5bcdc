"""Annotated Pydantic field types shared by the API schemas."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, PlainSerializer, StringConstraints

from tollway.kit.time import get_zone

ID_PATTERN = r"^[A-Za-z0-9._~:@-]{1,200}$"

Identifier = Annotated[str, StringConstraints(pattern=ID_PATTERN)]
"""A caller-chosen id or code: URL-safe, at most 200 characters."""

_DECIMAL_RE = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)$")


def _to_decimal(value: Any) -> Decimal:
    if isinstance(value, bool) or isinstance(value, float):
        raise ValueError('must be a decimal string such as "12.50" (floats are not accepted for money)')
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError("must be a finite decimal")
        return value
    if isinstance(value, str) and _DECIMAL_RE.match(value.strip()):
        try:
            return Decimal(value.strip())
        except InvalidOperation:  # pragma: no cover - the regex already guards
            pass
    raise ValueError('must be a decimal string such as "12.50"')


def _fmt_decimal(value: Decimal) -> str:
    return format_decimal(value)


def format_decimal(value: Decimal) -> str:
    """A plain decimal string without exponent, without needless trailing zeros ("1200", "0.5").

    Exact at any size: formatting is textual, so no arithmetic context (28 digits by default)
    can round the value or refuse it."""
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


DecimalStr = Annotated[Decimal, BeforeValidator(_to_decimal), PlainSerializer(_fmt_decimal, return_type=str)]
"""A decimal given and returned as a string; integers are accepted on input, floats are not."""


def _non_negative(value: Decimal) -> Decimal:
    if value < 0:
        raise ValueError("must not be negative")
    return value


NonNegativeDecimalStr = Annotated[DecimalStr, AfterValidator(_non_negative)]


def _currency(value: str) -> str:
    import iso4217

    code = value.upper() if isinstance(value, str) else value
    try:
        iso4217.Currency(code)
    except (ValueError, KeyError) as exc:
        raise ValueError(f"{value!r} is not an ISO 4217 currency code") from exc
    return str(code)


CurrencyCode = Annotated[str, AfterValidator(_currency)]


def _timezone(value: str) -> str:
    get_zone(value)
    return value


TimezoneName = Annotated[str, AfterValidator(_timezone)]
