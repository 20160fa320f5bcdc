"""Revenue share: the provider pays the developer a percentage of the revenue their app brought.

``fixed``: ``percent`` of the period's revenue.

``flexible``: revenue bands over the period's revenue, each with its own
percent.  Following Apigee monetization's "flexible sharing model" (bands
such as >0-1000 at 80.5555% and above 1000 at 90.5%: a transaction gets the
percentage of the band the period's running revenue is in when it happens),
a band's percent applies to the part of the revenue inside that band only -
like a graduated price, not like a volume price.  So crossing a band boundary
never lowers the share already earned, and the share is monotone in revenue.

The share is a credit: its line has kind ``revenue_share`` and a negative amount.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Final

from tollway.kit.fields import field_path, format_decimal
from tollway.kit.money import Currency, money_context
from tollway.pricing._fields import Errors, read_decimal, read_mapping, read_str
from tollway.pricing.errors import PricingInputError, PricingValidationError
from tollway.pricing.lines import PricedLine, sum_amounts

__all__ = [
    "RevenueBand",
    "RevenueShare",
    "price_revenue_share",
    "revenue_share_from_dict",
    "validate_revenue_share",
]

ZERO: Final = Decimal(0)


@dataclass(frozen=True, slots=True)
class RevenueBand:
    """Revenue above the previous band's ``up_to`` up to and including this one (``None``: no limit)."""

    up_to: Decimal | None
    percent: Decimal


@dataclass(frozen=True, slots=True)
class RevenueShare:
    """The contract's ``revenue_share`` object."""

    meter: str
    model: str
    percent: Decimal | None = None
    bands: tuple[RevenueBand, ...] = ()


def _check_percent(value: Decimal | None, where: str, errors: Errors) -> None:
    if value is None:
        errors.append((where, "is required"))
    elif not 0 <= value <= 100:
        errors.append((where, "must be a percentage between 0 and 100"))


def validate_revenue_share(share: RevenueShare, prefix: str = "revenue_share") -> list[tuple[str, str]]:
    """Problems with ``share`` as ``(field, message)`` pairs; empty when valid."""
    errors: Errors = []
    if not isinstance(share.meter, str) or not share.meter.strip():
        errors.append((field_path(prefix, "meter"), "is required"))
    if share.model == "fixed":
        _check_percent(share.percent, field_path(prefix, "percent"), errors)
        if share.bands:
            errors.append((field_path(prefix, "bands"), "is not used by the 'fixed' model"))
    elif share.model == "flexible":
        if share.percent is not None:
            errors.append((field_path(prefix, "percent"), "is not used by the 'flexible' model: give bands"))
        where = field_path(prefix, "bands")
        if not share.bands:
            errors.append((where, "at least one band is required for the 'flexible' model"))
        previous = ZERO
        last = len(share.bands) - 1
        for i, band in enumerate(share.bands):
            band_at = field_path(where, i)
            _check_percent(band.percent, field_path(band_at, "percent"), errors)
            if band.up_to is None:
                if i != last:
                    errors.append((field_path(band_at, "up_to"), "only the last band may be open-ended (null)"))
            elif band.up_to <= previous:
                message = "must be greater than 0" if i == 0 else "bands must be in ascending order of up_to"
                errors.append((field_path(band_at, "up_to"), message))
            else:
                previous = band.up_to
        if share.bands and share.bands[-1].up_to is not None:
            errors.append((field_path(field_path(where, last), "up_to"), "the last band must be open-ended (null)"))
    else:
        errors.append((field_path(prefix, "model"), f"unknown model {share.model!r}; expected fixed or flexible"))
    return errors


def revenue_share_from_dict(data: Mapping[str, object], prefix: str = "revenue_share") -> RevenueShare:
    """The contract's ``revenue_share`` JSON as :class:`RevenueShare`; raises :class:`PricingValidationError`."""
    errors: Errors = []
    mapping = read_mapping(data, prefix, errors)
    if mapping is None:
        raise PricingValidationError(errors)
    for key in mapping:
        if key not in {"meter", "model", "percent", "bands"}:
            errors.append((field_path(prefix, key), "unknown field"))
    meter = read_str(mapping, "meter", prefix, errors)
    model = read_str(mapping, "model", prefix, errors)
    percent = read_decimal(mapping, "percent", prefix, errors)
    bands: list[RevenueBand] = []
    raw_bands = mapping.get("bands")
    if raw_bands is not None:
        where = field_path(prefix, "bands")
        if not isinstance(raw_bands, list | tuple):
            errors.append((where, "must be a list of bands"))
        else:
            for i, raw in enumerate(raw_bands):
                band_at = field_path(where, i)
                band = read_mapping(raw, band_at, errors)
                if band is None:
                    continue
                for key in band:
                    if key not in {"up_to", "percent"}:
                        errors.append((field_path(band_at, key), "unknown field"))
                if "up_to" not in band:
                    errors.append((field_path(band_at, "up_to"), "is required (null for the last band)"))
                band_percent = read_decimal(band, "percent", band_at, errors)
                if band_percent is None and band.get("percent") is None:
                    errors.append((field_path(band_at, "percent"), "is required"))
                bands.append(RevenueBand(read_decimal(band, "up_to", band_at, errors), band_percent or ZERO))
    if model is None and mapping.get("model") is None:
        errors.append((field_path(prefix, "model"), "is required"))
    share = RevenueShare(meter=meter or "", model=model or "", percent=percent, bands=tuple(bands))
    if not errors:
        errors.extend(validate_revenue_share(share, prefix))
    if errors:
        raise PricingValidationError(errors)
    return share


def price_revenue_share(share: RevenueShare, revenue: Decimal, currency: Currency | str) -> PricedLine:
    """The developer's share of ``revenue`` for the period, as a negative ``revenue_share`` line."""
    problems = validate_revenue_share(share)
    if problems:
        raise PricingValidationError(problems)
    if isinstance(revenue, bool) or not isinstance(revenue, Decimal | int):
        raise PricingInputError([(share.meter, "revenue must be a Decimal")])
    revenue = Decimal(revenue)
    if not revenue.is_finite() or revenue < 0:
        raise PricingInputError([(share.meter, "revenue must be a non-negative number")])
    details: dict[str, object] = {"model": share.model}
    if share.model == "fixed":
        assert share.percent is not None
        with money_context():
            share_amount = revenue * share.percent / 100
        details["percent"] = share.percent
        description = f"Revenue share: {format_decimal(share.percent)}% of {format_decimal(revenue)}"
    else:
        parts: list[dict[str, object]] = []
        amounts: list[Decimal] = []
        lower = ZERO
        with money_context():
            for index, band in enumerate(share.bands, start=1):
                if revenue <= lower:
                    break
                top = revenue if band.up_to is None else min(revenue, band.up_to)
                inside = top - lower
                amounts.append(inside * band.percent / 100)
                parts.append(
                    {
                        "band": index,
                        "from": lower,
                        "up_to": band.up_to,
                        "revenue": inside,
                        "percent": band.percent,
                        "amount": amounts[-1],
                    }
                )
                if band.up_to is None:
                    break
                lower = band.up_to
        share_amount = sum_amounts(amounts)
        details["bands"] = parts
        description = f"Revenue share: banded share of {format_decimal(revenue)}"
    return PricedLine.build(
        kind="revenue_share",
        description=description,
        quantity=revenue,
        amount_exact=-share_amount,
        currency=currency,
        meter=share.meter,
        details=details,
    )
