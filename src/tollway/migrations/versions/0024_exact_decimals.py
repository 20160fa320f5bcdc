"""exact decimals: invoice lines' quantities, rollups' extremes and latest values, and low-balance
thresholds keep every digit on both databases (``db.ExactDecimal``)

PostgreSQL kept an invoice line's quantity as ``numeric(38, 12)``, rounding a quantity with more
decimals (a sum of float-valued events: 0.30000000000000004); the billing run then found the
recomputed quantity different from the billed one and added an adjustment line, at every run.
Removing the precision and scale rewrites nothing. SQLite kept these columns, and the rollups'
``value_min``, ``value_max`` and ``latest_value``, in NUMERIC columns, which hold floats: an
integer past 2**63 came back rounded. Each becomes TEXT, its values rewritten as the exact decimal
text of the float stored (``tw_decimal_text``: its shortest repr; SQLite's CAST to TEXT keeps 15
digits), so no stored value changes; a value already rounded when it was stored stays so (for
rollups, until ``tollway rollups rebuild``). SQLite cannot change a column's type: each column is
added anew (a NOT NULL one with a default, which SQLite requires), filled, and the old one dropped
(SQLite 3.35 or later).

Revision ID: 0024
Revises: 0023
"""

from __future__ import annotations

from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None

# (table, column, nullable, PostgreSQL type before)
COLUMNS = [
    ("invoice_lines", "quantity", False, "numeric(38, 12)"),
    ("customers", "low_balance_threshold", True, "numeric(30, 12)"),
    ("meter_rollups", "value_min", True, "numeric"),
    ("meter_rollups", "value_max", True, "numeric"),
    ("meter_rollups", "latest_value", True, "numeric"),
]


def _sqlite_retype(table: str, column: str, nullable: bool, sql_type: str, convert: str) -> None:
    new = f"{column}__retyped"
    not_null = "" if nullable else " NOT NULL DEFAULT 0"
    op.execute(f"ALTER TABLE {table} ADD COLUMN {new} {sql_type}{not_null}")
    op.execute(f"UPDATE {table} SET {new} = {convert.format(column)} WHERE {column} IS NOT NULL")  # noqa: S608 - constants
    op.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
    op.execute(f"ALTER TABLE {table} RENAME COLUMN {new} TO {column}")


def _retype(*, exact: bool) -> None:
    """To the exact types (``exact``), or back to the types before."""
    if op.get_bind().dialect.name == "postgresql":
        for table, column, _, before in COLUMNS:
            if before != "numeric":  # the rollups' columns are unconstrained numeric already
                op.execute(f"ALTER TABLE {table} ALTER COLUMN {column} TYPE {'numeric' if exact else before}")
        return
    # Back: NUMERIC affinity turns the text into a number again.
    sql_type, convert = ("TEXT", "tw_decimal_text({})") if exact else ("NUMERIC", "{}")
    for table, column, nullable, _ in COLUMNS:
        _sqlite_retype(table, column, nullable, sql_type, convert)


def upgrade() -> None:
    _retype(exact=True)


def downgrade() -> None:
    _retype(exact=False)
