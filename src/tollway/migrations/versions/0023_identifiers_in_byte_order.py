"""identifiers in byte order on PostgreSQL: the usage path's identifier columns take
``COLLATE "C"`` (``db.identifier``)

Event ids, customers, event types, meter keys and group keys are compared on every stored event
(the B-tree insertions of the events' indexes, the fold's upserts); under a language's collation
each comparison costs several times a byte comparison. Equality is unchanged; order becomes byte
order, as on SQLite. PostgreSQL changes a column's collation without rewriting the table but
rebuilds the indexes on it, holding the table locked meanwhile (docs/scaling.md, Migrations:
about 2 s per 1,000,000 events). SQLite: nothing to do (BINARY already).

Revision ID: 0023
Revises: 0022
"""

from __future__ import annotations

from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None

# table: [(column, type)], as the models declare them (``db.identifier``)
COLUMNS = {
    "events": [("id", "varchar(200)"), ("customer", "varchar(200)"), ("type", "varchar(200)")],
    "meter_rollups": [
        ("meter_key", "varchar(200)"),
        ("customer", "varchar(200)"),
        ("group_key", "text"),
        ("latest_id", "varchar(200)"),
    ],
    "usage_changes": [("customer", "varchar(200)")],
    "distinct_periods": [("meter_key", "varchar(200)"), ("customer", "varchar(200)")],
    "limit_counters": [("customer", "varchar(200)"), ("meter_key", "varchar(200)")],
}


def _collate(collation: str) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, columns in COLUMNS.items():
        # One statement per table: its indexes are rebuilt once.
        changes = ", ".join(f'ALTER COLUMN {c} TYPE {t} COLLATE "{collation}"' for c, t in columns)
        op.execute(f"ALTER TABLE {table} {changes}")


def upgrade() -> None:
    _collate("C")


def downgrade() -> None:
    _collate("default")
