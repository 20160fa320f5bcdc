from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from tollway.customer.errors import EVENT_COUNT_CAP, CustomerAlreadyExists, CustomerNotFound
from tollway.customer.schemas import CustomerCreate, CustomerUpdate
from tollway.db import get_or_404
from tollway.event.service import count_events_of
from tollway.kit.pagination import paginate
from tollway.models import Customer


def create_customer(session: Session, data: CustomerCreate) -> Customer:
    if session.get(Customer, data.id) is not None:
        raise CustomerAlreadyExists(data.id)
    values = data.model_dump(exclude={"metadata"})
    customer = Customer(**values, metadata_=data.metadata)
    session.add(customer)
    session.flush()
    return customer


def get_customer(session: Session, customer_id: str) -> Customer:
    return get_or_404(session, Customer, customer_id, CustomerNotFound)


def get_customer_view(session: Session, customer_id: str) -> Customer:
    """The customer; when it does not exist, the 404 says how many events arrived for its id (an
    integration sending events under an id nobody created)."""
    customer = session.get(Customer, customer_id)
    if customer is None:
        raise CustomerNotFound(customer_id, count_events_of(session, customer_id, cap=EVENT_COUNT_CAP))
    return customer


def update_customer(session: Session, customer_id: str, data: CustomerUpdate) -> Customer:
    customer = get_customer(session, customer_id)
    for field, value in data.model_dump(exclude_unset=True).items():
        if value is None and field in ("currency", "timezone", "tax_rate", "payment_collection", "metadata"):
            continue  # not nullable: an explicit null leaves the value as it is
        setattr(customer, "metadata_" if field == "metadata" else field, value)
    session.flush()
    return customer


def list_customers(session: Session, *, limit: int, after: str | None) -> list[Customer]:
    stmt = paginate(select(Customer), Customer.id, limit=limit, after=after)
    return list(session.scalars(stmt))
