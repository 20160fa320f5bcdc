"""The service functions other domains call: get_subscribable_plan and plan_pricing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from tests.factories import AMBERFLO_CHARGE, create_meter, create_plan
from tollway.catalog.errors import PlanNotSubscribable
from tollway.catalog.service import get_plan, get_subscribable_plan, plan_limits, plan_notifications, plan_pricing
from tollway.models import Customer
from tollway.pricing import PlanPricing, preview

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def customer(api, id_: str, **fields) -> None:
    r = api.post("/v1/customers", json={"id": id_, **fields})
    assert r.status_code == 201, r.text


def refusal(session, code: str, who: str, **kw) -> tuple[str, str]:
    with pytest.raises(PlanNotSubscribable) as info:
        get_subscribable_plan(session, code, who, at=kw.pop("at", NOW), **kw)
    assert info.value.status == 422
    [error] = info.value.errors
    return error.field, error.message


def test_only_published_plans_within_their_dates(api, session_factory):
    create_meter(api, key="api_calls", event_type="api_call")
    customer(api, "acme")
    create_plan(api, code="draft", charges=[AMBERFLO_CHARGE], publish=False)
    create_plan(api, code="live", publish=True, charges=[AMBERFLO_CHARGE])
    create_plan(api, code="later", start_date="2026-04-01T00:00:00Z", publish=True, charges=[AMBERFLO_CHARGE])
    create_plan(api, code="ending", end_date="2099-01-01T00:00:00Z", publish=True, charges=[AMBERFLO_CHARGE])

    with session_factory() as s:
        assert get_subscribable_plan(s, "live", "acme", at=NOW).code == "live"
        assert refusal(s, "draft", "acme") == ("plan", "plan 'draft' is a draft: publish it first")
        assert refusal(s, "missing", "acme")[0] == "plan"
        assert refusal(s, "live", "nobody")[0] == "customer"
        field, message = refusal(s, "later", "acme")
        assert field == "plan" and "available from" in message
        assert get_subscribable_plan(s, "later", "acme", at=datetime(2026, 4, 1, tzinfo=UTC)).code == "later"
        assert get_subscribable_plan(s, "ending", "acme", at=NOW).code == "ending"

    # Ending a published plan (PATCH end_date) stops new subscriptions from that moment on.
    ended_at = NOW - timedelta(days=1)
    r = api.patch("/v1/plans/ending", json={"end_date": ended_at.isoformat()})
    assert r.status_code == 200, r.text
    with session_factory() as s:
        field, message = refusal(s, "ending", "acme")
        assert field == "plan" and "ended" in message
        assert get_subscribable_plan(s, "ending", "acme", at=ended_at - timedelta(seconds=1)).code == "ending"


def test_audiences(api, session_factory):
    create_meter(api, key="api_calls", event_type="api_call")
    customer(api, "acme", category="partners", company="acme-group")
    customer(api, "globex", category="startups", company="globex-inc")
    customer(api, "solo")
    create_plan(api, code="everyone", publish=True, charges=[AMBERFLO_CHARGE])
    create_plan(
        api,
        code="partners",
        audience={"type": "categories", "values": ["partners"]},
        publish=True,
        charges=[AMBERFLO_CHARGE],
    )
    create_plan(
        api,
        code="groups",
        audience={"type": "companies", "values": ["globex-inc", "x"]},
        publish=True,
        charges=[AMBERFLO_CHARGE],
    )
    create_plan(
        api, code="named", audience={"type": "customers", "values": ["solo"]}, publish=True, charges=[AMBERFLO_CHARGE]
    )

    allowed = {
        "everyone": {"acme", "globex", "solo"},
        "partners": {"acme"},
        "groups": {"globex"},
        "named": {"solo"},
    }
    with session_factory() as s:
        for plan, members in allowed.items():
            for who in ("acme", "globex", "solo"):
                if who in members:
                    assert get_subscribable_plan(s, plan, who, at=NOW).code == plan
                else:
                    field, message = refusal(s, plan, who)
                    assert field == "customer" and "audience" in message, (plan, who)
        # A customer row works as well as its id.
        row = s.get(Customer, "acme")
        assert get_subscribable_plan(s, "partners", row, at=NOW).code == "partners"


def test_private_plans_only_through_the_admin_api(api, session_factory):
    create_meter(api, key="api_calls", event_type="api_call")
    customer(api, "acme")
    create_plan(api, code="secret", visibility="private", publish=True, charges=[AMBERFLO_CHARGE])
    create_plan(api, code="open", publish=True, charges=[AMBERFLO_CHARGE])
    with session_factory() as s:
        assert get_subscribable_plan(s, "secret", "acme", at=NOW).code == "secret"  # via_admin defaults to True
        assert get_subscribable_plan(s, "secret", "acme", at=NOW, via_admin=True).code == "secret"
        field, message = refusal(s, "secret", "acme", via_admin=False)
        assert field == "plan" and "private" in message
        assert get_subscribable_plan(s, "open", "acme", at=NOW, via_admin=False).code == "open"


def test_plan_pricing_gives_the_pricing_package_objects(api, session_factory):
    create_meter(api, key="api_calls", event_type="api_call")
    create_meter(api, key="orders", event_type="order", aggregation="sum", value_property="amount")
    create_plan(
        api,
        code="pro",
        fees={"recurring": {"amount": "49.00", "in_advance": False}},
        revenue_share={"meter": "orders", "model": "flexible", "bands": [{"up_to": 1000, "percent": "10"},
                                                                         {"up_to": None, "percent": "15"}]},
        notifications={"meter": "api_calls", "target": 10000, "thresholds": [90, 100]},
        limits=[{"meter": "api_calls", "max": 100000}],
        publish=True, charges=[AMBERFLO_CHARGE],
    )  # fmt: skip
    with session_factory() as s:
        row = get_plan(s, "pro")
        pricing = plan_pricing(row)
        assert isinstance(pricing, PlanPricing)
        assert pricing.currency is not None and pricing.currency.code == "USD"
        [charge] = pricing.charges
        assert (charge.code, charge.meter, charge.model) == ("calls", "api_calls", "package")
        assert (charge.package_size, charge.package_price, charge.free_units) == (
            Decimal(1000),
            Decimal("5.00"),
            Decimal(5000),
        )
        assert pricing.fees.recurring is not None and pricing.fees.recurring.in_advance is False
        assert pricing.revenue_share is not None and pricing.revenue_share.meter == "orders"
        result = preview(pricing, {"calls": Decimal(12345), "orders": Decimal(2000)})
        assert result.to_dict()["subtotal"] == "-161.00"  # 49 + 40 - (10% of 1000 + 15% of 1000)

        notifications = plan_notifications(row)
        assert notifications is not None and notifications.target == Decimal(10000)
        assert notifications.thresholds == [Decimal(90), Decimal(100)]
        [limit] = plan_limits(row)
        assert (limit.meter, limit.max, limit.action) == ("api_calls", Decimal(100000), "block")
