"""A subscription's billing terms: its plan's cycle in its time zone, contract end, free window.

Pure given the rows: no queries, no clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from tollway.kit.periods import BillingCycle, Period, add_months, local_midnight_after_days
from tollway.kit.time import localize
from tollway.models import Plan, Subscription


@dataclass(frozen=True)
class Terms:
    subscription: Subscription
    plan: Plan
    cycle: BillingCycle

    @classmethod
    def of(cls, subscription: Subscription, plan: Plan) -> Terms:
        cycle = BillingCycle(
            plan.interval,  # type: ignore[arg-type]
            int(plan.interval_count or 1),
            plan.billing_anchor,  # type: ignore[arg-type]
            ZoneInfo(subscription.timezone),
        )
        return cls(subscription, plan, cycle)

    @property
    def tz(self) -> ZoneInfo:
        return self.cycle.tz

    @property
    def start(self) -> datetime:
        return self.subscription.start

    @property
    def ends_at(self) -> datetime | None:
        return self.subscription.ends_at

    def contract_end(self) -> datetime | None:
        """``start`` plus ``contract_months`` on the local calendar (clamped to month end)."""
        months = self.plan.contract_months
        if not months:
            return None
        local = self.start.astimezone(self.tz).replace(tzinfo=None)
        return localize(add_months(local, months), self.tz)

    def free_until(self) -> datetime | None:
        """End of the free window (``free_period_days`` local days from the start), if any."""
        days = int(self.plan.free_period_days or 0)
        if days <= 0:
            return None
        return local_midnight_after_days(self.start, days, self.tz)

    def period(self, k: int) -> tuple[Period, Period] | None:
        """Period ``k`` clipped to the subscription's end, with the unclipped period; ``None``
        when the subscription ended before it."""
        full = self.cycle.period(self.start, k)
        end = self.ends_at
        if end is not None and full.start >= end:
            return None
        clipped = Period(k, full.start, min(full.end, end) if end is not None else full.end)
        return clipped, full

    def period_at(self, instant: datetime) -> tuple[Period, Period] | None:
        if instant < self.start or (self.ends_at is not None and instant >= self.ends_at):
            return None
        return self.period(self.cycle.index_at(self.start, instant))

    def next_unbilled(self) -> tuple[Period, Period] | None:
        """The first period not yet finalized (after ``billed_until``)."""
        billed = self.subscription.billed_until
        k = 0 if billed is None else self.cycle.index_at(self.start, billed)
        found = self.period(k)
        if found is not None and billed is not None and found[0].end <= billed:
            return self.period(k + 1)
        return found
