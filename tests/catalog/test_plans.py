from __future__ import annotations

import copy
from typing import Any

from tests.factories import (
    AMBERFLO_CHARGE,
    create_bundle,
    create_meter,
    create_plan,
    create_product,
    plan_body,
    problem_fields,
)

# The contract's plan example (docs api-v1, "Catalog"), with every optional part filled in.
CONTRACT_PLAN: dict[str, Any] = {
    "code": "pro",
    "name": "Pro",
    "description": "For production workloads",
    "currency": "USD",
    "bundle": "weather-suite",
    "interval": "month",
    "interval_count": 1,
    "billing_anchor": "calendar",
    "visibility": "public",
    "audience": {"type": "categories", "values": ["partners", "startups"]},
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
        },
        {
            "code": "bytes",
            "meter": "bytes_out",
            "model": "graduated",
            "tiers": [
                {"up_to": 1000, "unit_price": "0", "flat_fee": "0"},
                {"up_to": None, "unit_price": "0.0015", "flat_fee": "2.50"},
            ],
        },
    ],
    "revenue_share": {"meter": "order_value", "model": "fixed", "percent": "15"},
    "notifications": {"meter": "api_calls", "target": 10000, "thresholds": [90, 100, 150]},
    "limits": [{"meter": "api_calls", "max": 100000, "action": "block"}],
    "start_date": "2026-01-01T00:00:00Z",
    "end_date": "2027-01-01T00:00:00+01:00",
}


def setup_catalog(api) -> None:
    create_meter(api, key="api_calls", group_by=["region"], event_type="api_call")
    create_meter(api, key="bytes_out", aggregation="sum", value_property="bytes", event_type="api_call")
    create_meter(api, key="order_value", event_type="order", aggregation="sum", value_property="amount")
    for code in ("weather", "maps", "geo"):
        create_product(api, code=code)
    create_bundle(api, code="weather-suite", products=["weather", "maps"])


def test_create_plan_with_every_contract_field(api):
    setup_catalog(api)
    r = api.post("/v1/plans", json=CONTRACT_PLAN)
    assert r.status_code == 201, r.text
    plan = r.json()
    assert plan["status"] == "draft" and plan["published_at"] is None
    assert plan["created_at"] and plan["updated_at"]
    # Same shape as the request; numbers in the pricing documents come back as decimal strings.
    expected = copy.deepcopy(CONTRACT_PLAN)
    expected["charges"][0].update(package_size="1000", free_units="5000")
    expected["charges"][1]["tiers"][0]["up_to"] = "1000"
    expected["notifications"] = {"meter": "api_calls", "target": "10000", "thresholds": ["90", "100", "150"]}
    expected["limits"] = [{"meter": "api_calls", "max": "100000", "action": "block"}]
    expected["end_date"] = "2026-12-31T23:00:00Z"
    for key, value in expected.items():
        assert plan[key] == value, key
    assert api.get("/v1/plans/pro").json() == plan


def test_minimal_plan_takes_the_defaults(api):
    create_meter(api, key="api_calls", event_type="api_call")
    plan = create_plan(api, code="basic", charges=[AMBERFLO_CHARGE], publish=False)
    assert plan["interval"] == "month" and plan["interval_count"] == 1
    assert plan["billing_anchor"] == "calendar" and plan["visibility"] == "public"
    assert plan["audience"] == {"type": "all", "values": []}
    assert plan["fees"] is None and plan["revenue_share"] is None and plan["notifications"] is None
    assert plan["limits"] == [] and plan["bundle"] is None
    assert plan["charges"] == [dict(AMBERFLO_CHARGE, package_size="1000", free_units="5000")]
    problem_fields(api.post("/v1/plans", json=plan_body(code="basic", charges=[AMBERFLO_CHARGE])), 409)
    problem_fields(api.get("/v1/plans/none"), 404)


def _charge(**fields: Any) -> dict[str, Any]:
    return {"code": "c", "meter": "api_calls", **fields}


GRADUATED_ASC = [{"up_to": 100, "unit_price": "1"}, {"up_to": None, "unit_price": "0.5"}]

