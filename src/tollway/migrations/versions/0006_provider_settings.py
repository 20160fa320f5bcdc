"""provider settings; a plan's payment terms may be null (= the settings' terms)

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25 16:45:00
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import tollway.db

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    table = op.create_table(
        "provider_settings",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column(
            "document", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.Column("updated_at", tollway.db.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_provider_settings")),
    )
    # The one row the service reads and locks; defaults fill every field not set yet.
    op.bulk_insert(table, [{"id": 1, "document": {}, "updated_at": datetime.now(UTC)}])
    _plan_terms_nullable(True)


def _plan_terms_nullable(nullable: bool) -> None:
    """plans.payment_terms_days NULL = the settings' terms. SQLite cannot change a column's
    nullability in place, and recreating ``plans`` (batch mode) would drop it while foreign keys
    are on, cascading into plan_meters: add the new column, copy, drop the old one, rename."""
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        if not nullable:
            op.execute("UPDATE plans SET payment_terms_days = 0 WHERE payment_terms_days IS NULL")
        op.alter_column("plans", "payment_terms_days", existing_type=sa.Integer(), nullable=nullable)
        return
    constraint = "" if nullable else " NOT NULL DEFAULT 0"
    op.execute(f"ALTER TABLE plans ADD COLUMN payment_terms_days_new INTEGER{constraint}")
    op.execute(
        "UPDATE plans SET payment_terms_days_new = COALESCE(payment_terms_days, 0)"
        if not nullable
        else "UPDATE plans SET payment_terms_days_new = payment_terms_days"
    )
    op.execute("ALTER TABLE plans DROP COLUMN payment_terms_days")
    op.execute("ALTER TABLE plans RENAME COLUMN payment_terms_days_new TO payment_terms_days")


def downgrade() -> None:
    _plan_terms_nullable(False)
    op.drop_table("provider_settings")
