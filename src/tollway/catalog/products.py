"""Catalog products and bundles (a bundle groups products a plan may charge for)."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from tollway.catalog.errors import (
    BundleAlreadyExists,
    BundleInUse,
    BundleNotFound,
    ProductAlreadyExists,
    ProductNotFound,
    invalid,
)
from tollway.catalog.schemas import BundleCreate, BundleUpdate, ProductCreate, ProductUpdate
from tollway.db import get_or_404
from tollway.errors import FieldError, ValidationFailed
from tollway.kit.pagination import paginate
from tollway.models import Bundle, BundleProduct, Plan, Product


def create_product(session: Session, data: ProductCreate) -> Product:
    if session.get(Product, data.code) is not None:
        raise ProductAlreadyExists(data.code)
    product = Product(code=data.code, name=data.name, description=data.description)
    session.add(product)
    session.flush()
    return product


def get_product(session: Session, code: str) -> Product:
    return get_or_404(session, Product, code, ProductNotFound)


def update_product(session: Session, code: str, data: ProductUpdate) -> Product:
    product = get_product(session, code)
    for name, value in data.model_dump(exclude_unset=True).items():
        setattr(product, name, value)
    session.flush()
    return product


def list_products(session: Session, *, limit: int, after: str | None) -> list[Product]:
    stmt = paginate(select(Product), Product.code, limit=limit, after=after)
    return list(session.scalars(stmt))


def existing_products(session: Session, codes: Iterable[str]) -> set[str]:
    wanted = set(codes)
    if not wanted:
        return set()
    return set(session.scalars(select(Product.code).where(Product.code.in_(wanted))))


# ----------------------------------------------------------------------------------- bundles


def _check_products(session: Session, products: list[str]) -> None:
    found = existing_products(session, products)
    missing = [FieldError(f"products[{i}]", f"product '{p}' does not exist") for i, p in enumerate(products)]
    errors = [e for e, p in zip(missing, products, strict=True) if p not in found]
    if errors:
        raise invalid(errors, "invalid bundle")


def _set_members(bundle: Bundle, products: list[str]) -> None:
    current = {m.product_code: m for m in bundle.members}
    members = []
    for position, code in enumerate(products):
        member = current.get(code) or BundleProduct(product_code=code)
        member.position = position
        members.append(member)
    bundle.members = members


def create_bundle(session: Session, data: BundleCreate) -> Bundle:
    if session.get(Bundle, data.code) is not None:
        raise BundleAlreadyExists(data.code)
    _check_products(session, data.products)
    bundle = Bundle(code=data.code, name=data.name, description=data.description)
    _set_members(bundle, data.products)
    session.add(bundle)
    session.flush()
    return bundle


def get_bundle(session: Session, code: str) -> Bundle:
    return get_or_404(session, Bundle, code, BundleNotFound)


def update_bundle(session: Session, code: str, data: BundleUpdate) -> Bundle:
    bundle = get_or_404(session, Bundle, code, BundleNotFound, for_update=True)
    changes = data.model_dump(exclude_unset=True)
    if "products" in changes:
        products = changes.pop("products")
        if products is None:
            raise ValidationFailed.field("products", "cannot be null")
        _check_products(session, products)
        removed = set(bundle.product_codes) - set(products)
        if removed:
            _guard_bundle_removal(session, code, removed)
        _set_members(bundle, products)
    for name, value in changes.items():
        setattr(bundle, name, value)
    session.flush()
    return bundle


def _guard_bundle_removal(session: Session, bundle: str, removed: set[str]) -> None:
    plans = session.scalars(select(Plan).where(Plan.bundle == bundle, Plan.status == "published").order_by(Plan.code))
    for plan in plans:
        for i, charge in enumerate(plan.charges):
            if charge.get("product") in removed:
                raise BundleInUse(
                    bundle,
                    f"product '{charge['product']}' is charged by the published plan '{plan.code}' (charges[{i}])",
                )


def list_bundles(session: Session, *, limit: int, after: str | None) -> list[Bundle]:
    stmt = paginate(select(Bundle), Bundle.code, limit=limit, after=after)
    return list(session.scalars(stmt))
