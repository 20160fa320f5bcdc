from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response
from sqlalchemy.orm import Session

from tollway.auth.dependencies import require_admin
from tollway.catalog import service
from tollway.catalog.schemas import (
    Bundle,
    BundleCreate,
    BundleUpdate,
    Plan,
    PlanCreate,
    PlanPreview,
    PlanPreviewRequest,
    PlanStatus,
    PlanUpdate,
    PreviewLine,
    Product,
    ProductCreate,
    ProductUpdate,
    Visibility,
)
from tollway.deps import get_session
from tollway.kit.listing import ListParams, list_params
from tollway.kit.money import money_str
from tollway.kit.pagination import Page
from tollway.models import Bundle as BundleRow
from tollway.models import Plan as PlanRow
from tollway.models import Product as ProductRow

router = APIRouter(prefix="/v1", dependencies=[Depends(require_admin)])
SessionDep = Annotated[Session, Depends(get_session)]
ListDep = Annotated[ListParams, Depends(list_params)]


def product_schema(row: ProductRow) -> Product:
    return Product(
        code=row.code,
        name=row.name,
        description=row.description,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def bundle_schema(row: BundleRow) -> Bundle:
    return Bundle(
        code=row.code,
        name=row.name,
        description=row.description,
        products=row.product_codes,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def plan_schema(row: PlanRow) -> Plan:
    fields = {name: getattr(row, name) for name in Plan.model_fields}
    return Plan.model_validate({**fields, "charges": row.charges or [], "limits": row.limits or []})


# ---------------------------------------------------------------------------------- products


@router.post("/products", status_code=201, response_model=Product, tags=["products"])
def create_product(body: ProductCreate, session: SessionDep) -> Product:
    return product_schema(service.create_product(session, body))


@router.get("/products", response_model=Page[Product], tags=["products"])
def list_products(session: SessionDep, params: ListDep) -> Page[Product]:
    rows = service.list_products(session, limit=params.limit, after=params.after)
    return Page[Product].of(rows, params.limit, "code", product_schema)


@router.get("/products/{code}", response_model=Product, tags=["products"])
def get_product(code: str, session: SessionDep) -> Product:
    return product_schema(service.get_product(session, code))


@router.patch("/products/{code}", response_model=Product, tags=["products"])
def update_product(code: str, body: ProductUpdate, session: SessionDep) -> Product:
    return product_schema(service.update_product(session, code, body))


# ----------------------------------------------------------------------------------- bundles


@router.post("/bundles", status_code=201, response_model=Bundle, tags=["bundles"])
def create_bundle(body: BundleCreate, session: SessionDep) -> Bundle:
    return bundle_schema(service.create_bundle(session, body))


@router.get("/bundles", response_model=Page[Bundle], tags=["bundles"])
def list_bundles(session: SessionDep, params: ListDep) -> Page[Bundle]:
    rows = service.list_bundles(session, limit=params.limit, after=params.after)
    return Page[Bundle].of(rows, params.limit, "code", bundle_schema)


@router.get("/bundles/{code}", response_model=Bundle, tags=["bundles"])
def get_bundle(code: str, session: SessionDep) -> Bundle:
    return bundle_schema(service.get_bundle(session, code))


@router.patch("/bundles/{code}", response_model=Bundle, tags=["bundles"])
def update_bundle(code: str, body: BundleUpdate, session: SessionDep) -> Bundle:
    return bundle_schema(service.update_bundle(session, code, body))


# ------------------------------------------------------------------------------------- plans


@router.post("/plans", status_code=201, response_model=Plan, tags=["plans"])
def create_plan(body: PlanCreate, session: SessionDep) -> Plan:
    """Create a plan as a draft."""
    return plan_schema(service.create_plan(session, body))


@router.get("/plans", response_model=Page[Plan], tags=["plans"])
def list_plans(
    session: SessionDep,
    params: ListDep,
    status: Annotated[PlanStatus | None, Query(description="draft | published")] = None,
    visibility: Annotated[Visibility | None, Query(description="public | private")] = None,
) -> Page[Plan]:
    rows = service.list_plans(session, limit=params.limit, after=params.after, status=status, visibility=visibility)
    return Page[Plan].of(rows, params.limit, "code", plan_schema)


@router.get("/plans/{code}", response_model=Plan, tags=["plans"])
def get_plan(code: str, session: SessionDep) -> Plan:
    return plan_schema(service.get_plan(session, code))


@router.patch("/plans/{code}", response_model=Plan, tags=["plans"])
def update_plan(code: str, body: PlanUpdate, session: SessionDep) -> Plan:
    """Drafts: change anything. Published plans: only `end_date` (another changed field → 409)."""
    return plan_schema(service.update_plan(session, code, body))


@router.delete("/plans/{code}", status_code=204, response_class=Response, tags=["plans"])
def delete_plan(code: str, session: SessionDep) -> Response:
    """Delete a draft; a published plan → 409."""
    service.delete_plan(session, code)
    return Response(status_code=204)


@router.post("/plans/{code}/publish", response_model=Plan, tags=["plans"])
def publish_plan(code: str, session: SessionDep) -> Plan:
    """Validate the draft and freeze it (status `published`)."""
    return plan_schema(service.publish_plan(session, code))


@router.post("/plans/{code}/preview", response_model=PlanPreview, tags=["plans"])
def preview_plan(code: str, body: PlanPreviewRequest, session: SessionDep) -> PlanPreview:
    """Price one period of the plan (drafts too) for the given quantities."""
    result = service.preview_plan(session, code, body)
    return PlanPreview(
        plan=code,
        currency=result.currency.code,
        lines=[PreviewLine.model_validate(line.to_dict()) for line in result.lines],
        subtotal=money_str(result.subtotal, result.currency),
        total=money_str(result.total, result.currency),
    )
