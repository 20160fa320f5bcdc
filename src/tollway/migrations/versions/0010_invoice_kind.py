"""invoice kind: regular (one subscription period) or correction (late or voided events after the
subscription ended)

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-25 18:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("invoices", sa.Column("kind", sa.String(length=20), nullable=False, server_default="regular"))


def downgrade() -> None:
    with op.batch_alter_table("invoices", schema=None) as batch_op:
        batch_op.drop_column("kind")
