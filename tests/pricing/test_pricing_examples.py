"""Worked examples from public pricing documentation, priced by Tollway's engine.

Each case names its source (page and vendor).  Only facts and figures are taken
from the sources: tier tables, prices, quantities and the totals the vendors
state.  Where a vendor states no total, the expected figure is computed by hand
from the vendor's table and the case says so ("derived").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

import pytest

from tollway.pricing import (
    Fees,
    PlanPricing,
    Proration,
    RecurringFee,
    RevenueBand,
    RevenueShare,
    charge_from_dict,
    preview,
    price_charge,
    price_revenue_share,
)

D = Decimal

STRIPE_TIERED = "Stripe docs, 'Set up tiered pricing' (docs.stripe.com/subscriptions/pricing-models/tiered-pricing)"
STRIPE_TRANSFORM = (
    "Stripe docs, 'Transform quantities' (docs.stripe.com/billing/subscriptions/usage-based/transform-quantities)"
)
STRIPE_QTY = "Stripe docs, 'Quantity transformation' (stripe.com/docs/billing/subscriptions/quantity-transformation)"
LAGO_PACKAGE = "Lago docs, 'Package' charge model (getlago.com/docs/guide/plans/charges/charge-models/package)"
LAGO_VOLUME = "Lago docs, 'Volume' charge model (getlago.com/docs/guide/plans/charges/charge-models/volume)"
LAGO_GRADUATED = "Lago docs, 'Graduated' charge model (getlago.com/docs/guide/plans/charges/charge-models/graduated)"
LAGO_PERCENTAGE = "Lago docs, 'Percentage' charge model (getlago.com/docs/guide/plans/charges/charge-models/percentage)"
LAGO_STRIPE_TEMPLATE = (
    "Lago docs, per-transaction template 'Stripe' (getlago.com/docs/templates/per-transaction/stripe)"
)
APIGEE_RATEPLAN = (
    "Apigee API reference, RatePlan.consumptionPricingRates "
    "(cloud.google.com/apigee/docs/reference/apis/apigee/rest/v1/organizations.apiproducts.rateplans)"
)
APIGEE_FORUM = (
    "Google Developer forum, 'How to implement stair-step (retroactive) pricing in Apigee monetization' "
    "(discuss.google.dev/t/258673)"
)
APIGEE_REVSHARE = (
    "Apigee Edge docs, 'Configure revenue share plan' "
    "(docs.apigee.com/api-platform/monetization/specify-revenue-share-plan-details)"
)
APIGEE_RATECARD_PAGE = "docs.apigee.com/api-platform/monetization/specify-rate-card-plan-details"
APIGEE_RATECARD = f"Apigee Edge docs, 'Configure rate card plan' ({APIGEE_RATECARD_PAGE})"
CHARGEBEE_MODELS = "Chargebee, 'SaaS pricing models' (chargebee.com/saas-pricing-models)"
CHARGEBEE_PACKAGE = "Chargebee docs, 'Package pricing' (chargebee.com/docs/billing/2.0/product-catalog/package-pricing)"
AMBERFLO = "Amberflo docs, 'Pricing and Rating' (docs.amberflo.io/docs/pricing-and-rating)"
ZUPLO = "Zuplo docs, 'Pricing models' (zuplo.com/docs/articles/monetization/pricing-models)"
FLEXPRICE = "Flexprice docs, 'Tiered' (docs.flexprice.io/docs/product-catalogue/plans/billing-models/tiered)"
AUTUMN = "Autumn docs, 'Graduated pricing' (docs.useautumn.com/documentation/modelling-pricing/graduated-pricing)"
NADLES = "Nadles docs, 'Create a price' (docs.nadles.com/pricing/create-price)"
ORACLE = (
    "Oracle Banking Liquidity Management user guide, 'Examples for Tier Based Amount' "
    "(docs.oracle.com/en/industries/financial-services/banking-liquidity-management/14.8.2.0.0/oblug/"
    "examples-tier-based-amount.html)"
)
UPVEST = (
    "Upvest docs, 'Designing your transaction fee model' "
    "(docs.upvest.co/products/tol/guides/fees/fees_transaction_fees_designing)"
)
ZUORA = "Zuora docs, 'Overage pricing' (docs.zuora.com/en/zuora-billing/.../overage-pricing)"
RED_HAT_3SCALE = "Red Hat 3scale API Management, Admin Portal Guide, ch. 25 'Pricing' (docs.redhat.com)"
ISO_4217 = "ISO 4217 minor units (as shipped in the iso4217 package) and the Tollway contract's rounding rule"


def tiers(*rows: tuple[object, str, str]) -> list[dict[str, object]]:
    """Tier rows as (up_to, unit_price, flat_fee)."""
    return [{"up_to": up_to, "unit_price": unit, "flat_fee": flat} for up_to, unit, flat in rows]


STRIPE_TIERS = tiers((5, "7", "0"), (10, "6.5", "0"), (None, "6", "0"))
APIGEE_BANDS = tiers((100, "2", "0"), (200, "1.50", "0"), (None, "1", "0"))
LAGO_VOLUME_TIERS = tiers(
    (10000, "0.0010", "10"), (50000, "0.0008", "10"), (100000, "0.0006", "10"), (None, "0.0004", "10")
)
FORUM_TIERS = tiers((500, "8", "0"), (1000, "6", "0"), (None, "4", "0"))


@dataclass(frozen=True)
class Example:
    id: str
    source: str
    charge: Mapping[str, object]
    quantity: object
    expected: str
    currency: str = "USD"
    values: Sequence[Decimal] | None = None
    note: str = ""
    extra: Mapping[str, object] = field(default_factory=dict)


EXAMPLES = [
    # --- Stripe: tiered volume and graduated (tiers 1-5 at 7, 6-10 at 6.5, 11+ at 6) -----------
    Example("stripe-volume-1", STRIPE_TIERED, {"model": "volume", "tiers": STRIPE_TIERS}, D(1), "7.00"),
    Example("stripe-volume-5", STRIPE_TIERED, {"model": "volume", "tiers": STRIPE_TIERS}, D(5), "35.00"),
    Example("stripe-volume-6", STRIPE_TIERED, {"model": "volume", "tiers": STRIPE_TIERS}, D(6), "39.00"),
    Example(
        "stripe-volume-11", STRIPE_TIERED, {"model": "volume", "tiers": STRIPE_TIERS}, D(11), "66.00", note="derived"
    ),
    Example(
        "stripe-graduated-6",
        STRIPE_TIERED,
        {"model": "graduated", "tiers": STRIPE_TIERS},
        D(6),
        "41.50",
        note="derived: 5 x 7 + 1 x 6.5",
    ),
    Example(
        "stripe-graduated-11",
        STRIPE_TIERED,
        {"model": "graduated", "tiers": STRIPE_TIERS},
        D(11),
        "73.50",
        note="derived: 5 x 7 + 5 x 6.5 + 1 x 6",
    ),
    # --- Stripe transform_quantity = package ----------------------------------------------------
    Example(
        "stripe-car-rental-150-minutes",
        STRIPE_TRANSFORM,
        {"model": "package", "package_size": 60, "package_price": "10"},
        D(150),
        "30.00",
    ),
    Example(
        "stripe-car-rental-61-minutes",
        STRIPE_TRANSFORM,
        {"model": "package", "package_size": 60, "package_price": "10"},
        D(61),
        "20.00",
        note="derived: round up",
    ),
    *[
        Example(
            f"stripe-per-5-users-{users}",
            STRIPE_QTY,
            {"model": "package", "package_size": 5, "package_price": "10"},
            D(users),
            total,
        )
        for users, total in [(1, "10.00"), (3, "10.00"), (5, "10.00"), (6, "20.00"), (7, "20.00")]
    ],
    # --- Lago ------------------------------------------------------------------------------------
    Example(
        "lago-package-201-units-first-100-free",
        LAGO_PACKAGE,
        {"model": "package", "package_size": 100, "package_price": "5", "free_units": 100},
        D(201),
        "10.00",
    ),
    Example("lago-volume-65000", LAGO_VOLUME, {"model": "volume", "tiers": LAGO_VOLUME_TIERS}, D(65000), "49.00"),
    Example(
        "lago-graduated-250",
        LAGO_GRADUATED,
        {"model": "graduated", "tiers": tiers((100, "1", "0"), (200, "0.50", "0"), (None, "0.10", "0"))},
        D(250),
        "155.00",
        note="derived: 100 x 1 + 100 x 0.50 + 50 x 0.10",
    ),
    Example(
        "lago-percentage-50-with-fixed-fee",
        LAGO_PERCENTAGE,
        {"model": "percentage", "rate": "1.2", "fixed_fee_per_event": "0.10"},
        None,
        "0.70",
        values=[D(50)],
        note="the charged fourth transaction of Lago's table: 0.10 + 1.2% of 50",
    ),
    Example(
        "lago-stripe-card-online",
        LAGO_STRIPE_TEMPLATE,
        {"model": "percentage", "rate": "2.9", "fixed_fee_per_event": "0.30"},
        None,
        "6.40",
        values=[D(100), D(100)],
        note="derived: two $100 online card payments at 2.9% + $0.30",
    ),
    Example(
        "lago-stripe-card-in-person",
        LAGO_STRIPE_TEMPLATE,
        {"model": "percentage", "rate": "2.7", "fixed_fee_per_event": "0.05"},
        None,
        "2.75",
        values=[D(100)],
        note="derived: one $100 in-person card payment",
    ),
    Example(
        "lago-percentage-summed-value",
        LAGO_PERCENTAGE,
        {"model": "percentage", "rate": "1.2"},
        D(450),
        "5.40",
        note="derived: 1.2% of the four transactions' $450, no fixed fee: priced from the sum alone",
    ),
    # --- Percentage with minimum and maximum per event --------------------------------------------
    Example(
        "upvest-1pct-min-1-max-100",
        UPVEST,
        {"model": "percentage", "rate": "1", "min_per_event": "1", "max_per_event": "100"},
        None,
        "151.00",
        currency="EUR",
        values=[D(50), D(5000), D(20000)],
        note="derived: 50 -> min 1; 5000 -> 50; 20000 -> max 100",
    ),
    # --- Apigee -----------------------------------------------------------------------------------
    *[
        Example(
            f"apigee-banded-{calls}", APIGEE_RATEPLAN, {"model": "graduated", "tiers": APIGEE_BANDS}, D(calls), total
        )
        for calls, total in [(50, "100.00"), (150, "275.00"), (250, "400.00"), (500, "650.00")]
    ],
    *[
        Example(
            f"apigee-stairstep-{calls}",
            APIGEE_RATEPLAN,
            {"model": "stairstep", "tiers": tiers((100, "0", "75"), (200, "0", "100"))},
            D(calls),
            total,
        )
        for calls, total in [(1, "75.00"), (50, "75.00"), (150, "100.00")]
    ],
    Example(
        "apigee-forum-volume-1200", APIGEE_FORUM, {"model": "volume", "tiers": FORUM_TIERS}, D(1200), "4800.00", "SAR"
    ),
    Example(
        "apigee-forum-graduated-1200",
        APIGEE_FORUM,
        {"model": "graduated", "tiers": FORUM_TIERS},
        D(1200),
        "7800.00",
        "SAR",
    ),
    # --- Chargebee ----------------------------------------------------------------------------------
    Example(
        "chargebee-volume-15-licenses",
        CHARGEBEE_MODELS,
        {"model": "volume", "tiers": tiers((10, "12", "0"), (None, "10", "0"))},
        D(15),
        "150.00",
        note="15 licenses in the $10 slab; the first slab's $12 is illustrative",
    ),
    Example(
        "chargebee-tiered-15-licenses",
        CHARGEBEE_MODELS,
        {"model": "graduated", "tiers": tiers((9, "20", "0"), (None, "15", "0"))},
        D(15),
        "270.00",
        note="derived: 9 x 20 + 6 x 15",
    ),
    *[
        Example(
            f"chargebee-stairstep-{gb}-gb",
            CHARGEBEE_MODELS,
            {"model": "stairstep", "tiers": tiers((500, "0", "100"), (2000, "0", "200"), (4000, "0", "400"))},
            D(gb),
            total,
        )
        for gb, total in [(300, "100.00"), (500, "100.00"), (1500, "200.00"), (4000, "400.00")]
    ],
    *[
        Example(
            f"chargebee-package-{tokens}-tokens",
            CHARGEBEE_PACKAGE,
            {"model": "package", "package_size": 1000000, "package_price": "1.25"},
            D(tokens),
            total,
        )
        for tokens, total in [(10, "1.25"), (1000000, "1.25"), (1500000, "2.50")]
    ],
    # --- Amberflo -----------------------------------------------------------------------------------
    Example("amberflo-per-unit", AMBERFLO, {"model": "flat", "unit_price": "50"}, D(100), "5000.00"),
    Example(
        "amberflo-block-5-per-1000-first-5000-free",
        AMBERFLO,
        {"model": "package", "package_size": 1000, "package_price": "5", "free_units": 5000},
        D(12345),
        "40.00",
        note="per block: (12345 - 5000) / 1000 rounded up = 8 blocks x $5",
    ),
    Example(
        "amberflo-per-unit-dimensions-usa-emea",
        AMBERFLO,
        {
            "model": "flat",
            "unit_price": "50",
            "dimension": "region",
            "dimension_prices": {"USA": {"unit_price": "30"}, "EMEA": {"unit_price": "40"}},
        },
        {"USA": D(10), "EMEA": D(40)},
        "1900.00",
    ),
    Example(
        "amberflo-per-unit-dimensions-three-regions",
        AMBERFLO,
        {
            "model": "flat",
            "unit_price": "50",
            "dimension": "region",
            "dimension_prices": {"USA": {"unit_price": "30"}, "EMEA": {"unit_price": "40"}},
        },
        {"USA": D(10), "EMEA": D(40), "APAC": D(50)},
        "4400.00",
        note="APAC is not listed and uses the charge's own $50",
    ),
    # --- Other public docs ---------------------------------------------------------------------------
    Example("zuplo-per-unit", ZUPLO, {"model": "flat", "unit_price": "0.001"}, D(100000), "100.00"),
    Example(
        "zuplo-graduated-15000",
        ZUPLO,
        {"model": "graduated", "tiers": tiers((1000, "0.10", "0"), (10000, "0.05", "0"), (None, "0.01", "0"))},
        D(15000),
        "600.00",
    ),
    Example(
        "zuplo-volume-15000",
        ZUPLO,
        {"model": "volume", "tiers": tiers((1000, "0.10", "0"), (10000, "0.05", "0"), (None, "0.01", "0"))},
        D(15000),
        "150.00",
    ),
    Example(
        "flexprice-volume-65000",
        FLEXPRICE,
        {"model": "volume", "tiers": tiers((10000, "0.0010", "0"), (50000, "0.0008", "0"), (None, "0.0006", "0"))},
        D(65000),
        "39.00",
    ),
    Example(
        "autumn-graduated-15000",
        AUTUMN,
        {"model": "graduated", "tiers": tiers((1000, "0.01", "0"), (10000, "0.008", "0"), (None, "0.005", "0"))},
        D(15000),
        "107.00",
    ),
    Example(
        "nadles-volume-flat-fee-50",
        NADLES,
        {"model": "volume", "tiers": tiers((100, "0.5", "5"), (200, "0.3", "0"), (None, "0.2", "0"))},
        D(50),
        "30.00",
        note="the last tier is illustrative",
    ),
    Example(
        "nadles-volume-140",
        NADLES,
        {"model": "volume", "tiers": tiers((100, "0.5", "5"), (200, "0.3", "0"), (None, "0.2", "0"))},
        D(140),
        "42.00",
    ),
    Example(
        "nadles-package-83", NADLES, {"model": "package", "package_size": 10, "package_price": "5"}, D(83), "45.00"
    ),
    Example(
        "oracle-slab-per-unit-1000",
        ORACLE,
        {"model": "graduated", "tiers": tiers((250, "1", "0"), (500, "2", "0"), (None, "3", "0"))},
        D(1000),
        "2250.00",
    ),
    Example(
        "oracle-variable-per-unit-1000",
        ORACLE,
        {"model": "volume", "tiers": tiers((250, "1", "0"), (500, "2", "0"), (None, "3", "0"))},
        D(1000),
        "3000.00",
    ),
    Example(
        "oracle-slab-flat-amounts-1000",
        ORACLE,
        {"model": "graduated", "tiers": tiers((250, "0", "10"), (500, "0", "20"), (None, "0", "30"))},
        D(1000),
        "60.00",
        note="graduated flat fees: each tier reached adds its fee once",
    ),
    Example(
        "oracle-variable-flat-amount-1000",
        ORACLE,
        {"model": "stairstep", "tiers": tiers((250, "0", "10"), (500, "0", "20"), (None, "0", "30"))},
        D(1000),
        "30.00",
    ),
    Example(
        "zuora-overage-500-free-minutes",
        ZUORA,
        {"model": "flat", "unit_price": "0.50", "free_units": 500},
        D(620),
        "60.00",
        note="derived: 120 minutes over the 500 included at $0.50",
    ),
    # --- Minor units: JPY 0 decimals, KWD 3 decimals -----------------------------------------------
    Example("jpy-rounds-down", ISO_4217, {"model": "flat", "unit_price": "0.35"}, D(1001), "350", "JPY"),
    Example("jpy-rounds-half-up", ISO_4217, {"model": "flat", "unit_price": "0.5"}, D(3), "2", "JPY"),
    Example("jpy-graduated", ISO_4217, {"model": "graduated", "tiers": APIGEE_BANDS}, D(150), "275", "JPY"),
    Example("kwd-three-decimals", ISO_4217, {"model": "flat", "unit_price": "0.0125"}, D(11), "0.138", "KWD"),
    Example(
        "kwd-percentage",
        ISO_4217,
        {"model": "percentage", "rate": "1.25"},
        D("10.0004"),
        "0.125",
        "KWD",
        note="1.25% of 10.0004 = 0.12500500 -> 0.125",
    ),
]


@pytest.mark.parametrize("example", EXAMPLES, ids=[e.id for e in EXAMPLES])
def test_public_documentation_example(example: Example) -> None:
    charge = charge_from_dict({"code": example.id, **example.charge})
    priced = price_charge(charge, example.quantity, example.currency, values=example.values)  # type: ignore[arg-type]
    assert str(priced.amount) == example.expected, f"{example.source} {example.note}"
    assert priced.currency == example.currency


def test_there_are_at_least_forty_examples() -> None:
    assert len(EXAMPLES) >= 40


def test_amberflo_block_line_explains_itself() -> None:
    # Source: Amberflo 'Pricing and Rating' (per block with included units).
    charge = charge_from_dict(
        {"code": "calls", "model": "package", "package_size": 1000, "package_price": "5.00", "free_units": 5000}
    )
    (line,) = price_charge(charge, D(12345), "USD").lines
    assert line.to_dict()["amount"] == "40.00"
    assert line.quantity == D(12345)
    assert line.details["free_units"] == D(5000)
    assert line.details["billable_quantity"] == D(7345)
    assert line.details["packages"] == D(8)


def test_amberflo_dimension_lines_are_one_per_value() -> None:
    # Source: Amberflo 'Pricing and Rating', per unit with dimensions.
    charge = charge_from_dict(
        {
            "code": "support",
            "model": "flat",
            "unit_price": "50",
            "dimension": "region",
            "dimension_prices": {"USA": {"unit_price": "30"}, "EMEA": {"unit_price": "40"}},
        }
    )
    priced = price_charge(charge, {"USA": D(10), "EMEA": D(40)}, "USD")
    by_region = {line.details["dimension"]["region"]: line.amount for line in priced.lines}  # type: ignore[index]
    assert by_region == {"USA": D("300.00"), "EMEA": D("1600.00")}


def test_stripe_volume_total_can_decrease() -> None:
    # Source: Stripe tiered pricing: "the total might decrease" (a documented exception to monotonicity).
    charge = charge_from_dict(
        {"code": "fonts", "model": "volume", "tiers": tiers((5, "7", "0"), (10, "6.5", "0"), (None, "6", "0"))}
    )
    ten = price_charge(charge, D(10), "USD").amount
    eleven = price_charge(charge, D(11), "USD").amount
    assert ten == D("65.00") and eleven == D("66.00")
    zuplo = charge_from_dict(
        {"code": "z", "model": "volume", "tiers": tiers((1000, "0.10", "0"), (10000, "0.05", "0"), (None, "0.01", "0"))}
    )
    assert price_charge(zuplo, D(1000), "USD").amount == D("100.00")
    assert price_charge(zuplo, D(1001), "USD").amount == D("50.05")  # one more unit, half the price


def test_apigee_forum_stairstep_vs_graduated_tier_breakdown() -> None:
    # Source: APIGEE_FORUM: 500 x 8 + 500 x 6 + 200 x 4 = 7800 SAR graduated.
    charge = charge_from_dict({"code": "calls", "model": "graduated", "tiers": FORUM_TIERS})
    (line,) = price_charge(charge, D(1200), "SAR").lines
    assert [(t.units, t.amount) for t in line.tiers] == [(D(500), D(4000)), (D(500), D(3000)), (D(200), D(800))]


# --- Revenue share (Apigee) -------------------------------------------------------------------------


def test_apigee_fixed_revenue_share() -> None:
    # Source: APIGEE_REVSHARE: fixed share of 80.5555% of each transaction's price.
    share = RevenueShare(meter="order_value", model="fixed", percent=D("80.5555"))
    line = price_revenue_share(share, D(1000), "USD")
    assert line.kind == "revenue_share"
    assert line.amount_exact == D("-805.555")
    assert line.amount == D("-805.56")  # a credit, rounded half away from zero


def test_apigee_flexible_revenue_share_bands_apply_to_the_part_inside_them() -> None:
    # Source: APIGEE_REVSHARE: bands >0-1000 at 80.5555% and above 1000 at 90.5% (USD).
    share = RevenueShare(
        meter="order_value",
        model="flexible",
        bands=(RevenueBand(D(1000), D("80.5555")), RevenueBand(None, D("90.5"))),
    )
    assert price_revenue_share(share, D(800), "USD").amount == D("-644.44")  # 800 x 80.5555%
    line = price_revenue_share(share, D(1500), "USD")
    assert line.amount_exact == D("-1258.055")  # 1000 x 80.5555% + 500 x 90.5%
    assert line.amount == D("-1258.06")
    bands = line.to_dict()["details"]["bands"]  # type: ignore[index]
    assert [b["revenue"] for b in bands] == ["1000", "500"]


# --- Fees (3scale, Apigee) ----------------------------------------------------------------------------


def test_3scale_setup_fee_on_first_invoice_only() -> None:
    # Source: RED_HAT_3SCALE: $10 per month plus a $5 setup fee: first charge $15, later ones $10.
    plan = PlanPricing(fees=Fees(setup=D(5), recurring=RecurringFee(D(10))), currency=None)
    first = preview(plan, {}, None, D(1), "USD", include_setup=True)
    later = preview(plan, {}, None, D(1), "USD", include_setup=False)
    assert first.total == D("15.00")
    assert later.total == D("10.00")


def test_3scale_recurring_fee_prorated_mid_month() -> None:
    # Source: RED_HAT_3SCALE: the monthly cost is prorated when the subscription starts mid-month (derived:
    # $10 for 15 of 30 days = $5.00).
    plan = PlanPricing(fees=Fees(recurring=RecurringFee(D(10), in_advance=True, prorate=True)))
    assert preview(plan, {}, None, Proration(15, 30), "USD").total == D("5.00")


def test_apigee_bundle_prepaid_and_further_bundles() -> None:
    # Source: APIGEE_RATECARD: a set amount is charged up front for each bundle whether or not it is used.
    # Figures are illustrative: bundles of 1000 calls at $50, two included.
    charge = charge_from_dict(
        {"code": "calls", "model": "bundle", "bundle_size": 1000, "bundle_price": "50", "included_bundles": 2}
    )
    unused = price_charge(charge, D(0), "USD")
    assert unused.amount == D("100.00")
    assert [(line.timing, line.amount) for line in unused.lines] == [
        ("in_advance", D("100.00")),
        ("in_arrears", D("0.00")),
    ]
    over = price_charge(charge, D(2500), "USD")
    assert [line.amount for line in over.lines] == [D("100.00"), D("50.00")]
    assert over.lines[1].details["bundles"] == D(1)


# --- Where the sources disagree: free units before tiers ----------------------------------------------


def test_free_units_come_off_before_the_tiers() -> None:
    # Amberflo subtracts included units from total usage before rating; Lago's graduated docs show a free
    # first tier instead (which keeps absolute tier positions).  Tollway's contract takes free units off the
    # period quantity first, so the tiers then apply to the billable quantity.
    charge = charge_from_dict(
        {"code": "c", "model": "graduated", "free_units": 100, "tiers": tiers((100, "1", "0"), (None, "0.5", "0"))}
    )
    assert price_charge(charge, D(150), "USD").amount == D("50.00")  # 50 billable units, all in tier 1
    assert price_charge(charge, D(400), "USD").amount == D("200.00")  # 300 billable: 100 x 1 + 200 x 0.5
    # The other reading (free units use up the first tier's units) is written as a zero-price first tier:
    free_tier = charge_from_dict(
        {"code": "c", "model": "graduated", "tiers": tiers((100, "0", "0"), (None, "0.5", "0"))}
    )
    assert price_charge(free_tier, D(150), "USD").amount == D("25.00")  # 100 free, 50 x 0.5
    assert price_charge(free_tier, D(400), "USD").amount == D("150.00")  # 100 free, 300 x 0.5
