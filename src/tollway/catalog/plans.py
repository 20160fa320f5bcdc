"""The plan lifecycle: drafts are created, changed and deleted freely; publishing freezes a
plan (only its ``end_date`` may change after)."""

from __future__ import annotations

from datetime import datetime

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from tollway.catalog.errors import (
    PlanAlreadyExists,
    PlanAlreadyPublished,
    PlanIncomplete,
    PlanNotFound,
    PublishedPlanImmutable,
    invalid,
)
from tollway.catalog.plan_document import (
    NULLABLE,
    TERMS,
    apply_definition,
    definition_of,
    differs,
    meter_keys,
    terms_of,
    validate_definition,
)
from tollway.catalog.schemas import PlanCreate, PlanUpdate
from tollway.db import get_or_404
from tollway.errors import FieldError, ValidationFailed, validation_errors_from_pydantic
from tollway.kit.pagination import paginate
from tollway.kit.time import utcnow
from tollway.models import Bundle, Meter, Plan


def create_plan(session: Session, data: PlanCreate) -> Plan:
    """Create a plan as a draft; 422 naming every invalid field."""
    if session.get(Plan, data.code) is not None:
        raise PlanAlreadyExists(data.code)
    validate_definition(session, data)
    plan = Plan(code=data.code, status="draft")
    apply_definition(session, plan, data)
    session.add(plan)
    session.flush()
    return plan


def get_plan(session: Session, code: str, *, for_update: bool = False) -> Plan:
    return get_or_404(session, Plan, code, PlanNotFound, for_update=for_update)


def list_plans(
    session: Session,
    *,
    limit: int,
    after: str | None,
    status: str | None = None,
    visibility: str | None = None,
) -> list[Plan]:
    stmt = paginate(select(Plan), Plan.code, limit=limit, after=after)
    if status is not None:
        stmt = stmt.where(Plan.status == status)
    if visibility is not None:
        stmt = stmt.where(Plan.visibility == visibility)
    return list(session.scalars(stmt))


def update_plan(session: Session, code: str, data: PlanUpdate) -> Plan:
    """Drafts: any field (the whole plan is validated again). Published plans: only ``end_date``;
    another field given with a value other than the stored one is a 409 naming it."""
    plan = get_plan(session, code, for_update=True)
    given = [name for name in TERMS if name in data.model_fields_set]
    for name in given:
        if getattr(data, name) is None and name not in NULLABLE:
            raise ValidationFailed.field(name, "cannot be null")

    if plan.status == "published":
        changed = [name for name in given if name != "end_date" and differs(plan, name, getattr(data, name))]
        if changed:
            raise PublishedPlanImmutable(code, changed)
        if "end_date" in given:
            end = data.end_date
            if end is not None and plan.start_date is not None and end <= plan.start_date:
                raise ValidationFailed.field("end_date", "must be after start_date")
            plan.end_date = end
        session.flush()
        return plan

    terms = terms_of(plan)
    for name in given:
        terms[name] = getattr(data, name)
    try:
        definition = PlanCreate.model_validate(terms)
    except ValidationError as exc:  # pragma: no cover - every part was validated on its own
        raise invalid(validation_errors_from_pydantic(exc.errors())) from exc
    validate_definition(session, definition)
    apply_definition(session, plan, definition)
    session.flush()
    return plan


def delete_plan(session: Session, code: str) -> None:
    plan = get_plan(session, code, for_update=True)
    if plan.status == "published":
        raise PlanAlreadyPublished(code, "deleted")
    session.delete(plan)
    session.flush()


def publish_plan(session: Session, code: str, *, at: datetime | None = None) -> Plan:
    """Freeze a draft. It must be valid against today's catalog, bill something (a charge, a
    setup fee or a recurring fee) and not have ended already."""
    at = at or utcnow()
    plan = get_plan(session, code, for_update=True)
    if plan.status == "published":
        raise PlanAlreadyPublished(code, "published again")
    definition = definition_of(plan)
    # Hold the plan's bundle and meters (FOR SHARE on PostgreSQL) until the publish commits, so
    # that neither changes between this validation and the plan becoming published
    # (``update_bundle`` takes the bundle FOR UPDATE before it looks for published plans).
    if plan.bundle is not None:
        session.get(Bundle, plan.bundle, with_for_update={"read": True})
    keys = sorted({key for _, key in meter_keys(definition)})
    if keys:
        session.execute(select(Meter.key).where(Meter.key.in_(keys)).with_for_update(read=True)).all()
    pricing = validate_definition(session, definition)
    assert pricing is not None
    problems: list[FieldError] = []
    if not pricing.charges and pricing.fees.setup is None and pricing.fees.recurring is None:
        problems.append(FieldError("charges", "a plan needs at least one charge, a setup fee or a recurring fee"))
    if plan.end_date is not None and plan.end_date <= at:
        problems.append(FieldError("end_date", f"is already past ({plan.end_date.isoformat()})"))
    if problems:
        raise PlanIncomplete(code, problems)
    plan.status = "published"
    plan.published_at = at
    session.flush()
    return plan
