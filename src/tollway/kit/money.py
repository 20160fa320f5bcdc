"""Money helpers: ISO 4217 currencies, the one rounding rule, minor units.

Everything here is ``decimal.Decimal``; floats are refused with ``TypeError`` so
that a binary fraction can never leak into an amount.  Integers are accepted
where a number is expected because they are exact.

Rounding rule (the only one in the project): an amount is rounded to the
currency's minor unit (ISO 4217 exponent: JPY 0, USD 2, KWD 3) with
``ROUND_HALF_UP``; Python's half-up rounds ties away from zero, so a credit of
-0.125 USD becomes -0.13, the mirror image of a 0.125 charge.
"""

from __future__ import annotations

import decimal
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

import iso4217

__all__ = [
    "EXACT",
    "MONEY_CONTEXT",
    "AmountOutOfRange",
    "Currency",
    "CurrencyError",
    "format_money",
    "format_price",
    "from_minor_units",
    "money_context",
    "money_str",
    "parse_currency",
    "round_money",
    "to_minor_units",
]

MONEY_CONTEXT = decimal.Context(
    prec=60,
    rounding=decimal.ROUND_HALF_EVEN,
    traps=[decimal.InvalidOperation, decimal.DivisionByZero, decimal.Overflow],
)
"""Arithmetic context for money: 60 significant digits, so that a price stored as
``Numeric(30, 12)`` times any realistic quantity is computed exactly (the
default context keeps only 28 digits)."""

EXACT = decimal.Context(prec=decimal.MAX_PREC, Emax=decimal.MAX_EMAX, Emin=decimal.MIN_EMIN, traps=[])
"""A context whose additions and subtractions never round: meter totals (sums and counts) added
up in parts, in the database's aggregate (SQLite) or in Python, are the exact total whatever the
parts."""


@contextmanager
def money_context() -> Iterator[decimal.Context]:
    """Run the enclosed arithmetic in :data:`MONEY_CONTEXT` (thread/task local)."""
    with decimal.localcontext(MONEY_CONTEXT) as ctx:
        yield ctx


class CurrencyError(ValueError):
    """An unknown ISO 4217 code, or one without a minor unit (gold, SDR...)."""


class AmountOutOfRange(ValueError):
    """An amount too large to be rounded exactly in :data:`MONEY_CONTEXT` (60 digits)."""


@dataclass(frozen=True, slots=True)
class Currency:
    """An ISO 4217 currency: its alphabetic code and minor-unit exponent."""

    code: str
    exponent: int

    @property
    def quantum(self) -> Decimal:
        """The minor unit as a Decimal: ``Decimal("0.01")`` for USD, ``Decimal("1")`` for JPY."""
        return Decimal(1).scaleb(-self.exponent)

    def __str__(self) -> str:
        return self.code


def parse_currency(code: str | Currency) -> Currency:
    """The :class:`Currency` for an ISO 4217 code (case-insensitive).

    The exponent comes from the installed ``iso4217`` package.  Raises
    :class:`CurrencyError` (a ``ValueError``) for an unknown code or for a code
    that has no minor unit (XAU, XDR...), which cannot be invoiced.
    """
    if isinstance(code, Currency):
        return code
    if not isinstance(code, str):
        raise TypeError(f"currency must be an ISO 4217 code string, not {type(code).__name__}")
    normalized = code.strip().upper()
    if len(normalized) != 3 or not normalized.isalpha():
        raise CurrencyError(f"{code!r} is not an ISO 4217 currency code (three letters such as 'USD')")
    try:
        entry = iso4217.Currency(normalized)
    except ValueError:
        raise CurrencyError(f"{normalized!r} is not a known ISO 4217 currency code") from None
    exponent = entry.exponent
    if exponent is None:
        raise CurrencyError(f"{normalized!r} has no minor unit in ISO 4217 and cannot be used for billing")
    return Currency(code=normalized, exponent=int(exponent))


_PLAIN_DECIMAL = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)$")


def parse_decimal(value: object) -> Decimal:
    """A number from API input: a plain decimal string ("12.50", no exponent), an int or a
    finite Decimal. Floats and booleans are refused. Raises ValueError with a message that
    can be shown to the API user next to the field name."""
    if isinstance(value, bool):
        raise ValueError("must be a decimal string, not a boolean")
    if isinstance(value, float):
        raise ValueError('must be a decimal string such as "12.50", not a JSON float')
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError("must be a finite number")
        return value
    if isinstance(value, str) and _PLAIN_DECIMAL.match(value.strip()):
        return Decimal(value.strip())
    raise ValueError(f'must be a decimal string such as "12.50", got {value!r}')


def _amount(value: Decimal | int) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, Decimal | int):
        raise TypeError(f"amount must be a Decimal (or int), not {type(value).__name__}")
    amount = Decimal(value) if isinstance(value, int) else value
    if not amount.is_finite():
        raise ValueError(f"amount must be finite, got {amount}")
    return amount


def round_money(amount: Decimal | int, currency: Currency | str) -> Decimal:
    """Round ``amount`` to the currency's minor unit, half up (ties away from zero).

    >>> round_money(Decimal("2.345"), "USD")
    Decimal('2.35')
    >>> round_money(Decimal("1.5"), "JPY")
    Decimal('2')
    """
    cur = parse_currency(currency)
    value = _amount(amount)
    try:
        with money_context():
            rounded = value.quantize(cur.quantum, rounding=ROUND_HALF_UP)
    except decimal.InvalidOperation:
        raise AmountOutOfRange(f"{value:E} {cur.code} is too large to bill") from None
    if rounded == 0:
        rounded = abs(rounded)  # no "-0.00" on an invoice
    return rounded


def to_minor_units(amount: Decimal | int, currency: Currency | str) -> int:
    """The amount as an integer count of minor units (cents), rounded by :func:`round_money`."""
    cur = parse_currency(currency)
    rounded = round_money(amount, cur)
    with money_context():
        return int(rounded.scaleb(cur.exponent))


def from_minor_units(minor: int, currency: Currency | str) -> Decimal:
    """The Decimal amount for an integer count of minor units: ``from_minor_units(1999, "USD") == Decimal("19.99")``."""
    if isinstance(minor, bool) or not isinstance(minor, int):
        raise TypeError(f"minor units must be an int, not {type(minor).__name__}")
    cur = parse_currency(currency)
    with money_context():
        return Decimal(minor).scaleb(-cur.exponent).quantize(cur.quantum)


def money_str(amount: Decimal | int, currency: Currency | str) -> str:
    """The rounded amount as the API's decimal string: ``"1900.00"``, ``"1234"`` (JPY), ``"0.125"`` (KWD)."""
    return format(round_money(amount, currency), "f")


def format_money(amount: Decimal | int, currency: Currency | str) -> str:
    """A human-readable amount with thousands separators and the code: ``"1,900.00 USD"``."""
    cur = parse_currency(currency)
    rounded = round_money(amount, cur)
    return f"{rounded:,.{cur.exponent}f} {cur.code}"


def format_price(amount: Decimal | int, currency: Currency | str) -> str:
    """A unit price as people read it, never rounded: at least the currency's minor digits, more
    when the price has them: ``"0.50 USD"``, ``"0.0015 USD"``, ``"1,200.00 USD"``."""
    cur = parse_currency(currency)
    value = Decimal(amount)
    exponent = value.normalize().as_tuple().exponent
    digits = max(cur.exponent, -exponent if isinstance(exponent, int) and exponent < 0 else 0)
    return f"{value:,.{digits}f} {cur.code}"
