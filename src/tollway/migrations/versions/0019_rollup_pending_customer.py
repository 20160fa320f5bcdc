"""rollup_pending: the event's customer, indexed (a limits check finds its customer's pending events)

Revision ID: 0019
Revises: 0018
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("rollup_pending", schema=None) as batch_op:
        batch_op.add_column(sa.Column("customer", sa.String(length=200), nullable=True))
    op.execute(
        "UPDATE rollup_pending SET customer = (SELECT e.customer FROM events e WHERE e.id = rollup_pending.event_id)"
    )
    op.create_index("ix_rollup_pending_customer", "rollup_pending", ["customer"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_rollup_pending_customer", table_name="rollup_pending")
    with op.batch_alter_table("rollup_pending", schema=None) as batch_op:
        batch_op.drop_column("customer")
