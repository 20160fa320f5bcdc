"""Which grants pay an amount, and how much each: pure, no database, no clock.

The order is the contract's: priority (low first), then expiry (soonest first, none last), then
effective date; the grant id breaks the remaining ties so that the order is total and the same
on every run. A grant pays only while usable at the moment given: effective, not expired, not
voided, in the invoice's currency, with something left.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class GrantState:
    id: str
    currency: str
    remaining_minor: int
    priority: int
    effective_at: datetime
    expires_at: datetime | None
    voided: bool = False

    def usable(self, at: datetime, currency: str) -> bool:
        return (
            not self.voided
            and self.remaining_minor > 0
            and self.currency == currency
            and self.effective_at <= at
            and (self.expires_at is None or self.expires_at > at)
        )


def order_key(grant: GrantState) -> tuple[int, bool, datetime, datetime, str]:
    """Priority, then soonest expiry (no expiry last), then effective date, then id."""
    expires = grant.expires_at if grant.expires_at is not None else grant.effective_at
    return (grant.priority, grant.expires_at is None, expires, grant.effective_at, grant.id)


def allocate(grants: Iterable[GrantState], amount_minor: int, *, at: datetime, currency: str) -> list[tuple[str, int]]:
    """``(grant id, minor units)`` taken from the usable grants, in order, to pay ``amount_minor``
    (nothing for an amount of zero or less). Each grant gives at most its remaining; the sum is
    at most ``amount_minor``."""
    out: list[tuple[str, int]] = []
    left = amount_minor
    for grant in sorted((g for g in grants if g.usable(at, currency)), key=order_key):
        if left <= 0:
            break
        take = min(left, grant.remaining_minor)
        out.append((grant.id, take))
        left -= take
    return out


def usable_balance(grants: Sequence[GrantState], *, at: datetime, currency: str) -> int:
    """What the usable grants could still pay at ``at``, in minor units."""
    return sum(g.remaining_minor for g in grants if g.usable(at, currency))
