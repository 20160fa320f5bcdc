"""Properties of the pricing engine, checked with hypothesis.

Monotonicity (price never decreases when usage grows) holds for flat,
package, graduated and bundle charges with non-negative prices, for
percentage charges (per-event or summed), for stairstep charges whose fees do
not decrease from tier to tier, and for volume charges whose unit prices and
flat fees do not decrease.  It does NOT hold for volume pricing with cheaper
higher tiers (volume discounts), nor for stairstep with a cheaper higher step:
``test_volume_discounts_are_not_monotone`` checks that documented exception.
"""

from __future__ import annotations

import dataclasses
from decimal import Decimal

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from tollway.kit.money import parse_currency
from tollway.pricing import (
    Charge,
    Fees,
    PlanPricing,
    RecurringFee,
    RevenueBand,
    RevenueShare,
    Tier,
    preview,
    price_charge,
    price_revenue_share,
)

D = Decimal
PROPERTY = settings(max_examples=150, deadline=None)

prices = st.decimals(min_value=0, max_value=1000, places=4, allow_nan=False, allow_infinity=False)
small_prices = st.decimals(min_value=0, max_value=5, places=6, allow_nan=False, allow_infinity=False)
quantities = st.decimals(min_value=0, max_value=10**6, places=3, allow_nan=False, allow_infinity=False)
positive_sizes = st.decimals(min_value=D("0.5"), max_value=10**4, places=1, allow_nan=False, allow_infinity=False)
free = st.one_of(st.just(D(0)), st.decimals(min_value=0, max_value=10**4, places=0))
currencies = st.sampled_from(["USD", "JPY", "KWD"])


@st.composite
def bounds(draw: st.DrawFn) -> list[Decimal]:
    """1-4 ascending positive tier bounds."""
    values = draw(st.lists(st.decimals(min_value=1, max_value=10**5, places=1), min_size=1, max_size=4, unique=True))
    return sorted(values)


@st.composite
def tiers(draw: st.DrawFn, *, nondecreasing: bool = False, open_ended: bool = True) -> tuple[Tier, ...]:
    ups: list[Decimal | None] = list(draw(bounds()))
    if open_ended:
        ups.append(None)
    unit = draw(st.lists(small_prices, min_size=len(ups), max_size=len(ups)))
    flat = draw(st.lists(prices, min_size=len(ups), max_size=len(ups)))
    if nondecreasing:
        unit, flat = sorted(unit), sorted(flat)
    return tuple(Tier(up_to=u, unit_price=p, flat_fee=f) for u, p, f in zip(ups, unit, flat, strict=True))


@st.composite
def monotone_charges(draw: st.DrawFn) -> Charge:
    """A charge of any model whose price is documented to be monotone."""
    model = draw(st.sampled_from(["flat", "package", "graduated", "volume", "stairstep", "percentage", "bundle"]))
    free_units = draw(free)
    if model == "flat":
        return Charge("c", "flat", unit_price=draw(prices), free_units=free_units)
    if model == "package":
        return Charge(
            "c", "package", package_size=draw(positive_sizes), package_price=draw(prices), free_units=free_units
        )
    if model == "graduated":
        return Charge("c", "graduated", tiers=draw(tiers()), free_units=free_units)
    if model == "volume":
        return Charge("c", "volume", tiers=draw(tiers(nondecreasing=True)), free_units=free_units)
    if model == "stairstep":
        steps = tuple(
            Tier(t.up_to, D(0), t.flat_fee) for t in draw(tiers(nondecreasing=True, open_ended=draw(st.booleans())))
        )
        return Charge("c", "stairstep", tiers=steps, free_units=free_units)
    if model == "percentage":
        rate = draw(st.decimals(min_value=0, max_value=100, places=4))
        return Charge("c", "percentage", rate=rate, free_units=free_units)
    return Charge(
        "c",
        "bundle",
        bundle_size=draw(positive_sizes),
        bundle_price=draw(prices),
        included_bundles=draw(st.integers(min_value=0, max_value=5)),
        free_units=free_units,
    )


@PROPERTY
@given(charge=monotone_charges(), a=quantities, b=quantities, currency=currencies)
def test_price_is_non_negative_and_monotone(charge: Charge, a: Decimal, b: Decimal, currency: str) -> None:
    low, high = sorted((a, b))
    p_low = price_charge(charge, low, currency)
    p_high = price_charge(charge, high, currency)
    assert p_low.amount_exact >= 0 and p_low.amount >= 0
    assert p_low.amount_exact <= p_high.amount_exact
    assert p_low.amount <= p_high.amount  # rounding is monotone too


