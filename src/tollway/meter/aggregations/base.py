"""An aggregation turns the events of one window (and group) into one value.

Each aggregation answers for itself: what it reads from an event (:attr:`Aggregation.value_kind`),
its SQL per database, whether hourly rollups can hold it and how two partial results merge,
and whether a limit can be kept on it. Adding one is a module here and its entry in
:data:`tollway.meter.aggregations.REGISTRY`.

SQL is rendered through a :class:`tollway.meter.sql.Dialect` ``d`` over events aliased ``e``;
statements that read the rollups and the pending events together see them as ``u`` with the
columns ``n`` (events), ``vs`` (value sum), ``vmin``, ``vmax``, ``la``/``li``/``lv`` (latest
timestamp, event id and value).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from tollway.kit.money import EXACT

if TYPE_CHECKING:
    from tollway.meter.sql import Dialect

ValueKind = Literal["none", "number", "text"]


@dataclass(frozen=True)
class Partial:
    """A mergeable partial aggregate of one window and group."""

    value: Decimal | None
    latest_key: tuple[str, str] | None = None  # (timestamp as text, event id) of the latest value


def to_decimal(value: Any) -> Decimal | None:
    """A numeric column as the database returned it (int, float, text, Decimal) as a Decimal."""
    if value is None:
        return None
    if isinstance(value, Decimal):
        return value
    return Decimal(str(value))


def positions(n: int) -> str:
    """``GROUP BY 1, 2, …, n``'s list."""
    return ", ".join(str(i + 1) for i in range(n))


class Aggregation:
    name: ClassVar[str]
    value_kind: ClassVar[ValueKind]
    """Whether the aggregation reads ``value_property`` as a number (events without a numeric
    value are left out), as text (``unique_count``), or not at all (``count``)."""
    empty: ClassVar[Decimal | None] = None
    """The value of a window without events: zero for count-like aggregations, none otherwise."""
    rolls_up: ClassVar[bool] = True
    """Whether hourly rollups can hold its partials (distinct values do not add up)."""
    keeps_period_sets: ClassVar[bool] = False
    """Whether the worker keeps the distinct values of each customer billing period (``unique_count``:
    see ``meter.distinct``), so that a window equal to one is read from its set."""
    can_be_limited: ClassVar[bool] = False
    """Whether the value of a window is the sum of its events' contributions, so that a counter
    can be kept by adding each stored event and taking a voided one off: limits are enforced on
    such meters only (``count``, ``sum``)."""
    additive: ClassVar[bool] = False
    """Whether the value of a window is the sum of its events' contributions (``count``, ``sum``),
    so that a partial can be taken off another exactly (:meth:`correct`): a total as of a past
    cutoff is then the present total less the events ingested since, plus those voided since
    (``meter.query.usage_totals``). Extremes, distinct values and the latest value cannot be
    corrected that way: removing an event does not say what the extreme was without it."""
    scalar: ClassVar[bool] = True
    """Whether the value is one SQL aggregate over the events (``latest`` is not: it picks a row),
    so that several meters can be computed in one scan (``meter.values.meter_totals``)."""

    # Raw events ---------------------------------------------------------------------------
    def aggregate(self, d: Dialect, value: str) -> str:
        """The SQL aggregate over ``value`` (the expression from ``sql.value_expr``)."""
        raise NotImplementedError(f"'{self.name}' is not one SQL aggregate")

    def aggregate_where(self, d: Dialect, value: str, cond: str) -> str:
        """The SQL aggregate over the events that meet ``cond`` only."""
        return self.aggregate(d, f"(CASE WHEN {cond} THEN {value} END)")

    def raw_select(self, d: Dialect, *, value: str, groups: Sequence[str], source: str) -> str:
        """``SELECT idx, g0…, <partial columns>`` per window (``bk.idx``) and group over
        ``source`` (``events e JOIN … WHERE …``); :meth:`partial` reads a row."""
        group_cols = "".join(f", {g} AS g{i}" for i, g in enumerate(groups))
        return (
            f"SELECT bk.idx AS idx{group_cols}, {self.aggregate(d, value)} AS value "
            f"FROM {source} GROUP BY {positions(1 + len(groups))}"
        )

    def partial(self, row: Sequence[Any]) -> Partial:
        """The partial in a row of :meth:`raw_select` or :meth:`from_rollups` (its last columns)."""
        return Partial(to_decimal(row[-1]))

    # Rollups ------------------------------------------------------------------------------
    def rollup_columns(self, d: Dialect, value: str) -> tuple[str, str, str]:
        """``value_sum, value_min, value_max`` of a group of new events (``NULL`` if unused)."""
        return "NULL", "NULL", "NULL"

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
        """The rollup rows (the ``meter_rollups`` columns, in order) of the events of ``source``
        (aliased ``e``) that meet ``cond``, per customer, hour and group (``groups``, the order
        of the rows unless not ``ordered``); ``customer`` is the customer column's value (a
        constant for the rows of every customer together)."""
        vsum, vmin, vmax = self.rollup_columns(d, value)
        order = f" ORDER BY {groups}" if ordered else ""
        return (
            f"SELECT {key}, {customer}, {hour}, {group_key}, COUNT(*), {vsum}, {vmin}, {vmax}, NULL, NULL, NULL "
            f"FROM {source} e WHERE {cond} GROUP BY {groups}{order}"
        )

    def merge_rollups_select(self, d: Dialect, *, key: str, customer: str, source: str) -> str:
        """Rollup rows (the ``meter_rollups`` columns, in order) merging the rows of ``source``
        (rollup rows as ``u`` with the columns ``bucket_start``, ``group_key``, ``n``, ``vs``,
        ``vmin``, ``vmax``, ``la``, ``li``, ``lv``) per hour and group, under ``customer``: the
        partials merge by the aggregate that made them (a sum of sums, a min of mins, a max of
        maxes; counts add up)."""
        vsum = self.rollup_columns(d, "u.vs")[0]
        vmin = self.rollup_columns(d, "u.vmin")[1]
        vmax = self.rollup_columns(d, "u.vmax")[2]
        return (
            f"SELECT {key}, {customer}, u.bucket_start, u.group_key, SUM(u.n), {vsum}, {vmin}, {vmax}, NULL, NULL, "
            f"NULL FROM {source} GROUP BY u.bucket_start, u.group_key"
        )

    def from_rollups(self, d: Dialect) -> str:
        """The partial's columns over ``u``, rollup rows and pending events together."""
        raise NotImplementedError(f"'{self.name}' has no rollups")

    def merge(self, a: Partial, b: Partial) -> Partial:
        """The partial of two windows' parts (an empty part leaves the other as it is)."""
        if a.value is None:
            return b
        if b.value is None:
            return a
        return self.merge_values(a, b)

    def merge_values(self, a: Partial, b: Partial) -> Partial:
        raise ValueError(f"{self.name} partials cannot be merged")

    def correct(self, total: Partial, less: Partial, more: Partial) -> Partial:
        """``total`` without the events of ``less`` (a part of it) and with those of ``more`` (no
        part of it), exactly (no rounding at any size); only for :attr:`additive` aggregations."""
        if not self.additive:
            raise ValueError(f"{self.name} partials cannot be corrected")
        parts = [p.value for p in (total, less, more)]
        if all(v is None for v in parts):
            return total
        a, b, c = (Decimal(0) if v is None else v for v in parts)
        return Partial(EXACT.add(EXACT.subtract(a, b), c))
