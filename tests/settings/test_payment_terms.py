"""A plan's payment_terms_days: null (the default) = the settings' invoice.payment_terms_days."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import inspect, text

from tests.factories import create_customer, create_plan, invoices_of, run_billing, subscribe
from tollway.db import make_engine
from tollway.migrations.runner import alembic_config
from tollway.settings.schemas import ProviderSettings


def _due_days(invoice: dict) -> timedelta:
    def parse(value: str) -> datetime:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))

    return parse(invoice["due_at"]) - parse(invoice["issued_at"])


def _bill(api, code: str, **plan_fields) -> dict:
    create_customer(api, id=f"c-{code}")
    plan = create_plan(api, code=code, fees={"recurring": {"amount": "10.00"}}, charges=[], publish=True, **plan_fields)
    subscribe(api, id=f"s-{code}", customer=f"c-{code}", plan=code, start="2026-01-01T00:00:00Z")
    run_billing(api, "2026-02-01T00:00:00Z")
    [invoice] = invoices_of(api, f"c-{code}")
    return {"plan": plan, "invoice": invoice}


def test_plan_terms_default_to_null_and_the_settings_terms_apply(api):
    got = _bill(api, "no-terms-yet")
    assert got["plan"]["payment_terms_days"] is None
    assert _due_days(got["invoice"]) == timedelta(0)  # the settings' default: 0

    assert api.put("/v1/settings", json={"invoice": {"payment_terms_days": 30}}).status_code == 200
    got = _bill(api, "inherits")
    assert _due_days(got["invoice"]) == timedelta(days=30)


def test_a_plan_with_its_own_terms_keeps_them(api):
    api.put("/v1/settings", json={"invoice": {"payment_terms_days": 30}})
    assert _due_days(_bill(api, "net15", payment_terms_days=15)["invoice"]) == timedelta(days=15)
    assert _due_days(_bill(api, "due-now", payment_terms_days=0)["invoice"]) == timedelta(0)


def test_a_draft_plans_terms_can_be_set_back_to_null(api):
    create_plan(api, code="draft", publish=False, payment_terms_days=15, charges=[])
    r = api.patch("/v1/plans/draft", json={"payment_terms_days": None})
    assert r.status_code == 200, r.text
    assert r.json()["payment_terms_days"] is None
    assert api.get("/v1/plans/draft").json()["payment_terms_days"] is None
    r = api.patch("/v1/plans/draft", json={"payment_terms_days": -1})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "payment_terms_days"


def test_payment_terms_helper():
    from tollway.invoice.finalize import payment_terms_days

    settings = ProviderSettings.model_validate({"invoice": {"payment_terms_days": 45}})
    assert payment_terms_days(None, settings) == 45
    assert payment_terms_days(0, settings) == 0
    assert payment_terms_days(10, settings) == 10


def _settings_revision(cfg) -> tuple[str, str]:
    """(revision, down_revision) of the migration that adds provider settings."""
    from alembic.script import ScriptDirectory

    for script in ScriptDirectory.from_config(cfg).walk_revisions():
        if hasattr(script.module, "_plan_terms_nullable"):
            return script.revision, str(script.down_revision)
    raise AssertionError("the provider settings migration is missing")


@pytest.fixture
def db_before_settings(backend, db_url):
    """The test database moved back to the revision before provider settings."""
    from alembic import command

    engine = make_engine(db_url)
    cfg = alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, _settings_revision(cfg)[1])
    yield engine, cfg
    with engine.begin() as conn:  # leave the database as the other tests expect it
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
    engine.dispose()


def test_migration_keeps_existing_plans_and_their_links(db_before_settings):
    """SQLite cannot alter nullability in place; the migration must not recreate ``plans`` (that
    would cascade into plan_meters) and must keep every plan's explicit terms."""
    from alembic import command

    engine, cfg = db_before_settings
    now = datetime(2026, 1, 1, tzinfo=UTC).replace(tzinfo=None)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO meters (key, name, event_type, aggregation, filters, group_by, created_at, updated_at)"
                " VALUES ('m', 'M', 'e', 'count', '[]', '[]', :now, :now)"
            ),
            {"now": now},
        )
        conn.execute(
            text(
                "INSERT INTO plans (code, currency, interval, interval_count, billing_anchor, visibility, audience,"
                " payment_terms_days, free_period_days, charges, limits, status, created_at, updated_at)"
                " VALUES ('p', 'USD', 'month', 1, 'calendar', 'public', '{}', 7, 0, '[]', '[]', 'draft', :now, :now)"
            ),
            {"now": now},
        )
        conn.execute(text("INSERT INTO plan_meters (plan_code, meter_key) VALUES ('p', 'm')"))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, _settings_revision(cfg)[0])
    with engine.connect() as conn:
        assert conn.execute(text("SELECT payment_terms_days FROM plans")).scalar_one() == 7
        assert conn.execute(text("SELECT count(*) FROM plan_meters")).scalar_one() == 1
        assert conn.execute(text("SELECT count(*) FROM provider_settings")).scalar_one() == 1
        [column] = [c for c in inspect(conn).get_columns("plans") if c["name"] == "payment_terms_days"]
        assert column["nullable"] is True
        conn.execute(text("UPDATE plans SET payment_terms_days = NULL"))
        conn.commit()
    with engine.begin() as conn:  # and back: null terms become 0
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, _settings_revision(cfg)[1])
    with engine.connect() as conn:
        assert conn.execute(text("SELECT payment_terms_days FROM plans")).scalar_one() == 0
        assert conn.execute(text("SELECT count(*) FROM plan_meters")).scalar_one() == 1
