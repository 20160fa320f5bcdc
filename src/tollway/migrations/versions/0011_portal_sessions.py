"""portal sessions

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-25 16:45:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import tollway.db

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "portal_sessions",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("customer_id", sa.String(length=200), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column(
            "permissions",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("return_url", sa.String(length=2000), nullable=True),
        sa.Column("expires_at", tollway.db.UTCDateTime(), nullable=False),
        sa.Column("revoked_at", tollway.db.UTCDateTime(), nullable=True),
        sa.Column("created_at", tollway.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_portal_sessions_customer_id_customers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_portal_sessions")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_portal_sessions_token_hash")),
    )
    with op.batch_alter_table("portal_sessions", schema=None) as batch_op:
        batch_op.create_index("ix_portal_sessions_customer_id", ["customer_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("portal_sessions", schema=None) as batch_op:
        batch_op.drop_index("ix_portal_sessions_customer_id")
    op.drop_table("portal_sessions")
