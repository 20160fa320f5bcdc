"""pending events by transaction: ``events.tx`` and the ``rollup_watermark`` instead of a
``rollup_pending`` row per event

A stored event that a folded meter counts gets ``tx`` (the storing transaction); it is pending
while ``tx >= rollup_watermark.next_tx``. The events pending at upgrade time get ``tx = 0`` and
the watermark starts at 0, so the worker folds them exactly once, first; every other event
already stored keeps ``tx`` NULL (folded, or never pending).

Revision ID: 0022
Revises: 0021
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None

_NOT_NULL = sa.text("tx IS NOT NULL")


def upgrade() -> None:
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("tx", sa.BigInteger(), nullable=True))
    op.execute("UPDATE events SET tx = 0 WHERE id IN (SELECT event_id FROM rollup_pending)")
    op.create_index("ix_events_tx", "events", ["tx"], unique=False, postgresql_where=_NOT_NULL, sqlite_where=_NOT_NULL)
    op.create_index(
        "ix_events_customer_tx",
        "events",
        ["customer", "tx"],
        unique=False,
        postgresql_where=_NOT_NULL,
        sqlite_where=_NOT_NULL,
    )
    op.create_table(
        "rollup_watermark",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("next_tx", sa.BigInteger(), nullable=False),
        sa.Column("tx_base", sa.BigInteger(), server_default="0", nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_rollup_watermark_one_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rollup_watermark")),
    )
    op.execute("INSERT INTO rollup_watermark (id, next_tx) VALUES (1, 0)")
    op.drop_index("ix_rollup_pending_customer", table_name="rollup_pending")
    op.drop_table("rollup_pending")


def downgrade() -> None:
    op.create_table(
        "rollup_pending",
        sa.Column("event_id", sa.String(length=200), nullable=False),
        sa.Column("customer", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_rollup_pending")),
    )
    op.create_index("ix_rollup_pending_customer", "rollup_pending", ["customer"], unique=False)
    op.execute(
        "INSERT INTO rollup_pending (event_id, customer) SELECT id, customer FROM events "
        "WHERE tx >= (SELECT next_tx FROM rollup_watermark)"
    )
    op.drop_table("rollup_watermark")
    op.drop_index("ix_events_customer_tx", table_name="events")
    op.drop_index("ix_events_tx", table_name="events")
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_column("tx")
