"""invoice snapshot; customer address and tax id

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-25 17:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN (nullable): no table is recreated on SQLite.
    op.add_column(
        "invoices",
        sa.Column("snapshot", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")),
    )
    op.add_column("customers", sa.Column("address", sa.String(length=2000)))
    op.add_column("customers", sa.Column("tax_id", sa.String(length=100)))


def downgrade() -> None:
    for table, column in (("customers", "tax_id"), ("customers", "address"), ("invoices", "snapshot")):
        if op.get_bind().dialect.name == "sqlite":
            op.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
        else:
            op.drop_column(table, column)
