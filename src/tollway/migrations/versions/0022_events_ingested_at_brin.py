"""events.ingested_at: a BRIN index on PostgreSQL instead of a B-tree (cheaper to keep at ingestion)

``ingested_at`` grows with the table (the database's clock at each insert), so a block-range
index finds a recent range (the forecast's "events ingested since", ``invoice.forecast``) in a
few block ranges while costing ingestion almost nothing, where the B-tree took an index entry
per event. Every other read of the column is per customer and goes through the customer index.
SQLite has no BRIN: its B-tree stays.

Revision ID: 0022
Revises: 0021
"""

from __future__ import annotations

from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.drop_index("ix_events_ingested_at", table_name="events")
    op.create_index("ix_events_ingested_at", "events", ["ingested_at"], unique=False, postgresql_using="brin")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.drop_index("ix_events_ingested_at", table_name="events")
    op.create_index("ix_events_ingested_at", "events", ["ingested_at"], unique=False)
