"""Building charges, fees and revenue shares from the contract JSON, and rejecting bad ones."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tollway.pricing import (
    MODEL_NAMES,
    REGISTRY,
    Charge,
    PricingValidationError,
    RevenueShare,
    Tier,
    charge_from_dict,
    fees_from_dict,
    get_model,
    plan_pricing_from_dict,
    revenue_share_from_dict,
    validate_charge,
)

D = Decimal

CONTRACT_PLAN = {
    "code": "pro",
    "name": "Pro",
    "currency": "USD",
    "bundle": "weather-suite",
    "interval": "month",
    "interval_count": 1,
    "billing_anchor": "calendar",
    "visibility": "public",
    "audience": {"type": "all"},
    "payment_terms_days": 30,
    "contract_months": 12,
    "free_period_days": 0,
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
        }
    ],
    "revenue_share": None,
    "notifications": None,
    "limits": [],
}


def errors_of(data: dict[str, object], prefix: str = "charges[0]") -> list[tuple[str, str]]:
    with pytest.raises(PricingValidationError) as info:
        charge_from_dict(data, prefix)
    assert isinstance(info.value, ValueError)
    return list(info.value.errors)


def fields_of(data: dict[str, object], prefix: str = "charges[0]") -> set[str]:
    return {f for f, _ in errors_of(data, prefix)}


def test_registry_has_exactly_the_contract_models() -> None:
    assert (
        set(REGISTRY)
        == set(MODEL_NAMES)
        == {
            "flat",
            "package",
            "graduated",
            "volume",
            "stairstep",
            "percentage",
            "bundle",
        }
    )
    assert get_model("flat") is REGISTRY["flat"]
    with pytest.raises(PricingValidationError, match="unknown model"):
        get_model("tiered")


def test_contract_plan_example_parses() -> None:
    plan = plan_pricing_from_dict(CONTRACT_PLAN)
    assert plan.currency is not None and plan.currency.code == "USD"
    assert plan.fees.setup == D("99.00") and plan.fees.early_termination == D("200.00")
    assert plan.fees.recurring is not None and plan.fees.recurring.amount == D("49.00")
    (calls,) = plan.charges
    assert calls == Charge(
        code="calls",
        model="package",
        meter="api_calls",
        product="weather",
        package_size=D(1000),
        package_price=D("5.00"),
        free_units=D(5000),
    )
    assert plan.charge("calls") is calls
    with pytest.raises(KeyError):
        plan.charge("nope")


def test_tiers_parse_with_null_up_to() -> None:
    charge = charge_from_dict(
        {
            "code": "g",
            "model": "graduated",
            "tiers": [{"up_to": 1000, "unit_price": "0", "flat_fee": "0"}, {"up_to": None, "unit_price": "0.01"}],
        }
    )
    assert charge.tiers == (Tier(D(1000), D(0), D(0)), Tier(None, D("0.01"), D(0)))


def test_unknown_model() -> None:
    assert errors_of({"code": "c", "model": "tiered"}) == [
        (
            "charges[0].model",
            "unknown model 'tiered'; expected one of flat, package, graduated, volume, stairstep, percentage, bundle",
        )
    ]


def test_missing_model_and_code() -> None:
    assert fields_of({}) == {"charges[0].code", "charges[0].model"}


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"model": "flat"}, "charges[0].unit_price"),
        ({"model": "package", "package_price": "5"}, "charges[0].package_size"),
        ({"model": "package", "package_size": 10}, "charges[0].package_price"),
        ({"model": "graduated"}, "charges[0].tiers"),
        ({"model": "volume", "tiers": []}, "charges[0].tiers"),
        ({"model": "stairstep"}, "charges[0].tiers"),
        ({"model": "percentage"}, "charges[0].rate"),
        ({"model": "bundle", "bundle_price": "5"}, "charges[0].bundle_size"),
        ({"model": "bundle", "bundle_size": 10}, "charges[0].bundle_price"),
    ],
)
def test_missing_params_for_the_model(data: dict[str, object], field: str) -> None:
    assert field in fields_of({"code": "c", **data})


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"model": "flat", "unit_price": "-1"}, "charges[0].unit_price"),
        ({"model": "package", "package_size": 0, "package_price": "5"}, "charges[0].package_size"),
        ({"model": "package", "package_size": -5, "package_price": "5"}, "charges[0].package_size"),
        ({"model": "package", "package_size": 10, "package_price": "-5"}, "charges[0].package_price"),
        ({"model": "bundle", "bundle_size": 0, "bundle_price": "5"}, "charges[0].bundle_size"),
        (
            {"model": "bundle", "bundle_size": 10, "bundle_price": "5", "included_bundles": -1},
            "charges[0].included_bundles",
        ),
        (
            {"model": "bundle", "bundle_size": 10, "bundle_price": "5", "included_bundles": "1.5"},
            "charges[0].included_bundles",
        ),
        ({"model": "percentage", "rate": "-0.1"}, "charges[0].rate"),
        ({"model": "percentage", "rate": "100.01"}, "charges[0].rate"),
        ({"model": "percentage", "rate": "1", "fixed_fee_per_event": "-0.1"}, "charges[0].fixed_fee_per_event"),
        ({"model": "percentage", "rate": "1", "min_per_event": "2", "max_per_event": "1"}, "charges[0].max_per_event"),
        ({"model": "flat", "unit_price": "1", "free_units": "-1"}, "charges[0].free_units"),
    ],
)
def test_bad_values(data: dict[str, object], field: str) -> None:
    assert field in fields_of({"code": "c", **data})


def test_percentage_rate_bounds_are_inclusive() -> None:
    assert charge_from_dict({"code": "c", "model": "percentage", "rate": "0"}).rate == 0
    assert charge_from_dict({"code": "c", "model": "percentage", "rate": "100"}).rate == 100


def test_tier_errors_are_named_by_index() -> None:
    errors = errors_of(
        {
            "code": "c",
            "model": "graduated",
            "tiers": [
                {"up_to": 100, "unit_price": "1"},
                {"up_to": 50, "unit_price": "-1"},
                {"up_to": None, "unit_price": "0.5"},
                {"up_to": 500, "unit_price": "0.1", "flat_fee": "-3"},
            ],
        }
    )
    fields = {f for f, _ in errors}
    assert "charges[0].tiers[1].up_to" in fields  # not ascending
    assert "charges[0].tiers[1].unit_price" in fields  # negative
    assert "charges[0].tiers[2].up_to" in fields  # null before the last tier
    assert "charges[0].tiers[3].flat_fee" in fields
    assert (
        "charges[0].tiers[3].up_to",
        "the last tier of a 'graduated' charge must be open-ended (up_to null)",
    ) in errors


@pytest.mark.parametrize("model", ["graduated", "volume"])
def test_last_tier_must_be_open_for_graduated_and_volume(model: str) -> None:
    errors = errors_of({"code": "c", "model": model, "tiers": [{"up_to": 10, "unit_price": "1"}]})
    assert errors == [
        ("charges[0].tiers[0].up_to", f"the last tier of a '{model}' charge must be open-ended (up_to null)")
    ]


def test_stairstep_may_end_with_a_closed_tier_but_carries_only_flat_fees() -> None:
    charge = charge_from_dict(
        {
            "code": "c",
            "model": "stairstep",
            "tiers": [{"up_to": 100, "flat_fee": "75"}, {"up_to": 200, "flat_fee": "100"}],
        }
    )
    assert charge.tiers[-1].up_to == D(200)
    assert fields_of({"code": "c", "model": "stairstep", "tiers": [{"up_to": None, "unit_price": "1"}]}) == {
        "charges[0].tiers[0].unit_price"
    }


def test_first_tier_must_be_above_zero() -> None:
    assert fields_of({"code": "c", "model": "graduated", "tiers": [{"up_to": 0}, {"up_to": None}]}) == {
        "charges[0].tiers[0].up_to"
    }


def test_tier_up_to_key_is_required() -> None:
    assert "charges[0].tiers[0].up_to" in fields_of({"code": "c", "model": "volume", "tiers": [{"unit_price": "1"}]})


def test_params_of_another_model_are_rejected() -> None:
    errors = errors_of({"code": "c", "model": "flat", "unit_price": "1", "package_size": 10})
    assert errors == [("charges[0].package_size", "is not used by the 'flat' model")]


def test_unknown_fields_are_rejected_unless_asked_not_to() -> None:
    assert errors_of({"code": "c", "model": "flat", "unit_price": "1", "unit_prce": "2"}) == [
        ("charges[0].unit_prce", "unknown field")
    ]
    charge = charge_from_dict(
        {"code": "c", "model": "flat", "unit_price": "1", "invoice_name": "x"}, ignore_unknown=True
    )
    assert charge.unit_price == D(1)


def test_nulls_are_absent() -> None:
    charge = charge_from_dict(
        {"code": "c", "model": "flat", "unit_price": "1", "package_size": None, "tiers": None, "dimension": None}
    )
    assert charge.package_size is None and charge.tiers == () and charge.dimension is None


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (0.5, "not a JSON float"),
        (True, "not a boolean"),
        ("abc", "decimal string"),
        ("1e3", "decimal string"),
        ("0.0000000000001", "at most 12 decimal places"),
        ("1" + "0" * 18, "less than 10^18"),
        ([1], "decimal string"),
    ],
)
def test_decimal_fields_must_be_decimal_strings(value: object, message: str) -> None:
    ((field, text),) = errors_of({"code": "c", "model": "flat", "unit_price": value})
    assert field == "charges[0].unit_price"
    assert message in text


def test_ints_and_decimals_are_accepted_as_numbers() -> None:
    assert charge_from_dict({"code": "c", "model": "flat", "unit_price": 3}).unit_price == D(3)
    assert charge_from_dict({"code": "c", "model": "flat", "unit_price": D("0.0015")}).unit_price == D("0.0015")


def test_no_prefix_gives_bare_field_names() -> None:
    with pytest.raises(PricingValidationError) as info:
        charge_from_dict({"code": "c", "model": "flat"})
    assert info.value.errors == (("unit_price", "is required for the 'flat' model"),)
    assert "unit_price: is required" in str(info.value)


def test_not_a_mapping() -> None:
    with pytest.raises(PricingValidationError) as info:
        charge_from_dict(["flat"], "charges[3]")  # type: ignore[arg-type]
    assert info.value.errors == (("charges[3]", "must be an object"),)


def test_all_problems_are_reported_at_once() -> None:
    fields = fields_of({"code": "c", "model": "package", "package_size": 0, "package_price": "-1", "rate": "5"})
    assert fields == {"charges[0].package_size", "charges[0].package_price", "charges[0].rate"}


# --- per-dimension prices ------------------------------------------------------------------------


def test_dimension_prices_overlay_the_charge_params() -> None:
    charge = charge_from_dict(
        {
            "code": "hours",
            "model": "graduated",
            "free_units": 2,
            "tiers": [{"up_to": 10, "unit_price": "5"}, {"up_to": None, "unit_price": "4"}],
            "dimension": "region",
            "dimension_prices": {"EMEA": {"tiers": [{"up_to": None, "unit_price": "3"}]}, "APAC": {"free_units": 0}},
        }
    )
    emea = charge.for_dimension("EMEA")
    assert emea.tiers == (Tier(None, D(3)),) and emea.free_units == D(2)
    assert charge.for_dimension("APAC").free_units == D(0)
    assert charge.for_dimension("APAC").tiers == charge.tiers
    assert charge.for_dimension("USA") == charge.base()
    assert charge.base().dimension is None and charge.base().dimension_prices == {}


def test_dimension_price_errors_are_named_under_their_value() -> None:
    errors = errors_of(
        {
            "code": "c",
            "model": "flat",
            "unit_price": "1",
            "dimension": "region",
            "dimension_prices": {"USA": {"unit_price": "-30"}, "EMEA": {"package_size": 3}, "APAC": "cheap"},
        }
    )
    fields = {f for f, _ in errors}
    assert fields == {
        "charges[0].dimension_prices.USA.unit_price",
        "charges[0].dimension_prices.EMEA.package_size",
        "charges[0].dimension_prices.APAC",
    }


def test_inherited_problems_are_reported_once() -> None:
    errors = errors_of(
        {"code": "c", "model": "flat", "unit_price": "-1", "dimension": "region", "dimension_prices": {"USA": {}}}
    )
    assert errors == [("charges[0].unit_price", "must not be negative")]


def test_dimension_prices_need_a_dimension() -> None:
    assert fields_of(
        {"code": "c", "model": "flat", "unit_price": "1", "dimension_prices": {"USA": {"unit_price": "2"}}}
    ) == {"charges[0].dimension"}


def test_bundle_charges_have_no_dimension() -> None:
    assert fields_of(
        {"code": "c", "model": "bundle", "bundle_size": 10, "bundle_price": "1", "dimension": "region"}
    ) == {"charges[0].dimension"}


def test_validate_charge_on_objects() -> None:
    assert validate_charge(Charge("c", "flat", unit_price=D(1))) == []
    assert validate_charge(Charge("", "flat", unit_price=D(1)), "charges[2]") == [("charges[2].code", "is required")]
    assert validate_charge(Charge("c", "volume", tiers=(Tier(D(10)), Tier(D(5)), Tier(None))), "x") == [
        ("x.tiers[1].up_to", "tiers must be in ascending order of up_to")
    ]


# --- fees ------------------------------------------------------------------------------------------


def test_fees_defaults_and_errors() -> None:
    fees = fees_from_dict({"recurring": {"amount": "10"}})
    assert fees.recurring is not None and fees.recurring.in_advance and fees.recurring.prorate
    assert fees.setup is None and fees.early_termination is None
    assert fees_from_dict(None).recurring is None
    with pytest.raises(PricingValidationError) as info:
        fees_from_dict({"setup": "-1", "recurring": {"in_advance": "yes"}, "monthly": "3"})
    assert {f for f, _ in info.value.errors} == {
        "fees.setup",
        "fees.recurring.amount",
        "fees.recurring.in_advance",
        "fees.monthly",
    }


# --- revenue share -----------------------------------------------------------------------------------


def test_revenue_share_from_contract_json() -> None:
    fixed = revenue_share_from_dict({"meter": "order_value", "model": "fixed", "percent": "15"})
    assert fixed == RevenueShare("order_value", "fixed", percent=D(15))
    flexible = revenue_share_from_dict(
        {
            "meter": "order_value",
            "model": "flexible",
            "bands": [{"up_to": "1000", "percent": "10"}, {"up_to": None, "percent": "15"}],
        }
    )
    assert [(b.up_to, b.percent) for b in flexible.bands] == [(D(1000), D(10)), (None, D(15))]


@pytest.mark.parametrize(
    ("data", "fields"),
    [
        ({"meter": "v", "model": "fixed"}, {"revenue_share.percent"}),
        ({"meter": "v", "model": "fixed", "percent": "101"}, {"revenue_share.percent"}),
        ({"model": "fixed", "percent": "5"}, {"revenue_share.meter"}),
        ({"meter": "v", "model": "tiered", "percent": "5"}, {"revenue_share.model"}),
        ({"meter": "v", "model": "flexible"}, {"revenue_share.bands"}),
        (
            {"meter": "v", "model": "flexible", "bands": [{"up_to": "1000", "percent": "10"}]},
            {"revenue_share.bands[0].up_to"},
        ),
        (
            {
                "meter": "v",
                "model": "flexible",
                "bands": [
                    {"up_to": "1000", "percent": "10"},
                    {"up_to": "500", "percent": "5"},
                    {"up_to": None, "percent": "-1"},
                ],
            },
            {"revenue_share.bands[1].up_to", "revenue_share.bands[2].percent"},
        ),
        ({"meter": "v", "model": "flexible", "bands": [{"up_to": None}]}, {"revenue_share.bands[0].percent"}),
    ],
)
def test_bad_revenue_shares(data: dict[str, object], fields: set[str]) -> None:
    with pytest.raises(PricingValidationError) as info:
        revenue_share_from_dict(data)
    assert {f for f, _ in info.value.errors} == fields


# --- whole plans -------------------------------------------------------------------------------------


def test_plan_errors_are_collected_across_sections() -> None:
    data = {
        **CONTRACT_PLAN,
        "currency": "XYZ",
        "fees": {"setup": "-5"},
        "charges": [
            {"code": "calls", "model": "flat", "unit_price": "1"},
            {"code": "calls", "model": "flat", "unit_price": "2"},
            {"code": "bytes", "model": "volume", "tiers": [{"up_to": 5}]},
        ],
        "revenue_share": {"meter": "v", "model": "fixed"},
    }
    with pytest.raises(PricingValidationError) as info:
        plan_pricing_from_dict(data)
    assert {f for f, _ in info.value.errors} == {
        "currency",
        "fees.setup",
        "charges[1].code",
        "charges[2].tiers[0].up_to",
        "revenue_share.percent",
    }
