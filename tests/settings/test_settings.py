"""Provider settings: GET/PUT /v1/settings (merge, validation naming the field, persistence)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.conftest import make_key
from tollway.settings.schemas import ProviderSettings
from tollway.settings.service import get_provider_settings, merge

CONTRACT_EXAMPLE = {
    "company": {
        "name": "Weather Co",
        "address": "1 Main St\nSpringfield",
        "tax_id": "US123",
        "email": "billing@weather.example.com",
        "logo_url": None,
    },
    "invoice": {"payment_terms_days": 30, "payment_instructions": "IBAN ...", "footer": None},
    "portal": {
        "title": "Weather Co billing",
        "primary_color": "#0b7285",
        "logo_url": None,
        "frame_ancestors": ["https://app.weather.example.com"],
        "self_service": False,
    },
}


def test_defaults_before_anything_is_set(api):
    r = api.get("/v1/settings")
    assert r.status_code == 200, r.text
    assert r.json() == {
        "company": {"name": None, "address": None, "tax_id": None, "email": None, "logo_url": None},
        "invoice": {"payment_terms_days": 0, "payment_instructions": None, "footer": None},
        "portal": {
            "title": None,
            "primary_color": None,
            "logo_url": None,
            "frame_ancestors": [],
            "self_service": False,
        },
    }


def test_put_the_contract_example_round_trips(api):
    r = api.put("/v1/settings", json=CONTRACT_EXAMPLE)
    assert r.status_code == 200, r.text
    assert r.json() == CONTRACT_EXAMPLE
    assert api.get("/v1/settings").json() == CONTRACT_EXAMPLE


def test_put_merges_sections_and_fields_left_out_keep_their_values(api):
    api.put("/v1/settings", json=CONTRACT_EXAMPLE)
    r = api.put(
        "/v1/settings", json={"company": {"name": "Weather Co Ltd", "logo_url": "https://weather.example.com/l.png"}}
    )
    assert r.status_code == 200, r.text
    got = api.get("/v1/settings").json()
    assert got["company"] == {
        **CONTRACT_EXAMPLE["company"],
        "name": "Weather Co Ltd",
        "logo_url": "https://weather.example.com/l.png",
    }
    assert got["invoice"] == CONTRACT_EXAMPLE["invoice"]
    assert got["portal"] == CONTRACT_EXAMPLE["portal"]
    # an explicit null clears a nullable field; an empty body changes nothing
    api.put("/v1/settings", json={"invoice": {"payment_instructions": None}})
    assert api.put("/v1/settings", json={}).json()["invoice"] == {
        "payment_terms_days": 30,
        "payment_instructions": None,
        "footer": None,
    }


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"company": {"email": "not an address"}}, "company.email"),
        ({"portal": {"primary_color": "teal"}}, "portal.primary_color"),
        ({"portal": {"primary_color": "#0b72"}}, "portal.primary_color"),
        (
            {"portal": {"frame_ancestors": ["https://ok.example.com", "javascript:alert(1)"]}},
            "portal.frame_ancestors[1]",
        ),
        ({"portal": {"frame_ancestors": ["https://app.example.com/embed"]}}, "portal.frame_ancestors[0]"),
        ({"portal": {"frame_ancestors": "https://app.example.com"}}, "portal.frame_ancestors"),
        ({"portal": {"logo_url": "ftp://x.example.com/logo.png"}}, "portal.logo_url"),
        ({"invoice": {"payment_terms_days": -1}}, "invoice.payment_terms_days"),
        ({"invoice": {"payment_terms_days": None}}, "invoice.payment_terms_days"),
        ({"invoice": {"payment_terms_days": 1.5}}, "invoice.payment_terms_days"),
        ({"portal": {"self_service": "maybe"}}, "portal.self_service"),
        ({"company": {"vat": "x"}}, "company.vat"),
        ({"billing": {}}, "billing"),
        ({"company": "Weather Co"}, "company"),
    ],
)
def test_bad_input_is_a_422_naming_the_field_and_changes_nothing(api, body, field):
    api.put("/v1/settings", json=CONTRACT_EXAMPLE)
    r = api.put("/v1/settings", json=body)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert field in [e["field"] for e in r.json()["errors"]], r.json()
    assert api.get("/v1/settings").json() == CONTRACT_EXAMPLE


def test_frame_ancestors_are_normalized_origins(api):
    r = api.put(
        "/v1/settings",
        json={
            "portal": {
                "frame_ancestors": ["HTTPS://App.Example.com/", "http://localhost:3000", "https://*.example.org"]
            }
        },
    )
    assert r.status_code == 200, r.text
    assert r.json()["portal"]["frame_ancestors"] == [
        "https://app.example.com",
        "http://localhost:3000",
        "https://*.example.org",
    ]


def test_settings_need_an_admin_key(app, anon):
    ingest = make_key(app, "ingest")
    assert anon.get("/v1/settings").status_code == 401
    assert anon.put("/v1/settings", json={}).status_code == 401
    r = anon.put("/v1/settings", json={"company": {"name": "x"}}, headers={"Authorization": f"Bearer {ingest}"})
    assert r.status_code == 403


def test_concurrent_puts_of_different_fields_both_land(app, admin_key):
    """The row is locked for the merge: no update is lost to a concurrent one."""
    from fastapi.testclient import TestClient

    fields = [("company", "name", f"n{i}") for i in range(4)] + [("invoice", "footer", f"f{i}") for i in range(4)]
    with TestClient(app, headers={"Authorization": f"Bearer {admin_key}"}) as client:

        def put(item: tuple[str, str, str]) -> int:
            section, name, value = item
            return client.put("/v1/settings", json={section: {name: value}}).status_code

        with ThreadPoolExecutor(8) as pool:
            assert set(pool.map(put, fields)) == {200}
        got = client.get("/v1/settings").json()
    assert got["company"]["name"] in {f"n{i}" for i in range(4)}
    assert got["invoice"]["footer"] in {f"f{i}" for i in range(4)}


def test_service_reads_typed_settings(api, session_factory):
    api.put("/v1/settings", json={"invoice": {"payment_terms_days": 14}, "portal": {"self_service": True}})
    with session_factory() as session:
        settings = get_provider_settings(session)
    assert isinstance(settings, ProviderSettings)
    assert settings.invoice.payment_terms_days == 14 and settings.portal.self_service is True
    assert settings.company.name is None


def test_merge_is_per_field():
    assert merge(
        {"company": {"name": "a", "email": "x@y.example"}}, {"company": {"name": "b"}, "invoice": {"footer": "f"}}
    ) == {
        "company": {"name": "b", "email": "x@y.example"},
        "invoice": {"footer": "f"},
    }


def test_settings_through_a_real_server(live_server):
    key = live_server.key("admin")
    headers = {"Authorization": f"Bearer {key}"}
    url = f"{live_server.url}/v1/settings"
    r = httpx.put(url, json={"company": {"name": "Weather Co"}}, headers=headers)
    assert r.status_code == 200, r.text
    assert httpx.put(url, json={"invoice": {"payment_terms_days": 30}}, headers=headers).status_code == 200
    for _ in range(50):  # until every route commits before answering (issue 8.1, i8-core)
        got = httpx.get(url, headers=headers).json()
        if got["invoice"]["payment_terms_days"] == 30:
            break
        time.sleep(0.05)
    assert got["company"]["name"] == "Weather Co" and got["invoice"]["payment_terms_days"] == 30
    r = httpx.put(url, json={"portal": {"primary_color": "red"}}, headers=headers)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "portal.primary_color"
