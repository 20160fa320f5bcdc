from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from tollway.db import Base, UTCDateTime
from tollway.kit.time import utcnow
from tollway.models.bundle_product import BundleProduct


class Bundle(Base):
    """A named set of products a plan can sell together; its members are in ``bundle_products``."""

    __tablename__ = "bundles"

    code: Mapped[str] = mapped_column(String(200), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(500))
    description: Mapped[str | None] = mapped_column(String(2000))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    members: Mapped[list[BundleProduct]] = relationship(
        order_by=BundleProduct.position, cascade="all, delete-orphan", lazy="selectin"
    )

    @property
    def product_codes(self) -> list[str]:
        return [m.product_code for m in self.members]
