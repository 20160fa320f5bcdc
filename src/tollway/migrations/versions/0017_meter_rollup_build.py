"""meters: the state of a rollup build the worker runs in the background

Revision ID: 0017
Revises: 0016
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("meters") as batch_op:
        # Existing meters' rollups were built when they were created or changed.
        batch_op.add_column(sa.Column("rollup_status", sa.String(20), nullable=False, server_default="ready"))
        batch_op.add_column(sa.Column("rollup_cursor", sa.String(200), nullable=True))
        batch_op.add_column(sa.Column("rollup_customers_built", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("rollup_customers_total", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("meters") as batch_op:
        batch_op.drop_column("rollup_customers_total")
        batch_op.drop_column("rollup_customers_built")
        batch_op.drop_column("rollup_cursor")
        batch_op.drop_column("rollup_status")