# (what is wrong, fields to set on a valid plan, the field the 422 must name)
INVALID: list[tuple[str, dict[str, Any], str]] = [
    ("unknown meter", {"charges": [_charge(meter="nope", model="flat", unit_price="1")]}, "charges[0].meter"),
    ("charge without meter", {"charges": [{"code": "c", "model": "flat", "unit_price": "1"}]}, "charges[0].meter"),
    (
        "tiers not ascending",
        {"charges": [_charge(model="graduated", tiers=[{"up_to": 100}, {"up_to": 50}, {"up_to": None}])]},
        "charges[0].tiers[1].up_to",
    ),
    (
        "non-last tier open-ended",
        {"charges": [_charge(model="volume", tiers=[{"up_to": None}, {"up_to": 50}])]},
        "charges[0].tiers[0].up_to",
    ),
    ("negative unit price", {"charges": [_charge(model="flat", unit_price="-0.01")]}, "charges[0].unit_price"),
    (
        "negative tier price",
        {"charges": [_charge(model="graduated", tiers=[{"up_to": None, "unit_price": "-1"}])]},
        "charges[0].tiers[0].unit_price",
    ),
    ("float price", {"charges": [_charge(model="flat", unit_price=0.1)]}, "charges[0].unit_price"),
    ("percentage above 100", {"charges": [_charge(model="percentage", rate="150")]}, "charges[0].rate"),
    ("percentage below 0", {"charges": [_charge(model="percentage", rate="-1")]}, "charges[0].rate"),
    ("unknown model", {"charges": [_charge(model="magic")]}, "charges[0].model"),
    ("param of another model", {"charges": [_charge(model="flat", unit_price="1", rate="2")]}, "charges[0].rate"),
    (
        "duplicate charge code",
        {"charges": [_charge(model="flat", unit_price="1"), _charge(model="flat", unit_price="2")]},
        "charges[1].code",
    ),
    ("unknown product", {"charges": [_charge(model="flat", unit_price="1", product="nope")]}, "charges[0].product"),
    (
        "product not in bundle",
        {"bundle": "weather-suite", "charges": [_charge(model="flat", unit_price="1", product="geo")]},
        "charges[0].product",
    ),
    (
        "dimension the meter is not grouped by",
        {"charges": [_charge(model="flat", unit_price="1", dimension="country")]},
        "charges[0].dimension",
    ),
    ("unknown bundle", {"bundle": "nope"}, "bundle"),
    ("currency not ISO 4217", {"currency": "XYZ"}, "currency"),
    ("currency without minor unit", {"currency": "XAU"}, "currency"),
    ("negative setup fee", {"fees": {"setup": "-5"}}, "fees.setup"),
    ("recurring fee without amount", {"fees": {"recurring": {"in_advance": True}}}, "fees.recurring.amount"),
    (
        "revenue share on unknown meter",
        {"revenue_share": {"meter": "x", "model": "fixed", "percent": "5"}},
        "revenue_share.meter",
    ),
    (
        "revenue share above 100%",
        {"revenue_share": {"meter": "order_value", "model": "fixed", "percent": "120"}},
        "revenue_share.percent",
    ),
    (
        "notifications on unknown meter",
        {"notifications": {"meter": "nope", "target": 10, "thresholds": [50]}},
        "notifications.meter",
    ),
    (
        "thresholds not ascending",
        {"notifications": {"meter": "api_calls", "target": 10, "thresholds": [100, 90]}},
        "notifications.thresholds",
    ),
    (
        "threshold not positive",
        {"notifications": {"meter": "api_calls", "target": 10, "thresholds": [0, 90]}},
        "notifications.thresholds[0]",
    ),
    ("limit on unknown meter", {"limits": [{"meter": "nope", "max": 5}]}, "limits[0].meter"),
    ("limit action", {"limits": [{"meter": "api_calls", "max": 5, "action": "throttle"}]}, "limits[0].action"),
    (
        "same limit twice",
        {"limits": [{"meter": "api_calls", "max": 5}, {"meter": "api_calls", "max": 2, "action": "notify"}] * 2},
        "limits[2]",
    ),
    ("end before start", {"start_date": "2026-02-01T00:00:00Z", "end_date": "2026-01-01T00:00:00Z"}, "end_date"),
    ("timestamp without offset", {"start_date": "2026-02-01T00:00:00"}, "start_date"),
    ("interval", {"interval": "fortnight"}, "interval"),
    ("interval_count", {"interval_count": 0}, "interval_count"),
    ("billing_anchor", {"billing_anchor": "random"}, "billing_anchor"),
    ("visibility", {"visibility": "secret"}, "visibility"),
    ("audience without values", {"audience": {"type": "companies"}}, "audience"),
    ("audience type", {"audience": {"type": "everyone"}}, "audience.type"),
    ("negative payment terms", {"payment_terms_days": -1}, "payment_terms_days"),
    ("unknown field", {"discount": "10"}, "discount"),
]


def test_invalid_plans_are_422_naming_the_field(api):
    setup_catalog(api)
    failures = []
    for what, fields, field in INVALID:
        r = api.post("/v1/plans", json=plan_body(code="p", **{"charges": [AMBERFLO_CHARGE], **fields}))
        if r.status_code != 422 or r.headers["content-type"] != "application/problem+json":
            failures.append(f"{what}: status {r.status_code} {r.text}")
            continue
        named = [e["field"] for e in r.json()["errors"]]
        if field not in named:
            failures.append(f"{what}: expected {field!r} among {named}")
    assert not failures, "\n".join(failures)
    assert api.get("/v1/plans").json()["data"] == []


