from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from tollway.meter.aggregations.base import Aggregation, Partial, to_decimal

if TYPE_CHECKING:
    from tollway.meter.sql import Dialect

NEWEST_FIRST = "ORDER BY e.timestamp DESC, e.id DESC"


def _key_text(value: Any) -> str:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")
    return str(value)


class Latest(Aggregation):
    """The value of the newest event (by timestamp, then id) that has a numeric value. Not an
    aggregate: the newest row is picked with a window function, and partials carry the
    (timestamp, id) key they were picked by."""

    name = "latest"
    value_kind = "number"
    scalar = False

    def raw_select(self, d: Dialect, *, value: str, groups: Sequence[str], source: str) -> str:
        group_cols = "".join(f", {g} AS g{i}" for i, g in enumerate(groups))
        gcols = "".join(f", g{i}" for i in range(len(groups)))
        partition = ", ".join(["bk.idx", *groups])
        return (
            f"SELECT idx{gcols}, ts, id, value FROM "
            f"(SELECT bk.idx AS idx{group_cols}, e.timestamp AS ts, e.id AS id, "
            f"{value} AS value, "
            f"ROW_NUMBER() OVER (PARTITION BY {partition} {NEWEST_FIRST}) AS rn "
            f"FROM {source}) t WHERE rn = 1"
        )

    def partial(self, row: Sequence[Any]) -> Partial:
        # The last three columns: timestamp, event id, value (raw_select and from_rollups alike).
        return Partial(to_decimal(row[-1]), (_key_text(row[-3]), str(row[-2])))

    def rollup_select(
        self,
        d: Dialect,
        *,
        key: str,
        hour: str,
        group_key: str,
        groups: str,
        value: str,
        source: str,
        cond: str,
        customer: str = "e.customer",
        ordered: bool = True,
    ) -> str:
        if d.name == "postgresql":
            order = f" ORDER BY {groups}" if ordered else ""
            return (
                f"SELECT {key}, {customer}, {hour}, {group_key}, COUNT(*), NULL, NULL, NULL, MAX(e.timestamp), "
                f"(array_agg(e.id {NEWEST_FIRST}))[1], (array_agg({value} {NEWEST_FIRST}))[1] "
                f"FROM {source} e WHERE {cond} GROUP BY {groups}{order}"
            )
        # SQLite: with a single MAX(), the bare columns come from the row holding the maximum.
        # The value as decimal text: a float put in the TEXT column would keep 15 digits.
        return (
            f"SELECT mk, customer, hr, gk, n, NULL, NULL, NULL, la, li, tw_decimal_text(lv) FROM ("
            f"SELECT {key} AS mk, {customer} AS customer, {hour} AS hr, {group_key} AS gk, COUNT(*) AS n, "
            f"MAX(e.timestamp || ' ' || e.id) AS _k, e.timestamp AS la, e.id AS li, {value} AS lv "
            f"FROM {source} e WHERE {cond} GROUP BY {groups}) WHERE true"
        )

    def merge_rollups_select(self, d: Dialect, *, key: str, customer: str, source: str) -> str:
        if d.name == "postgresql":
            return (
                f"SELECT {key}, {customer}, u.bucket_start, u.group_key, SUM(u.n), NULL, NULL, NULL, "
                f"{self.from_rollups(d)} FROM {source} GROUP BY u.bucket_start, u.group_key"
            )
        # SQLite: as from_rollups, the bare columns of the row holding the single MAX().
        return (
            f"SELECT mk, cu, bs, gk, n, NULL, NULL, NULL, la, li, lv FROM ("
            f"SELECT {key} AS mk, {customer} AS cu, u.bucket_start AS bs, u.group_key AS gk, SUM(u.n) AS n, "
            f"MAX(u.la || ' ' || u.li) AS _k, u.la AS la, u.li AS li, u.lv AS lv "
            f"FROM {source} GROUP BY u.bucket_start, u.group_key) WHERE true"
        )

    def from_rollups(self, d: Dialect) -> str:
        if d.name == "postgresql":
            return (
                "MAX(u.la), (array_agg(u.li ORDER BY u.la DESC, u.li DESC))[1], "
                "(array_agg(u.lv ORDER BY u.la DESC, u.li DESC))[1]"
            )
        # SQLite returns the other columns of the row where the single MAX() was found.
        return "MAX(u.la || ' ' || u.li), u.la, u.li, u.lv"

    def merge_values(self, a: Partial, b: Partial) -> Partial:
        return a if (a.latest_key or ("", "")) >= (b.latest_key or ("", "")) else b


LATEST = Latest()
