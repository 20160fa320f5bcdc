"""tollway.kit.money: currencies from ISO 4217, the half-up rounding rule, minor units."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tollway.kit.money import (
    Currency,
    CurrencyError,
    format_money,
    from_minor_units,
    money_str,
    parse_currency,
    round_money,
    to_minor_units,
)

D = Decimal


@pytest.mark.parametrize(("code", "exponent"), [("USD", 2), ("EUR", 2), ("JPY", 0), ("KWD", 3), ("BHD", 3), ("CLP", 0)])
def test_exponent_comes_from_iso4217(code: str, exponent: int) -> None:
    assert parse_currency(code) == Currency(code, exponent)


def test_code_is_case_insensitive_and_trimmed() -> None:
    assert parse_currency(" usd ") == Currency("USD", 2)


def test_currency_passes_through() -> None:
    usd = Currency("USD", 2)
    assert parse_currency(usd) is usd
    assert str(usd) == "USD"
    assert usd.quantum == D("0.01")
    assert parse_currency("JPY").quantum == D("1")


@pytest.mark.parametrize("code", ["XXQ", "US", "USDT", "12A", ""])
def test_unknown_code_is_a_clear_value_error(code: str) -> None:
    with pytest.raises(CurrencyError) as info:
        parse_currency(code)
    assert isinstance(info.value, ValueError)
    assert "ISO 4217" in str(info.value)


def test_code_without_minor_unit_is_refused() -> None:
    with pytest.raises(CurrencyError, match="no minor unit"):
        parse_currency("XAU")


def test_non_string_code_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        parse_currency(840)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("amount", "code", "expected"),
    [
        ("2.345", "USD", "2.35"),
        ("2.344999", "USD", "2.34"),
        ("0.005", "USD", "0.01"),
        ("-0.005", "USD", "-0.01"),  # ties away from zero: a credit mirrors a charge
        ("-0.125", "USD", "-0.13"),
        ("-0.004", "USD", "0.00"),  # never "-0.00"
        ("1.5", "JPY", "2"),
        ("2.5", "JPY", "3"),
        ("1234.4999", "JPY", "1234"),
        ("0.0005", "KWD", "0.001"),
        ("1.2345", "KWD", "1.235"),
        ("1.2344", "KWD", "1.234"),
        ("7", "USD", "7.00"),
    ],
)
def test_round_money_half_up_to_the_minor_unit(amount: str, code: str, expected: str) -> None:
    result = round_money(D(amount), code)
    assert result == D(expected)
    assert str(result) == expected


def test_round_money_keeps_huge_amounts_exact() -> None:
    # 28 significant digits would be lost in the default decimal context.
    amount = D("123456789012345678901234.565")
    assert round_money(amount, "USD") == D("123456789012345678901234.57")


@pytest.mark.parametrize("bad", [0.1, 1.0, True])
def test_floats_are_refused(bad: object) -> None:
    with pytest.raises(TypeError):
        round_money(bad, "USD")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        to_minor_units(bad, "USD")  # type: ignore[arg-type]


def test_non_finite_amounts_are_refused() -> None:
    with pytest.raises(ValueError, match="finite"):
        round_money(D("NaN"), "USD")
    with pytest.raises(ValueError, match="finite"):
        round_money(D("Infinity"), "USD")


def test_int_amounts_are_exact_and_accepted() -> None:
    assert round_money(5, "USD") == D("5.00")


@pytest.mark.parametrize(
    ("amount", "code", "minor"),
    [
        ("19.99", "USD", 1999),
        ("19.995", "USD", 2000),
        ("1234", "JPY", 1234),
        ("1.2345", "KWD", 1235),
        ("-3.50", "EUR", -350),
    ],
)
def test_to_minor_units(amount: str, code: str, minor: int) -> None:
    assert to_minor_units(D(amount), code) == minor


@pytest.mark.parametrize(
    ("minor", "code", "amount"),
    [(1999, "USD", "19.99"), (5, "JPY", "5"), (1234, "KWD", "1.234"), (-1, "USD", "-0.01"), (0, "KWD", "0.000")],
)
def test_from_minor_units(minor: int, code: str, amount: str) -> None:
    result = from_minor_units(minor, code)
    assert str(result) == amount


def test_from_minor_units_wants_an_int() -> None:
    with pytest.raises(TypeError):
        from_minor_units(D("1999"), "USD")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        from_minor_units(True, "USD")


@given(minor=st.integers(min_value=-(10**15), max_value=10**15), code=st.sampled_from(["USD", "JPY", "KWD"]))
def test_minor_units_round_trip(minor: int, code: str) -> None:
    assert to_minor_units(from_minor_units(minor, code), code) == minor


@given(
    amount=st.decimals(min_value=-(10**9), max_value=10**9, places=6, allow_nan=False, allow_infinity=False),
    code=st.sampled_from(["USD", "JPY", "KWD"]),
)
def test_rounding_moves_at_most_half_a_minor_unit(amount: Decimal, code: str) -> None:
    currency = parse_currency(code)
    rounded = round_money(amount, currency)
    assert abs(rounded - amount) <= currency.quantum / 2
    assert rounded == round_money(rounded, currency)  # idempotent


def test_money_str_and_format_money() -> None:
    assert money_str(D("1900"), "USD") == "1900.00"
    assert money_str(D("1234.5"), "JPY") == "1235"
    assert money_str(D("0.1255"), "KWD") == "0.126"
    assert money_str(D("1E+3"), "USD") == "1000.00"
    assert format_money(D("1900"), "USD") == "1,900.00 USD"
    assert format_money(D("1234567.4"), "JPY") == "1,234,567 JPY"
    assert format_money(D("-12.3456"), "KWD") == "-12.346 KWD"
