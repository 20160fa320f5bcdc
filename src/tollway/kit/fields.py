"""Annotated Pydantic field types shared by the API schemas, and how fields are named in errors."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, PlainSerializer, StringConstraints

from tollway.kit.money import parse_currency, parse_decimal
from tollway.kit.time import check_billing_time, get_zone, parse_rfc3339

ID_PATTERN = r"^[A-Za-z0-9._~:@-]{1,200}$"

Identifier = Annotated[str, StringConstraints(pattern=ID_PATTERN)]
"""A caller-chosen id or code: URL-safe, at most 200 characters."""


def field_path(prefix: str, key: str | int) -> str:
    """The name of a field inside ``prefix`` in an error: ``field_path("charges[0]", "tiers") ==
    "charges[0].tiers"``, ``field_path("charges", 0) == "charges[0]"``, ``field_path("", "id") == "id"``."""
    if isinstance(key, int):
        return f"{prefix}[{key}]"
    return f"{prefix}.{key}" if prefix else key


def format_decimal(value: Decimal) -> str:
    """A plain decimal string without exponent, without needless trailing zeros ("1200", "0.5").

    Exact at any size: formatting is textual, so no arithmetic context (28 digits by default)
    can round the value or refuse it."""
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


DecimalStr = Annotated[Decimal, BeforeValidator(parse_decimal), PlainSerializer(format_decimal, return_type=str)]
"""A decimal given and returned as a string; integers are accepted on input, floats are not."""


def _non_negative(value: Decimal) -> Decimal:
    if value < 0:
        raise ValueError("must not be negative")
    return value


NonNegativeDecimalStr = Annotated[DecimalStr, AfterValidator(_non_negative)]


def _currency(value: str) -> str:
    return parse_currency(value).code  # CurrencyError is a ValueError: pydantic names the field


CurrencyCode = Annotated[str, AfterValidator(_currency)]
"""An ISO 4217 code with a minor unit (so it can be invoiced), upper-cased."""


def _timezone(value: str) -> str:
    get_zone(value)
    return value


TimezoneName = Annotated[str, AfterValidator(_timezone)]


def _timestamp(value: Any) -> datetime:
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("must carry a time zone offset")
        return value.astimezone(UTC)
    if isinstance(value, str):
        return parse_rfc3339(value)
    raise ValueError("must be an RFC 3339 timestamp with offset, e.g. 2026-01-05T10:00:00Z")


Timestamp = Annotated[datetime, BeforeValidator(_timestamp), AfterValidator(check_billing_time)]
"""An RFC 3339 timestamp with offset, kept in UTC, inside the billing range (kit.time)."""


def _check_email(value: str) -> str:
    """An e-mail address by its syntax (no DNS look-up: deliverability is not checked). The
    domains reserved for examples and tests (example.com, *.test; RFC 2606) are accepted;
    ``test_environment`` is email-validator's switch for the latter."""
    from email_validator import EmailNotValidError, validate_email

    try:
        return str(validate_email(value, check_deliverability=False, test_environment=True).normalized)
    except EmailNotValidError as exc:
        raise ValueError(f"not a valid e-mail address: {exc}") from None


EmailAddress = Annotated[str, StringConstraints(max_length=320), AfterValidator(_check_email)]
"""An e-mail address (syntax checked by email-validator), returned normalized."""
