"""The customer field ``payment_collection``."""

from __future__ import annotations


def test_payment_collection_defaults_validates_and_patches(api):
    r = api.post("/v1/customers", json={"id": "acme"})
    assert r.status_code == 201 and r.json()["payment_collection"] == "charge_automatically"
    r = api.post("/v1/customers", json={"id": "b", "payment_collection": "by_carrier_pigeon"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "payment_collection"
    r = api.patch("/v1/customers/acme", json={"payment_collection": "send_invoice"})
    assert r.status_code == 200 and r.json()["payment_collection"] == "send_invoice"
    r = api.patch("/v1/customers/acme", json={"payment_collection": None})
    assert r.status_code == 200 and r.json()["payment_collection"] == "send_invoice"
    assert api.get("/v1/customers/acme").json()["payment_collection"] == "send_invoice"
