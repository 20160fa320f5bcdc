"""events: index the voided events by ``voided_at`` (partial: only voided rows), so a billing read
as of a cutoff finds the events voided since it without scanning the events

Revision ID: 0021
Revises: 0020
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    voided = sa.text("voided_at IS NOT NULL")
    op.create_index(
        "ix_events_voided_at", "events", ["voided_at"], unique=False, postgresql_where=voided, sqlite_where=voided
    )


def downgrade() -> None:
    op.drop_index("ix_events_voided_at", table_name="events")