@PROPERTY
@given(
    rate=st.decimals(min_value=0, max_value=100, places=2),
    fixed=st.one_of(st.none(), prices),
    minimum=st.one_of(st.none(), st.decimals(min_value=0, max_value=5, places=2)),
    spread=st.one_of(st.none(), st.decimals(min_value=0, max_value=50, places=2)),
    free_units=free,
    events=st.lists(quantities, max_size=8),
    extra=quantities,
    position=st.integers(min_value=0, max_value=8),
)
def test_percentage_per_event_is_monotone(
    rate: Decimal,
    fixed: Decimal | None,
    minimum: Decimal | None,
    spread: Decimal | None,
    free_units: Decimal,
    events: list[Decimal],
    extra: Decimal,
    position: int,
) -> None:
    maximum = None if spread is None else (minimum or D(0)) + spread
    charge = Charge(
        "fees",
        "percentage",
        rate=rate,
        fixed_fee_per_event=fixed,
        min_per_event=minimum,
        max_per_event=maximum,
        free_units=free_units,
    )
    before = price_charge(charge, None, "USD", values=events)
    # One more event anywhere in the period never lowers the price...
    more = [*events[:position], extra, *events[position:]]
    assert price_charge(charge, None, "USD", values=more).amount_exact >= before.amount_exact >= 0
    # ...and neither does a larger value for an existing event.
    if events:
        i = position % len(events)
        bigger = [*events[:i], events[i] + extra, *events[i + 1 :]]
        assert price_charge(charge, None, "USD", values=bigger).amount_exact >= before.amount_exact


@PROPERTY
@given(rate=st.decimals(min_value=0, max_value=100, places=4), free_units=free, events=st.lists(quantities, max_size=8))
def test_percentage_without_per_event_terms_prices_the_same_from_the_sum(
    rate: Decimal, free_units: Decimal, events: list[Decimal]
) -> None:
    charge = Charge("fees", "percentage", rate=rate, free_units=free_units)
    per_event = price_charge(charge, None, "USD", values=events)
    summed = price_charge(charge, sum(events, D(0)), "USD")
    assert per_event.amount_exact == summed.amount_exact


@PROPERTY
@given(charge_tiers=tiers(), quantity=quantities, free_units=free)
def test_graduated_tier_units_add_up_to_the_billable_quantity(
    charge_tiers: tuple[Tier, ...], quantity: Decimal, free_units: Decimal
) -> None:
    charge = Charge("c", "graduated", tiers=charge_tiers, free_units=free_units)
    (line,) = price_charge(charge, quantity, "USD").lines
    billable = max(quantity - free_units, D(0))
    assert line.details["billable_quantity"] == billable
    assert sum((t.units for t in line.tiers), D(0)) == billable
    assert sum((t.amount for t in line.tiers), D(0)) == line.amount_exact
    assert all(t.units > 0 for t in line.tiers)


@PROPERTY
@given(charge_tiers=tiers(open_ended=False), quantity=quantities, model=st.sampled_from(["volume", "stairstep"]))
def test_volume_and_stairstep_put_the_whole_quantity_in_one_tier(
    charge_tiers: tuple[Tier, ...], quantity: Decimal, model: str
) -> None:
    if model == "volume":
        charge_tiers = (*charge_tiers[:-1], Tier(None, charge_tiers[-1].unit_price, charge_tiers[-1].flat_fee))
    else:
        charge_tiers = tuple(Tier(t.up_to, D(0), t.flat_fee) for t in charge_tiers)
    (line,) = price_charge(Charge("c", model, tiers=charge_tiers), quantity, "USD").lines
    if quantity == 0:
        assert line.tiers == () and line.amount == 0
    else:
        (tier,) = line.tiers
        assert tier.units == quantity
        assert tier.lower < quantity
        assert tier.up_to is None or quantity <= tier.up_to or tier.tier == len(charge_tiers)


@PROPERTY
@given(charge=monotone_charges(), quantity=quantities, currency=currencies)
def test_free_units_are_taken_off_the_quantity_first(charge: Charge, quantity: Decimal, currency: str) -> None:
    with_free = price_charge(charge, quantity, currency)
    without = dataclasses.replace(charge, free_units=D(0))
    billable = max(quantity - charge.free_units, D(0))
    assert with_free.amount_exact == price_charge(without, billable, currency).amount_exact


@PROPERTY
@given(size=positive_sizes, price=prices, quantity=quantities)
def test_package_count_covers_the_quantity_with_less_than_one_package_spare(
    size: Decimal, price: Decimal, quantity: Decimal
) -> None:
    (line,) = price_charge(Charge("c", "package", package_size=size, package_price=price), quantity, "USD").lines
    packages = line.details["packages"]
    assert isinstance(packages, Decimal) and packages == packages.to_integral_value()
    assert packages * size >= quantity > (packages - 1) * size