def test_every_problem_is_reported_at_once(api):
    create_meter(api, key="api_calls", event_type="api_call")
    body = plan_body(
        charges=[
            _charge(meter="nope", model="graduated", tiers=[{"up_to": None, "unit_price": "1"}, {"up_to": 10}]),
            _charge(code="d", model="package", package_size=0, package_price="-1", product="ghost"),
        ],
        fees={"setup": "-1"},
        code="starter",
    )
    errors = problem_fields(api.post("/v1/plans", json=body), 422)
    assert {
        "charges[0].meter",
        "charges[0].tiers[0].up_to",
        "charges[1].package_size",
        "charges[1].package_price",
        "charges[1].product",
        "fees.setup",
    } <= set(errors)


def test_list_plans_filters_and_paginates(api):
    create_meter(api, key="api_calls", event_type="api_call")
    create_plan(api, code="a-public-draft", charges=[AMBERFLO_CHARGE], publish=False)
    create_plan(api, code="b-public-live", publish=True, charges=[AMBERFLO_CHARGE])
    create_plan(api, code="c-private-live", visibility="private", publish=True, charges=[AMBERFLO_CHARGE])
    create_plan(api, code="d-private-draft", visibility="private", charges=[AMBERFLO_CHARGE], publish=False)

    def codes(**params):
        return [p["code"] for p in api.get("/v1/plans", params=params).json()["data"]]

    assert codes() == ["a-public-draft", "b-public-live", "c-private-live", "d-private-draft"]
    assert codes(status="published") == ["b-public-live", "c-private-live"]
    assert codes(status="draft", visibility="private") == ["d-private-draft"]
    assert codes(visibility="public") == ["a-public-draft", "b-public-live"]
    first = api.get("/v1/plans", params={"limit": 3}).json()
    assert len(first["data"]) == 3 and first["next"]
    rest = api.get("/v1/plans", params={"limit": 3, "after": first["next"]}).json()
    assert [p["code"] for p in rest["data"]] == ["d-private-draft"] and rest["next"] is None
    assert "status" in problem_fields(api.get("/v1/plans", params={"status": "archived"}), 422)
    assert "visibility" in problem_fields(api.get("/v1/plans", params={"visibility": "hidden"}), 422)


def test_drafts_are_edited_and_validated_again(api):
    setup_catalog(api)
    create_plan(api, code="draft", bundle="weather-suite", charges=[AMBERFLO_CHARGE], publish=False)

    r = api.patch("/v1/plans/draft", json={"name": "Renamed", "interval": "year", "contract_months": 12})
    assert r.status_code == 200, r.text
    plan = r.json()
    assert (plan["name"], plan["interval"], plan["contract_months"]) == ("Renamed", "year", 12)
    assert plan["charges"][0]["code"] == "calls"  # untouched fields stay

    # A field replaces the stored one wholesale.
    new_charge = {"code": "mb", "meter": "bytes_out", "product": "maps", "model": "flat", "unit_price": "0.02"}
    r = api.patch("/v1/plans/draft", json={"charges": [new_charge]})
    assert r.status_code == 200 and r.json()["charges"] == [new_charge]

    # The merged plan is validated as a whole: moving to a bundle without the product fails.
    create_bundle(api, code="geo-only", products=["geo"])
    assert "charges[0].product" in problem_fields(api.patch("/v1/plans/draft", json={"bundle": "geo-only"}), 422)
    r = api.patch("/v1/plans/draft", json={"charges": [dict(new_charge, meter="gone")]})
    assert "charges[0].meter" in problem_fields(r, 422)
    assert "currency" in problem_fields(api.patch("/v1/plans/draft", json={"currency": None}), 422)
    assert "code" in problem_fields(api.patch("/v1/plans/draft", json={"code": "other"}), 422)
    r = api.patch("/v1/plans/draft", json={"end_date": "2026-01-01T00:00:00Z", "start_date": "2026-06-01T00:00:00Z"})
    assert "end_date" in problem_fields(r, 422)
    assert api.get("/v1/plans/draft").json()["charges"] == [new_charge]

    r = api.patch("/v1/plans/draft", json={"bundle": None, "description": "no bundle"})
    assert r.status_code == 200 and r.json()["bundle"] is None
    problem_fields(api.patch("/v1/plans/none", json={"name": "x"}), 404)


def test_drafts_are_deleted_freely(api):
    create_meter(api, key="api_calls", event_type="api_call")
    create_plan(api, code="draft", charges=[AMBERFLO_CHARGE], publish=False)
    r = api.delete("/v1/plans/draft")
    assert r.status_code == 204 and r.content == b""
    problem_fields(api.get("/v1/plans/draft"), 404)
    problem_fields(api.delete("/v1/plans/draft"), 404)
    # The code is free again.
    create_plan(api, code="draft", charges=[AMBERFLO_CHARGE], publish=False)
