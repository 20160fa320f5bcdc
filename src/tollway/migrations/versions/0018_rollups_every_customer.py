"""meter rollups: rows of every customer together (customer ''), built by the worker

Revision ID: 0018
Revises: 0017
"""

from __future__ import annotations

from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Rollups now hold, next to each customer's rows, the rows of every customer together
    # (meter.rollup.EVERY_CUSTOMER), which existing meters lack: the worker rebuilds those that
    # have rollups, and their usage is read from the raw events (exact) until it is done.
    op.execute(
        "UPDATE meters SET rollup_status = 'building', rollup_cursor = NULL, rollup_customers_built = 0, "
        "rollup_customers_total = NULL WHERE rollup_status = 'ready' AND aggregation <> 'unique_count' "
        "AND EXISTS (SELECT 1 FROM meter_rollups r WHERE r.meter_key = meters.key)"
    )


def downgrade() -> None:
    op.execute("DELETE FROM meter_rollups WHERE customer = ''")
