"""Reading contract JSON (decimal strings) into typed values, collecting errors by field path."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from tollway.kit.fields import field_path
from tollway.kit.money import parse_decimal

__all__ = ["Errors", "parse_decimal_value", "read_bool", "read_decimal", "read_mapping", "read_str"]

Errors = list[tuple[str, str]]

MAX_PLACES = 12
"""Prices are stored as Numeric(30, 12): at most 12 decimal places..."""
MAX_INTEGER_DIGITS = 18
"""...and at most 18 digits before the point."""


def parse_decimal_value(value: object) -> Decimal | str:
    """The Decimal for a contract number, or an error message. Floats are refused."""
    try:
        return parse_decimal(value)
    except ValueError as exc:
        return str(exc)


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
