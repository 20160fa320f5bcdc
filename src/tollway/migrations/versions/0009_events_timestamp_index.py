"""events by timestamp (GET /v1/events newest first)

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-25 17:30:00
"""

from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_events_timestamp", "events", ["timestamp"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_events_timestamp", table_name="events")
