"""the events' ``ingested_at`` index as BRIN on PostgreSQL

Every stored event added an entry at the right-hand end of the B-tree on ``ingested_at`` (the
database's clock at the insert), where the batches stored at the same time met on the same
pages. The column grows with the table's pages, so a BRIN index (the least and greatest value of
each range of 32 pages) finds the events ingested after a cutoff as well, and an insert into a
page range not summarized yet costs it nothing. The worker summarizes the new page ranges after
each rollup step (``event.store.summarize_new_pages``); a range not summarized yet is read whole
by a query, so nothing is missed meanwhile. Not ``autosummarize``: it asks autovacuum for each new
range, and when autovacuum is off or its queue is full every request is logged with the insert's
statement, every 32 pages.
Building it reads the table once, holding inserts back meanwhile (docs/scaling.md, Migrations).
SQLite: unchanged (a B-tree).

Revision ID: 0025
Revises: 0024
"""

from __future__ import annotations

from alembic import op

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP INDEX ix_events_ingested_at")
    op.execute("CREATE INDEX ix_events_ingested_at ON events USING brin (ingested_at) WITH (pages_per_range = 32)")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP INDEX ix_events_ingested_at")
    op.execute("CREATE INDEX ix_events_ingested_at ON events (ingested_at)")
