"""Input no database can store, refused up front for every endpoint with a 422 naming the field:
NaN/Infinity and numbers beyond a double, NUL characters (PostgreSQL text cannot hold them),
lone UTF-16 surrogates (not UTF-8), and documents nested too deep to serialize. Found by fuzzing
a live server; each of these was a 500 on one backend or both."""

from __future__ import annotations

import pytest

from tests.factories import JSON, nested, problem

NON_FINITE = ["NaN", "Infinity", "-Infinity", "1e999999", "-1e999999", "1" + "0" * 400]


@pytest.mark.parametrize("number", NON_FINITE)
def test_non_finite_number_in_customer_metadata(api, number):
    body = '{"id":"acme","metadata":{"usage":{"limit":' + number + "}}}"
    problem(api.post("/v1/customers", content=body, headers=JSON), 422, "metadata.usage.limit")
    assert api.get("/v1/customers/acme").status_code == 404


@pytest.mark.parametrize("number", ["NaN", "Infinity", "1e999999", "1" + "0" * 400])
def test_non_finite_number_as_meter_filter_value(api, number):
    body = (
        '{"key":"m","event_type":"api_call","aggregation":"count",'
        '"filters":[{"property":"status","op":"lt","value":' + number + "}]}"
    )
    problem(api.post("/v1/meters", content=body, headers=JSON), 422, "filters[0].value")
    # Nothing was stored that could break ingestion of this event type.
    r = api.post("/v1/events", json={"id": "e1", "customer": "acme", "type": "api_call"})
    assert r.status_code == 202, r.text


def test_nan_in_a_patch_body(api):
    assert api.post("/v1/customers", json={"id": "acme"}).status_code == 201
    problem(api.patch("/v1/customers/acme", content='{"metadata":{"x":NaN}}', headers=JSON), 422, "metadata.x")
    assert api.get("/v1/customers/acme").json()["metadata"] == {}


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/customers", {"id": "acme", "name": "Ac\u0000me"}, "name"),
        ("/v1/customers", {"id": "acme", "metadata": {"k": ["ok", "n\u0000l"]}}, "metadata.k[1]"),
        ("/v1/products", {"code": "weather", "description": "\u0000"}, "description"),
        ("/v1/meters", {"key": "m", "event_type": "api\u0000call", "aggregation": "count"}, "event_type"),
        (
            "/v1/meters",
            {
                "key": "m",
                "event_type": "t",
                "aggregation": "count",
                "filters": [{"property": "p", "op": "eq", "value": "\u0000"}],
            },
            "filters[0].value",
        ),
        ("/v1/plans", {"code": "pro", "currency": "USD", "name": "P\u0000"}, "name"),
    ],
)
def test_nul_character_in_body(api, path, body, field):
    problem(api.post(path, json=body), 422, field)


def test_nul_character_in_an_object_key(api):
    r = api.post("/v1/customers", json={"id": "acme", "metadata": {"a\u0000b": 1}})
    body = problem(r, 422, "metadata")
    assert "NUL" in body["errors"][0]["message"]


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/customers", '{"id":"acme","name":"\\ud800"}', "name"),
        ("/v1/products", '{"code":"weather","name":"x\\udfff"}', "name"),
        ("/v1/meters", '{"key":"m","event_type":"\\ud83d","aggregation":"count"}', "event_type"),
        (
            "/v1/plans",
            '{"code":"pro","currency":"USD","charges":[{"code":"c","meter":"m","model":"flat",'
            '"unit_price":"1","dimension":"\\ud800"}]}',
            "charges[0].dimension",
        ),
    ],
)
def test_lone_surrogate_in_body(api, path, body, field):
    problem(api.post(path, content=body, headers=JSON), 422, field)


def test_a_valid_surrogate_pair_is_fine(api):
    r = api.post("/v1/customers", content='{"id":"acme","name":"\\ud83d\\udca5"}', headers=JSON)
    assert r.status_code == 201, r.text
    assert r.json()["name"] == "\U0001f4a5"


@pytest.mark.parametrize("depth", [33, 300, 900])
def test_too_deeply_nested_body(api, depth):
    body = '{"id":"acme","metadata":' + nested(depth) + "}"
    problem(api.post("/v1/customers", content=body, headers=JSON), 422, "metadata")


def test_nesting_within_the_limit_round_trips(api):
    body = '{"id":"acme","metadata":' + nested(31) + "}"
    r = api.post("/v1/customers", content=body, headers=JSON)
    assert r.status_code == 201, r.text
    assert api.get("/v1/customers/acme").status_code == 200


NUL_URLS = [
    ("/v1/customers/ac%00me", "customer_id"),
    ("/v1/customers/%00/upcoming-invoice", "customer_id"),
    ("/v1/meters/%00", "key"),
    ("/v1/meters/%00/usage", "key"),
    ("/v1/events/e%001", "event_id"),
    ("/v1/plans/p%00", "code"),
    ("/v1/products/%00", "code"),
    ("/v1/bundles/%00", "code"),
    ("/v1/subscriptions/%00", "subscription_id"),
    ("/v1/invoices/%00", "invoice_id"),
    ("/v1/invoices?customer=%00", "customer"),
    ("/v1/invoices?subscription=a%00", "subscription"),
    ("/v1/subscriptions?customer=%00", "customer"),
]


def test_nul_character_in_path_or_query(api):
    for url, field in NUL_URLS:
        problem(api.get(url), 422, field)


def test_nul_in_a_path_of_a_post(api):
    problem(api.post("/v1/events/%00/void"), 422, "event_id")
    problem(api.post("/v1/plans/%00/preview", json={}), 422, "code")


def test_guard_runs_after_authentication(anon):
    r = anon.post("/v1/customers", content='{"id":"acme","metadata":{"x":NaN}}', headers=JSON)
    problem(r, 401)


@pytest.mark.parametrize("cursor", ["AA", "YQA", "4oKsAA"])  # base64 of "\0", "a\0", "€\0"
def test_cursor_decoding_to_nul_is_refused(api, cursor):
    for path in ("/v1/customers", "/v1/meters", "/v1/products", "/v1/bundles", "/v1/plans", "/v1/invoices"):
        problem(api.get(path, params={"after": cursor}), 422, "after")


def test_idempotency_key_outside_ascii(api):
    h = {"Idempotency-Key": b"cl\xe9"}
    first = api.post("/v1/products", json={"code": "weather"}, headers=h)
    assert first.status_code == 201, first.text
    again = api.post("/v1/products", json={"code": "weather"}, headers=h)
    assert again.status_code == 201 and again.headers.get("idempotent-replayed") == "true"


@pytest.mark.parametrize("key", ["", "k" * 256])
def test_idempotency_key_of_the_wrong_length_names_the_header(api, key):
    r = api.post("/v1/products", json={"code": "weather"}, headers={"Idempotency-Key": key})
    body = problem(r, 422, "Idempotency-Key")
    assert body["title"] == "Unprocessable Entity"  # as every other 422


def test_malformed_json_names_the_body(api):
    body = problem(api.post("/v1/customers", content=b'{"id": "acme",', headers=JSON), 422, "body")
    assert "JSON" in body["errors"][0]["message"]


@pytest.mark.parametrize(
    "raw",
    [
        '{"id":"acme","metadata":' + nested(5000) + "}",  # deeper than Python's JSON parser goes
        '{"id":"acme","tax_rate":1' + "0" * 5000 + "}",  # an integer longer than Python converts
    ],
)
def test_body_the_json_parser_gives_up_on_names_the_body(api, raw):
    problem(api.post("/v1/customers", content=raw, headers=JSON), 400, "body")
