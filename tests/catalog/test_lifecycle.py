"""Draft -> published: publishing freezes a plan (end_date aside) and the meters it names."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from tests.factories import (
    AMBERFLO_CHARGE,
    create_bundle,
    create_meter,
    create_plan,
    create_product,
    plan_body,
    problem_fields,
)
from tollway.catalog import service
from tollway.catalog.errors import BundleInUse
from tollway.catalog.schemas import BundleUpdate


def test_publish_freezes_the_plan(api):
    create_meter(api, key="api_calls", event_type="api_call")
    draft = create_plan(api, code="pro", start_date="2026-01-01T00:00:00Z", charges=[AMBERFLO_CHARGE], publish=False)
    r = api.post("/v1/plans/pro/publish")
    assert r.status_code == 200, r.text
    plan = r.json()
    assert plan["status"] == "published" and plan["published_at"]
    assert {k: v for k, v in plan.items() if k not in ("status", "published_at", "updated_at")} == {
        k: v for k, v in draft.items() if k not in ("status", "published_at", "updated_at")
    }

    # Only end_date may change.
    r = api.patch("/v1/plans/pro", json={"end_date": "2030-01-01T00:00:00Z"})
    assert r.status_code == 200, r.text
    assert r.json()["end_date"] == "2030-01-01T00:00:00Z" and r.json()["status"] == "published"
    r = api.patch("/v1/plans/pro", json={"end_date": None})
    assert r.status_code == 200 and r.json()["end_date"] is None
    assert "end_date" in problem_fields(api.patch("/v1/plans/pro", json={"end_date": "2025-06-01T00:00:00Z"}), 422)

    assert set(problem_fields(api.patch("/v1/plans/pro", json={"name": "Pro 2"}), 409)) == {"name"}
    new_charges = [dict(AMBERFLO_CHARGE, package_price="4.00")]
    assert set(problem_fields(api.patch("/v1/plans/pro", json={"charges": new_charges}), 409)) == {"charges"}
    assert set(problem_fields(api.patch("/v1/plans/pro", json={"visibility": "private", "limits": []}), 409)) == {
        "visibility"
    }
    # A changed field next to end_date: nothing is applied.
    r = api.patch("/v1/plans/pro", json={"end_date": "2031-01-01T00:00:00Z", "fees": {"setup": "1.00"}})
    assert set(problem_fields(r, 409)) == {"fees"}
    assert api.get("/v1/plans/pro").json()["end_date"] is None

    # Fields given with the stored value (numbers written differently) are not changes.
    same = {
        "name": plan["name"],
        "currency": "usd",
        "charges": [dict(AMBERFLO_CHARGE, package_size="1000", package_price="5.0", free_units=5000)],
        "audience": {"type": "all"},
        "end_date": "2030-06-01T00:00:00Z",
    }
    r = api.patch("/v1/plans/pro", json=same)
    assert r.status_code == 200, r.text
    assert r.json()["end_date"] == "2030-06-01T00:00:00Z" and r.json()["charges"] == plan["charges"]

    # Only documents compare numbers by value: a name "1.0" is not the name "1".
    assert set(problem_fields(api.patch("/v1/plans/pro", json={"name": "1.0"}), 409)) == {"name"}

    assert problem_fields(api.delete("/v1/plans/pro"), 409) == {}
    problem_fields(api.post("/v1/plans/pro/publish"), 409)
    assert api.get("/v1/plans/pro").json()["status"] == "published"
    problem_fields(api.post("/v1/plans/none/publish"), 404)


def test_publish_needs_something_to_bill(api):
    create_meter(api, key="api_calls", event_type="api_call")
    create_plan(api, code="empty", charges=[], fees={"early_termination": "100.00"}, publish=False)
    errors = problem_fields(api.post("/v1/plans/empty/publish"), 422)
    assert "charges" in errors
    assert api.get("/v1/plans/empty").json()["status"] == "draft"

    r = api.patch("/v1/plans/empty", json={"fees": {"recurring": {"amount": "49.00"}}})
    assert r.status_code == 200, r.text
    assert api.post("/v1/plans/empty/publish").status_code == 200


def test_publish_refuses_a_plan_that_already_ended(api):
    create_meter(api, key="api_calls", event_type="api_call")
    past = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    create_plan(api, code="old", end_date=past, charges=[AMBERFLO_CHARGE], publish=False)
    assert "end_date" in problem_fields(api.post("/v1/plans/old/publish"), 422)
    future = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    assert api.patch("/v1/plans/old", json={"end_date": future}).status_code == 200
    assert api.post("/v1/plans/old/publish").status_code == 200


def test_meter_is_frozen_once_a_published_plan_uses_it(api):
    create_meter(api, key="api_calls", event_type="api_call")
    create_meter(api, key="bytes_out", aggregation="sum", value_property="bytes", event_type="api_call")
    create_meter(api, key="orders", event_type="order", aggregation="sum", value_property="amount")
    create_meter(api, key="errors", event_type="error")
    create_meter(api, key="free", event_type="api_call")
    create_plan(
        api,
        code="pro",
        revenue_share={"meter": "orders", "model": "fixed", "percent": "10"},
        notifications={"meter": "bytes_out", "target": "5000", "thresholds": ["80", "100"]},
        limits=[{"meter": "errors", "max": "100", "action": "notify"}],
        charges=[AMBERFLO_CHARGE],
        publish=False,
    )
    used = ["api_calls", "bytes_out", "orders", "errors"]

    # Only a draft uses them: meters may change.
    for key in used:
        r = api.patch(f"/v1/meters/{key}", json={"name": f"{key} (draft)"})
        assert r.status_code == 200, r.text

    assert api.post("/v1/plans/pro/publish").status_code == 200
    for key in used:  # charges, notifications, revenue share and limits all count
        r = api.patch(f"/v1/meters/{key}", json={"name": "renamed"})
        assert r.status_code == 409, (key, r.text)
        assert "pro" in r.json()["detail"]
    assert api.get("/v1/meters/api_calls").json()["name"] == "api_calls (draft)"
    assert api.patch("/v1/meters/free", json={"name": "still free"}).status_code == 200


def test_deleting_or_editing_a_draft_releases_its_meters(api):
    create_meter(api, key="api_calls", event_type="api_call")
    create_meter(api, key="other", event_type="api_call")
    create_plan(api, code="live", charges=[dict(AMBERFLO_CHARGE, meter="other")], publish=True)
    create_plan(api, code="draft", charges=[AMBERFLO_CHARGE], publish=False)
    assert api.patch("/v1/meters/api_calls", json={"name": "x"}).status_code == 200
    assert api.delete("/v1/plans/draft").status_code == 204
    create_plan(api, code="draft2", charges=[AMBERFLO_CHARGE], publish=False)
    r = api.patch("/v1/plans/draft2", json={"charges": [dict(AMBERFLO_CHARGE, meter="other")]})
    assert r.status_code == 200, r.text
    assert api.post("/v1/plans/draft2/publish").status_code == 200
    # api_calls is no longer named by any plan, published or not.
    assert api.patch("/v1/meters/api_calls", json={"name": "y"}).status_code == 200
    assert api.patch("/v1/meters/other", json={"name": "z"}).status_code == 409


def test_create_plan_honours_idempotency_key(api):
    create_meter(api, key="api_calls", event_type="api_call")
    body = plan_body(code="pro", charges=[AMBERFLO_CHARGE])
    first = api.post("/v1/plans", json=body, headers={"Idempotency-Key": "k-1"})
    assert first.status_code == 201, first.text
    again = api.post("/v1/plans", json=body, headers={"Idempotency-Key": "k-1"})
    assert again.status_code == 201 and again.json() == first.json()
    assert again.headers.get("idempotent-replayed") == "true"

    other = api.post(
        "/v1/plans",
        json=plan_body(code="pro", name="Other", charges=[AMBERFLO_CHARGE]),
        headers={"Idempotency-Key": "k-1"},
    )
    assert other.status_code == 409
    assert [p["code"] for p in api.get("/v1/plans").json()["data"]] == ["pro"]
    # Without the header a second create of the same code is a plain conflict.
    problem_fields(api.post("/v1/plans", json=body), 409)
    # A new key runs the request again.
    r = api.post(
        "/v1/plans", json=plan_body(code="pro-2", charges=[AMBERFLO_CHARGE]), headers={"Idempotency-Key": "k-2"}
    )
    assert r.status_code == 201


def test_publish_and_a_bundle_change_do_not_interleave(api, session_factory):
    """A product cannot leave a bundle between a publish's validation and its commit."""
    create_meter(api, key="api_calls", event_type="api_call")
    create_product(api, code="weather")
    create_product(api, code="maps")
    create_bundle(api, code="suite", products=["weather", "maps"])
    create_plan(api, code="pro", bundle="suite", charges=[dict(AMBERFLO_CHARGE, product="weather")], publish=False)

    publishing = session_factory()
    service.publish_plan(publishing, "pro")  # validated, not yet committed
    outcome: dict[str, str] = {}

    def drop_weather() -> None:
        with session_factory() as s:
            try:
                service.update_bundle(s, "suite", BundleUpdate(products=["maps"]))
                s.commit()
                outcome["bundle"] = "changed"
            except BundleInUse:
                s.rollback()
                outcome["bundle"] = "refused"

    worker = threading.Thread(target=drop_weather)
    worker.start()
    worker.join(0.5)
    assert worker.is_alive(), "the bundle change should wait for the publish"
    publishing.commit()
    publishing.close()
    worker.join(30)
    assert outcome == {"bundle": "refused"}
    assert api.get("/v1/bundles/suite").json()["products"] == ["weather", "maps"]
