"""The plan's fields are listed once, in ``PlanTerms``: what a PATCH accepts, what is stored and
what the API returns follow from it."""

from __future__ import annotations

from sqlalchemy import inspect

from tollway.catalog.plan_document import NULLABLE, TERMS
from tollway.catalog.schemas import Plan, PlanTerms, PlanUpdate
from tollway.models import Plan as PlanRow


def test_every_term_can_be_patched_stored_and_returned() -> None:
    assert TERMS == tuple(PlanTerms.model_fields)
    assert set(PlanUpdate.model_fields) == set(TERMS)
    assert set(TERMS) <= {c.key for c in inspect(PlanRow).column_attrs}
    assert set(Plan.model_fields) == {"code", *TERMS, "status", "published_at", "created_at", "updated_at"}


def test_only_optional_terms_may_be_set_to_null() -> None:
    assert "currency" not in NULLABLE and "charges" not in NULLABLE and "interval" not in NULLABLE
    assert {"name", "bundle", "fees", "end_date", "payment_terms_days"} <= NULLABLE
