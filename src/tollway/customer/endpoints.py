from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from sqlalchemy.orm import Session

from tollway.auth.dependencies import require_admin
from tollway.customer import service
from tollway.customer.schemas import Customer, CustomerCreate, CustomerUpdate
from tollway.deps import get_session
from tollway.kit.listing import ListParams, list_params
from tollway.kit.pagination import Page
from tollway.models import Customer as CustomerRow

router = APIRouter(prefix="/v1/customers", tags=["customers"], dependencies=[Depends(require_admin)])
SessionDep = Annotated[Session, Depends(get_session)]


def to_schema(row: CustomerRow) -> Customer:
    return Customer(
        id=row.id,
        name=row.name,
        email=row.email,
        currency=row.currency,
        timezone=row.timezone,
        category=row.category,
        company=row.company,
        address=row.address,
        tax_id=row.tax_id,
        tax_rate=row.tax_rate,
        payment_collection=row.payment_collection,  # type: ignore[arg-type]
        metadata=row.metadata_ or {},
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


@router.post("", status_code=201, response_model=Customer)
def create_customer(body: CustomerCreate, session: SessionDep) -> Customer:
    return to_schema(service.create_customer(session, body))


@router.get("/{customer_id}", response_model=Customer)
def get_customer(customer_id: str, session: SessionDep) -> Customer:
    return to_schema(service.get_customer_view(session, customer_id))


@router.patch("/{customer_id}", response_model=Customer)
def update_customer(customer_id: str, body: CustomerUpdate, session: SessionDep) -> Customer:
    return to_schema(service.update_customer(session, customer_id, body))


@router.get("", response_model=Page[Customer])
def list_customers(session: SessionDep, params: Annotated[ListParams, Depends(list_params)]) -> Page[Customer]:
    rows = service.list_customers(session, limit=params.limit, after=params.after)
    return Page[Customer].of(rows, params.limit, "id", to_schema)
