"""Reading contract JSON (decimal strings) into typed values, collecting errors by field path."""

from __future__ import annotations

import decimal
import re
from collections.abc import Mapping
from decimal import Decimal

__all__ = ["Errors", "field_path", "read_bool", "read_decimal", "read_mapping", "read_str"]

Errors = list[tuple[str, str]]

_DECIMAL_RE = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)$")
MAX_PLACES = 12
"""Prices are stored as Numeric(30, 12): at most 12 decimal places..."""
MAX_INTEGER_DIGITS = 18
"""...and at most 18 digits before the point."""


def field_path(prefix: str, key: str | int) -> str:
    """``field_path("charges[0]", "tiers") == "charges[0].tiers"``; ints make ``[i]``."""
    if isinstance(key, int):
        return f"{prefix}[{key}]"
    return f"{prefix}.{key}" if prefix else key


def parse_decimal_value(value: object) -> Decimal | str:
    """The Decimal for a contract number, or an error message. Floats are refused."""
    if isinstance(value, bool):
        return "must be a decimal string, not a boolean"
    if isinstance(value, float):
        return 'must be a decimal string such as "0.0015", not a JSON float'
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, Decimal):
        if not value.is_finite():
            return "must be a finite number"
        return value
    if isinstance(value, str):
        text = value.strip()
        if not _DECIMAL_RE.match(text):
            return f'must be a decimal string such as "12.50", got {value!r}'
        try:
            return Decimal(text)
        except decimal.InvalidOperation:  # pragma: no cover - the pattern already guards
            return f"{value!r} is not a decimal number"
    return f"must be a decimal string, not {type(value).__name__}"


def read_decimal(
    data: Mapping[str, object],
    key: str,
    prefix: str,
    errors: Errors,
    *,
    max_places: int | None = MAX_PLACES,
) -> Decimal | None:
    """``data[key]`` as a Decimal; ``None`` when absent or null (or invalid, with an error recorded)."""
    raw = data.get(key)
    if raw is None:
        return None
    where = field_path(prefix, key)
    parsed = parse_decimal_value(raw)
    if isinstance(parsed, str):
        errors.append((where, parsed))
        return None
    exponent = parsed.as_tuple().exponent
    if max_places is not None and isinstance(exponent, int) and -exponent > max_places:
        errors.append((where, f"must have at most {max_places} decimal places"))
        return None
    if parsed != 0 and parsed.adjusted() >= MAX_INTEGER_DIGITS:
        errors.append((where, f"must be less than 10^{MAX_INTEGER_DIGITS}"))
        return None
    return parsed


def read_str(data: Mapping[str, object], key: str, prefix: str, errors: Errors) -> str | None:
    raw = data.get(key)
    if raw is None:
        return None
    if not isinstance(raw, str):
        errors.append((field_path(prefix, key), "must be a string"))
        return None
    return raw


def read_bool(data: Mapping[str, object], key: str, prefix: str, errors: Errors, default: bool) -> bool:
    raw = data.get(key)
    if raw is None:
        return default
    if not isinstance(raw, bool):
        errors.append((field_path(prefix, key), "must be true or false"))
        return default
    return raw


def read_mapping(value: object, where: str, errors: Errors) -> Mapping[str, object] | None:
    if not isinstance(value, Mapping):
        errors.append((where, "must be an object"))
        return None
    bad = [k for k in value if not isinstance(k, str)]
    if bad:
        errors.append((where, "keys must be strings"))
        return None
    return value