@PROPERTY
@given(
    unit_prices=st.lists(small_prices, min_size=1, max_size=6),
    amounts=st.lists(quantities, min_size=1, max_size=6),
    currency=currencies,
    fraction=st.decimals(min_value=0, max_value=1, places=5),
)
def test_rounding_never_drifts_more_than_half_a_minor_unit_per_line(
    unit_prices: list[Decimal], amounts: list[Decimal], currency: str, fraction: Decimal
) -> None:
    charges = tuple(Charge(f"c{i}", "flat", unit_price=p) for i, p in enumerate(unit_prices))
    plan = PlanPricing(charges=charges, fees=Fees(recurring=RecurringFee(D("49.99"), prorate=True)))
    quantities_by_code = {c.code: amounts[i % len(amounts)] for i, c in enumerate(charges)}
    result = preview(plan, quantities_by_code, None, fraction, currency)
    half = parse_currency(currency).quantum / 2
    exact_total = sum((line.amount_exact for line in result.lines), D(0))
    assert result.subtotal == sum((line.amount for line in result.lines), D(0))
    for line in result.lines:
        assert abs(line.amount - line.amount_exact) <= half
    assert abs(result.subtotal - exact_total) <= half * len(result.lines)


@PROPERTY
@given(
    usa=quantities,
    emea=quantities,
    apac=quantities,
    usa_price=prices,
    base_price=prices,
    free_units=free,
)
def test_dimension_lines_price_each_value_on_its_own(
    usa: Decimal, emea: Decimal, apac: Decimal, usa_price: Decimal, base_price: Decimal, free_units: Decimal
) -> None:
    charge = Charge(
        "hours",
        "flat",
        unit_price=base_price,
        free_units=free_units,
        dimension="region",
        dimension_prices={"USA": Charge("hours", "flat", unit_price=usa_price, free_units=free_units)},
    )
    priced = price_charge(charge, {"USA": usa, "EMEA": emea, "APAC": apac}, "USD")
    expected = sum(
        (max(q - free_units, D(0)) * p for q, p in [(usa, usa_price), (emea, base_price), (apac, base_price)]), D(0)
    )
    assert priced.amount_exact == expected
    assert len(priced.lines) == 3


@PROPERTY
@given(
    ups=bounds(),
    percents=st.lists(st.decimals(min_value=0, max_value=100, places=2), min_size=5, max_size=5),
    a=quantities,
    b=quantities,
)
def test_flexible_revenue_share_grows_with_revenue(
    ups: list[Decimal], percents: list[Decimal], a: Decimal, b: Decimal
) -> None:
    limits: list[Decimal | None] = [*ups, None]
    share = RevenueShare(
        "order_value", "flexible", bands=tuple(RevenueBand(u, p) for u, p in zip(limits, percents, strict=False))
    )
    low, high = sorted((a, b))
    # Credits: the more revenue, the larger (more negative) the share.
    assert (
        price_revenue_share(share, high, "USD").amount_exact <= price_revenue_share(share, low, "USD").amount_exact <= 0
    )


@PROPERTY
@given(percent=st.decimals(min_value=0, max_value=100, places=4), revenue=quantities)
def test_one_open_band_is_the_fixed_share(percent: Decimal, revenue: Decimal) -> None:
    fixed = RevenueShare("v", "fixed", percent=percent)
    flexible = RevenueShare("v", "flexible", bands=(RevenueBand(None, percent),))
    assert (
        price_revenue_share(fixed, revenue, "USD").amount_exact
        == price_revenue_share(flexible, revenue, "USD").amount_exact
    )


@PROPERTY
@given(
    boundary=st.integers(min_value=10, max_value=10**5),
    low=st.decimals(min_value=D("0.01"), max_value=10, places=2),
    discount=st.decimals(min_value=D("0.10"), max_value=D("0.90"), places=2),
)
def test_volume_discounts_are_not_monotone(boundary: int, low: Decimal, discount: Decimal) -> None:
    # The documented exception: with a cheaper next tier, one more unit can lower the total.
    cheaper = (low * (1 - discount)).quantize(D("0.0001"))
    assume(cheaper < low)
    charge = Charge("c", "volume", tiers=(Tier(D(boundary), low), Tier(None, cheaper)))
    at_boundary = price_charge(charge, D(boundary), "USD").amount_exact
    one_more = price_charge(charge, D(boundary + 1), "USD").amount_exact
    assert at_boundary == boundary * low
    assert one_more == (boundary + 1) * cheaper
    if boundary * (low - cheaper) > cheaper:
        assert one_more < at_boundary
