"""Pricing behaviour: line shapes, inputs, fees and proration, revenue share, plan preview."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from tollway.pricing import (
    Charge,
    Fees,
    PlanPricing,
    PricedLine,
    PricingInputError,
    PricingValidationError,
    Proration,
    RecurringFee,
    RevenueShare,
    Tier,
    Usage,
    charge_from_dict,
    early_termination_fee_line,
    plan_pricing_from_dict,
    preview,
    price_charge,
    prorate,
    proration_fraction,
    recurring_fee_line,
    setup_fee_line,
)

D = Decimal

CONTRACT_LINE_KEYS = {"kind", "charge", "meter", "description", "quantity", "amount", "details"}


def plan_json(**overrides: object) -> dict[str, object]:
    plan: dict[str, object] = {
        "code": "pro",
        "currency": "USD",
        "fees": {
            "setup": "99.00",
            "early_termination": "200.00",
            "recurring": {"amount": "49.00", "in_advance": True, "prorate": True},
        },
        "charges": [
            {
                "code": "calls",
                "meter": "api_calls",
                "product": "weather",
                "model": "package",
                "package_size": 1000,
                "package_price": "5.00",
                "free_units": 5000,
            },
            {"code": "fees", "meter": "payments", "model": "percentage", "rate": "2.9", "fixed_fee_per_event": "0.30"},
        ],
        "revenue_share": {"meter": "order_value", "model": "fixed", "percent": "15"},
    }
    plan.update(overrides)
    return plan


# --- lines -------------------------------------------------------------------------------------------


def test_line_maps_onto_the_contract_invoice_line() -> None:
    charge = charge_from_dict(
        {
            "code": "calls",
            "meter": "api_calls",
            "model": "graduated",
            "tiers": [{"up_to": 1000, "unit_price": "0"}, {"up_to": None, "unit_price": "0.01", "flat_fee": "1"}],
        }
    )
    (line,) = price_charge(charge, D(1500), "USD").lines
    body = line.to_dict()
    assert set(body) == CONTRACT_LINE_KEYS
    assert body["kind"] == "usage" and body["charge"] == "calls" and body["meter"] == "api_calls"
    assert body["quantity"] == "1500" and body["amount"] == "6.00"
    details = body["details"]
    assert isinstance(details, dict)
    assert details["timing"] == "in_arrears"
    assert details["tiers"] == [
        {"tier": 1, "from": "0", "up_to": "1000", "units": "1000", "unit_price": "0", "flat_fee": "0", "amount": "0"},
        {
            "tier": 2,
            "from": "1000",
            "up_to": None,
            "units": "500",
            "unit_price": "0.01",
            "flat_fee": "1",
            "amount": "6",
        },
    ]
    json.dumps(body)  # plain JSON: no Decimal left


def test_exact_and_rounded_amounts_are_both_kept() -> None:
    charge = Charge("c", "flat", unit_price=D("0.0015"))
    (line,) = price_charge(charge, D(1003), "USD").lines
    assert line.amount_exact == D("1.5045")
    assert line.amount == D("1.50")
    assert line.to_dict()["details"]["amount_exact"] == "1.5045"  # type: ignore[index]


def test_priced_charge_totals_are_sums_of_rounded_lines() -> None:
    charge = Charge(
        "c",
        "flat",
        unit_price=D("0.005"),
        dimension="region",
        dimension_prices={"EU": Charge("c", "flat", unit_price=D("0.005"))},
    )
    priced = price_charge(charge, {"EU": D(1), "US": D(1), "APAC": D(1)}, "USD")
    assert [line.amount for line in priced.lines] == [D("0.01")] * 3  # each 0.005 rounds half up
    assert priced.amount == D("0.03")
    assert priced.amount_exact == D("0.015")


def test_zero_usage() -> None:
    for charge in [
        Charge("c", "flat", unit_price=D(1)),
        Charge("c", "package", package_size=D(10), package_price=D(5)),
        Charge("c", "graduated", tiers=(Tier(D(10), D(1), D(5)), Tier(None, D(1)))),
        Charge("c", "volume", tiers=(Tier(None, D(1), D(5)),)),
        Charge("c", "stairstep", tiers=(Tier(D(10), D(0), D(5)),)),
        Charge("c", "percentage", rate=D(2)),
    ]:
        priced = price_charge(charge, D(0), "USD")
        assert priced.amount == 0, charge.model
        assert priced.lines[0].tiers == ()


def test_stairstep_above_a_closed_last_tier_is_charged_the_top_step() -> None:
    # Apigee STAIRSTEP: ranges 1-100 at $75 and 101-200 at $100; calls cannot exceed 200.
    charge = Charge("c", "stairstep", tiers=(Tier(D(100), flat_fee=D(75)), Tier(D(200), flat_fee=D(100))))
    (line,) = price_charge(charge, D(250), "USD").lines
    assert line.amount == D("100.00")
    assert line.details["above_last_tier"] is True


def test_tier_boundaries_are_inclusive() -> None:
    charge = Charge("c", "volume", tiers=(Tier(D(5), D(7)), Tier(None, D("6.5"))))
    assert price_charge(charge, D(5), "USD").lines[0].tiers[0].tier == 1
    assert price_charge(charge, D("5.001"), "USD").lines[0].tiers[0].tier == 2


def test_percentage_details() -> None:
    charge = Charge(
        "fees",
        "percentage",
        rate=D(1),
        fixed_fee_per_event=D("0.10"),
        min_per_event=D("0.50"),
        max_per_event=D(5),
        free_units=D(150),
    )
    (line,) = price_charge(charge, None, "USD", values=[D(100), D(100), D(20), D(1000)]).lines
    # 100: free (150 -> 50 left); 100: 50 billable -> 0.50 + 0.10 = 0.60; 20 -> 0.30 raised to 0.50;
    # 1000 -> 10.10 lowered to 5.
    assert line.amount_exact == D("6.10")
    assert line.quantity == D(1220)
    assert line.details["free_units"] == D(150)
    assert line.details["billable_quantity"] == D(1070)
    assert (line.details["events"], line.details["charged_events"], line.details["free_events"]) == (4, 3, 1)
    assert (line.details["raised_to_minimum"], line.details["lowered_to_maximum"]) == (1, 1)


def test_percentage_with_per_event_terms_needs_the_values() -> None:
    charge = Charge("fees", "percentage", rate=D(1), fixed_fee_per_event=D("0.10"))
    with pytest.raises(PricingInputError, match="per-event values are required"):
        price_charge(charge, D(500), "USD")
    assert price_charge(charge, D(500), "USD", values=[D(500)]).amount == D("5.10")  # consistent sum is fine
    with pytest.raises(PricingInputError, match="not the sum"):
        price_charge(charge, D(400), "USD", values=[D(500)])


def test_bundle_with_free_units_and_no_included_bundles() -> None:
    charge = Charge("c", "bundle", bundle_size=D(100), bundle_price=D(9), free_units=D(50))
    priced = price_charge(charge, D(251), "USD")
    (line,) = priced.lines  # nothing prepaid: only the in-arrears bundles
    assert line.kind == "bundle" and line.timing == "in_arrears"
    assert line.details["bundles"] == D(3)  # 201 billable units -> 3 bundles
    assert priced.amount == D("27.00")


@pytest.mark.parametrize(
    ("quantity", "message"),
    [(D(-1), "must not be negative"), (1.5, "not a float"), ("12", "must be a Decimal"), (D("NaN"), "finite")],
)
def test_bad_quantities(quantity: object, message: str) -> None:
    with pytest.raises(PricingInputError, match=message) as info:
        price_charge(Charge("calls", "flat", unit_price=D(1)), quantity, "USD")  # type: ignore[arg-type]
    assert info.value.errors[0][0] == "calls"


def test_mapping_quantity_needs_a_dimension_charge() -> None:
    with pytest.raises(PricingInputError, match="no dimension"):
        price_charge(Charge("calls", "flat", unit_price=D(1)), {"USA": D(1)}, "USD")
    dim = Charge("calls", "flat", unit_price=D(1), dimension="region")
    with pytest.raises(PricingInputError, match="per 'region' value"):
        price_charge(dim, D(3), "USD", values={"USA": [D(1)]})
    with pytest.raises(PricingInputError) as info:
        price_charge(dim, {"USA": D(-1)}, "USD")
    assert info.value.errors == (("calls.USA", "must not be negative"),)


def test_dimension_charge_priced_without_a_breakdown_uses_its_own_params() -> None:
    dim = Charge("calls", "flat", unit_price=D(2), dimension="region")
    assert price_charge(dim, D(3), "USD").amount == D("6.00")
    assert price_charge(dim, {}, "USD").amount == D(0)


def test_dimension_line_details() -> None:
    charge = charge_from_dict(
        {
            "code": "h",
            "name": "Support hours",
            "model": "flat",
            "unit_price": "50",
            "dimension": "region",
            "dimension_prices": {"USA": {"unit_price": "30"}},
        }
    )
    lines = price_charge(charge, {"USA": D(1), "APAC": D(1)}, "USD").lines
    apac, usa = lines  # sorted by dimension value
    assert usa.description.startswith("Support hours [region=USA]")
    assert usa.details["dimension"] == {"region": "USA"} and usa.details["dimension_priced"] is True
    assert apac.details["dimension_priced"] is False


def test_invalid_charge_objects_are_refused_before_pricing() -> None:
    with pytest.raises(PricingValidationError, match="unit_price"):
        price_charge(Charge("c", "flat"), D(1), "USD")


def test_unknown_currency() -> None:
    with pytest.raises(ValueError, match="ISO 4217"):
        price_charge(Charge("c", "flat", unit_price=D(1)), D(1), "EURO")


def test_usage_of() -> None:
    assert Usage.of(D(3)) == Usage(D(3))
    assert Usage.of(values=[D(1), 2]) == Usage(D(3), (D(1), D(2)))
    with pytest.raises(PricingInputError):
        Usage.of(values="12")  # type: ignore[arg-type]


# --- fees and proration ---------------------------------------------------------------------------------


def test_proration_fraction() -> None:
    assert proration_fraction(15, 30) == D("0.5")
    assert proration_fraction(0, 31) == 0
    assert proration_fraction(31, 31) == 1
    assert proration_fraction(10, 31).as_tuple().digits[:6] == (3, 2, 2, 5, 8, 0)
    with pytest.raises(PricingInputError):
        proration_fraction(32, 31)
    with pytest.raises(PricingInputError):
        proration_fraction(1, 0)
    with pytest.raises(TypeError):
        proration_fraction(D(1), 30)  # type: ignore[arg-type]


def test_proration_multiplies_before_dividing() -> None:
    # $0.06 for 1 of 12 days is exactly half a cent and must round up to $0.01.  A Proration computes
    # 0.06 x 1 / 12 = 0.005 exactly instead of multiplying by a truncated 1/12 = 0.0833...3.
    fee = RecurringFee(D("0.06"))
    assert recurring_fee_line(fee, "USD", Proration(1, 12)).amount == D("0.01")
    assert prorate(D("0.06"), Proration(1, 12)) == D("0.005")
    assert prorate(D(10), D("0.25")) == D("2.5")


def test_recurring_fee_line() -> None:
    fee = RecurringFee(D("49.00"), in_advance=False, prorate=True)
    line = recurring_fee_line(fee, "USD", Proration(10, 31))
    assert line.kind == "recurring_fee" and line.timing == "in_arrears"
    assert line.amount == D("15.81")  # 49 x 10 / 31 = 15.806...
    assert line.details["prorated"] is True and line.details["days_used"] == 10
    assert "10 of 31 days" in line.description
    full = recurring_fee_line(RecurringFee(D("49.00")), "USD")
    assert full.amount == D("49.00") and full.timing == "in_advance" and full.details["prorated"] is False
    not_prorated = recurring_fee_line(RecurringFee(D("49.00"), prorate=False), "USD", D("0.5"))
    assert not_prorated.amount == D("49.00")
    with pytest.raises(PricingInputError):
        recurring_fee_line(fee, "USD", D("1.5"))


def test_setup_and_early_termination_lines() -> None:
    setup = setup_fee_line(D("99"), "JPY")
    assert (setup.kind, setup.amount, setup.timing, setup.to_dict()["amount"]) == (
        "setup_fee",
        D(99),
        "in_advance",
        "99",
    )
    early = early_termination_fee_line(D("200.0005"), "KWD")
    assert early.kind == "early_termination_fee" and early.to_dict()["amount"] == "200.001"


# --- preview --------------------------------------------------------------------------------------------


def test_preview_matches_the_contract_example() -> None:
    plan = plan_pricing_from_dict(
        {"code": "calls-only", "currency": "USD", "charges": [plan_json()["charges"][0]]}  # type: ignore[index]
    )
    result = preview(plan, {"calls": "12345"}, None, D(1))
    body = result.to_dict()
    assert body["currency"] == "USD" and body["subtotal"] == "40.00" and body["total"] == "40.00"
    lines = body["lines"]
    assert isinstance(lines, list) and len(lines) == 1
    assert set(lines[0]) == CONTRACT_LINE_KEYS


def test_preview_of_a_whole_plan() -> None:
    plan = plan_pricing_from_dict(plan_json())
    result = preview(
        plan,
        quantities={"calls": D(12345), "order_value": D(1000)},
        values={"fees": ["0.50", "120.00"]},
        period_fraction=Proration(15, 30),
        include_setup=True,
        include_early_termination=True,
    )
    kinds = [(line.kind, line.charge or line.meter, line.amount) for line in result.lines]
    assert kinds == [
        ("setup_fee", None, D("99.00")),
        ("recurring_fee", None, D("24.50")),
        ("usage", "calls", D("40.00")),
        ("usage", "fees", D("4.09")),  # 2.9% of 120.50 = 3.4945 + 2 x 0.30
        ("revenue_share", "order_value", D("-150.00")),
        ("early_termination_fee", None, D("200.00")),
    ]
    assert result.subtotal == D("217.59") == result.total


def test_preview_defaults_leave_out_setup_and_early_termination() -> None:
    result = preview(plan_pricing_from_dict(plan_json()), {"calls": D(0)}, {"fees": []})
    assert [line.kind for line in result.lines] == ["recurring_fee", "usage", "usage", "revenue_share"]
    assert result.subtotal == D("49.00")
    assert preview(plan_pricing_from_dict(plan_json()), {}, {"fees": []}, include_recurring=False).subtotal == 0


def test_preview_in_another_currency_and_without_plan_currency() -> None:
    plan = PlanPricing(charges=(Charge("c", "flat", unit_price=D("0.4")),))
    assert preview(plan, {"c": D(3)}, currency="JPY").to_dict()["subtotal"] == "1"
    with pytest.raises(PricingInputError, match="currency"):
        preview(plan, {"c": D(3)})


def test_preview_names_bad_input_fields() -> None:
    plan = plan_pricing_from_dict(plan_json())
    with pytest.raises(PricingInputError) as info:
        preview(plan, {"calls": "12,345", "nope": "1"}, {"calls": ["1"], "fees": "x"})
    fields = {f for f, _ in info.value.errors}
    assert fields == {"quantities.calls", "quantities.nope", "values.fees"}
    with pytest.raises(PricingInputError) as info:
        preview(plan, {"order_value": "-5"}, {"fees": []})
    assert info.value.errors == (("quantities.order_value", "must not be negative"),)
    with pytest.raises(PricingInputError) as info:
        preview(plan, {"calls": "-5"}, {"fees": []})
    assert info.value.errors == (("quantities.calls", "must not be negative"),)
    with pytest.raises(PricingInputError, match="per-event values are required"):
        preview(plan, {"calls": "5"})


def test_preview_refuses_invalid_plan_objects() -> None:
    plan = PlanPricing(
        charges=(Charge("c", "flat"),),
        fees=Fees(setup=D(-1)),
        revenue_share=RevenueShare("v", "fixed"),
    )
    with pytest.raises(PricingValidationError) as info:
        preview(plan, {}, None, D(1), "USD")
    assert {f for f, _ in info.value.errors} == {"charges[0].unit_price", "fees.setup", "revenue_share.percent"}


def test_preview_lines_are_plain_priced_lines() -> None:
    result = preview(plan_pricing_from_dict(plan_json()), {"calls": D(1)}, {"fees": [D(1)]})
    assert all(isinstance(line, PricedLine) for line in result.lines)
    json.dumps(result.to_dict())
