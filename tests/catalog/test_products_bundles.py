from __future__ import annotations

from tests.factories import create_bundle, create_meter, create_plan, create_product, problem_fields


def test_product_crud(api):
    r = api.post("/v1/products", json={"code": "weather", "name": "Weather API"})
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["code"] == "weather" and created["name"] == "Weather API" and created["description"] is None

    assert api.get("/v1/products/weather").json() == created

    r = api.patch("/v1/products/weather", json={"description": "Forecasts and history"})
    assert r.status_code == 200, r.text
    assert r.json()["description"] == "Forecasts and history" and r.json()["name"] == "Weather API"

    problem_fields(api.post("/v1/products", json={"code": "weather"}), 409)
    problem_fields(api.get("/v1/products/maps"), 404)
    problem_fields(api.patch("/v1/products/maps", json={"name": "Maps"}), 404)


def test_product_input_is_validated(api):
    assert "code" in problem_fields(api.post("/v1/products", json={"code": "not url safe"}), 422)
    assert "price" in problem_fields(api.post("/v1/products", json={"code": "p", "price": "1"}), 422)
    assert "code" in problem_fields(api.patch("/v1/products/p", json={"code": "q"}), 422)


def test_products_paginate_by_code(api):
    for code in ["e", "a", "d", "c", "b"]:
        create_product(api, code=code)
    seen, after, pages = [], None, 0
    while True:
        params = {"limit": 2} | ({"after": after} if after else {})
        body = api.get("/v1/products", params=params).json()
        pages += 1
        assert len(body["data"]) <= 2
        seen += [p["code"] for p in body["data"]]
        after = body["next"]
        if after is None:
            break
    assert seen == ["a", "b", "c", "d", "e"] and pages == 3
    assert "after" in problem_fields(api.get("/v1/products", params={"after": "%%%"}), 422)
    assert "limit" in problem_fields(api.get("/v1/products", params={"limit": 501}), 422)


def test_bundle_crud_and_unknown_products(api):
    create_product(api, code="weather")
    create_product(api, code="maps")

    errors = problem_fields(api.post("/v1/bundles", json={"code": "suite", "products": ["weather", "geo", "sat"]}), 422)
    assert set(errors) == {"products[1]", "products[2]"}
    assert "geo" in errors["products[1]"]
    assert "products" in problem_fields(api.post("/v1/bundles", json={"code": "s", "products": ["maps", "maps"]}), 422)

    bundle = create_bundle(api, code="suite", products=["weather", "maps"])
    assert bundle["products"] == ["weather", "maps"]
    assert api.get("/v1/bundles/suite").json() == bundle
    problem_fields(api.post("/v1/bundles", json={"code": "suite"}), 409)

    r = api.patch("/v1/bundles/suite", json={"products": ["maps", "weather"], "name": "Suite"})
    assert r.status_code == 200, r.text
    assert r.json()["products"] == ["maps", "weather"] and r.json()["name"] == "Suite"
    assert "products[1]" in problem_fields(api.patch("/v1/bundles/suite", json={"products": ["maps", "nope"]}), 422)
    assert api.get("/v1/bundles/suite").json()["products"] == ["maps", "weather"]

    r = api.patch("/v1/bundles/suite", json={"products": ["weather"]})
    assert r.status_code == 200 and r.json()["products"] == ["weather"]

    create_bundle(api, code="empty", products=[])
    page = api.get("/v1/bundles", params={"limit": 1}).json()
    assert [b["code"] for b in page["data"]] == ["empty"] and page["next"]
    page = api.get("/v1/bundles", params={"limit": 1, "after": page["next"]}).json()
    assert [b["code"] for b in page["data"]] == ["suite"] and page["next"] is None
    problem_fields(api.get("/v1/bundles/nope"), 404)


def test_bundle_keeps_products_a_published_plan_charges_for(api):
    create_meter(api, key="api_calls", event_type="api_call")
    create_product(api, code="weather")
    create_product(api, code="maps")
    create_bundle(api, code="suite", products=["weather", "maps"])
    charge = {"code": "calls", "meter": "api_calls", "product": "weather", "model": "flat", "unit_price": "0.01"}
    create_plan(api, code="draft-plan", bundle="suite", charges=[charge], publish=False)

    # Only drafts use it: the bundle may change (the draft is checked again when published).
    assert api.patch("/v1/bundles/suite", json={"products": ["maps"]}).status_code == 200
    assert "charges[0].product" in problem_fields(api.post("/v1/plans/draft-plan/publish"), 422)
    assert api.patch("/v1/bundles/suite", json={"products": ["weather", "maps"]}).status_code == 200
    assert api.post("/v1/plans/draft-plan/publish").status_code == 200

    errors = problem_fields(api.patch("/v1/bundles/suite", json={"products": ["maps"]}), 409)
    assert "draft-plan" in errors["products"]
    create_product(api, code="geo")
    r = api.patch("/v1/bundles/suite", json={"products": ["weather", "geo"]})
    assert r.status_code == 200, r.text
