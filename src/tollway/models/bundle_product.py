from __future__ import annotations

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from tollway.db import Base


class BundleProduct(Base):
    """One product of a bundle; ``position`` keeps the order the caller gave."""

    __tablename__ = "bundle_products"

    bundle_code: Mapped[str] = mapped_column(
        String(200), ForeignKey("bundles.code", ondelete="CASCADE"), primary_key=True
    )
    product_code: Mapped[str] = mapped_column(String(200), ForeignKey("products.code"), primary_key=True, index=True)
    position: Mapped[int] = mapped_column(Integer)
