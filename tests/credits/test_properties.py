"""Properties of credit application, checked with hypothesis.

Pure (``credit.allocation``): the amount taken never exceeds the amount due nor any grant's
remaining, only usable grants pay, the result does not depend on the order the grants are
listed in, and the grants are used in the contract's order (an earlier grant is exhausted before a
later one is touched).

Against the database (both backends), model-based: random grants, usage over three months,
voided grants and voided invoices; after every step each grant's remaining equals a plain Python
model's, no remaining is negative, the ledger replays to the balance, and the credits applied
never exceed the credits granted.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from tests.factories import create_customer, send_events, subscribe
from tollway.credit import ledger as credit_ledger
from tollway.credit import service as credit_service
from tollway.credit.allocation import GrantState, allocate, order_key, usable_balance
from tollway.credit.schemas import CreditGrantCreate
from tollway.db import session_scope
from tollway.invoice import service as invoice_service
from tollway.invoice.finalize import finalize_next
from tollway.models import CreditGrant, CreditLedgerEntry, Invoice

T0 = datetime(2026, 1, 1, tzinfo=UTC)
MOMENTS = [T0 + timedelta(days=d) for d in (0, 14, 31, 45, 59, 73, 90, 104)]

grant_states = st.lists(
    st.builds(
        GrantState,
        id=st.just(""),
        currency=st.sampled_from(["USD", "USD", "EUR"]),
        remaining_minor=st.integers(0, 5000),
        priority=st.integers(0, 3),
        effective_at=st.sampled_from(MOMENTS[:4]),
        expires_at=st.none() | st.sampled_from(MOMENTS[2:]),
        voided=st.booleans(),
    ),
    max_size=8,
).map(lambda gs: [GrantState(**{**g.__dict__, "id": f"g{i}"}) for i, g in enumerate(gs)])


@settings(max_examples=300, deadline=None)
@given(grant_states, st.integers(-100, 20000), st.sampled_from(MOMENTS), st.randoms(use_true_random=False))
def test_allocation_is_bounded_ordered_and_deterministic(grants, amount, at, rnd):
    taken = allocate(grants, amount, at=at, currency="USD")
    by_id = {g.id: g for g in grants}
    total = sum(m for _, m in taken)
    usable = usable_balance(grants, at=at, currency="USD")
    assert total == max(0, min(amount, usable))
    assert all(0 < m <= by_id[g].remaining_minor and by_id[g].usable(at, "USD") for g, m in taken)
    assert len({g for g, _ in taken}) == len(taken)
    shuffled = list(grants)
    rnd.shuffle(shuffled)
    assert allocate(shuffled, amount, at=at, currency="USD") == taken  # same grants, same result
    ordered = sorted((g for g in grants if g.usable(at, "USD")), key=order_key)
    assert [g for g, _ in taken] == [g.id for g in ordered[: len(taken)]]  # a prefix of the order
    assert all(m == by_id[g].remaining_minor for g, m in taken[:-1])  # each exhausted before the next


# --- against the database -------------------------------------------------------------------

JAN, FEB, MAR, APR = (datetime(2026, m, 1, tzinfo=UTC) for m in (1, 2, 3, 4))
EFFECTIVE = [JAN, JAN + timedelta(days=14), FEB + timedelta(days=14), MAR + timedelta(days=14)]
EXPIRES = [FEB + timedelta(minutes=30), MAR + timedelta(minutes=30), APR + timedelta(days=14)]
BILLED_AT = [FEB + timedelta(hours=1), MAR + timedelta(hours=1), APR + timedelta(hours=1)]

grant_specs = st.lists(
    st.tuples(
        st.integers(1, 3000),  # cents
        st.integers(0, 2),  # priority
        st.sampled_from(EFFECTIVE),
        st.none() | st.sampled_from(EXPIRES),
    ).filter(lambda g: g[3] is None or g[3] > g[2]),
    min_size=1,
    max_size=4,
)
months = st.lists(
    st.tuples(
        st.integers(0, 40),  # calls (0.50 each)
        st.none() | st.integers(0, 3),  # void this grant before billing
        st.sampled_from([None, "this", "previous"]),  # void this month's invoice, or last month's
    ),
    min_size=3,
    max_size=3,
)


@dataclass
class Model:
    grants: dict[str, GrantState] = field(default_factory=dict)
    granted: int = 0

    def settle(self, at: datetime) -> None:
        for gid, g in self.grants.items():
            if not g.voided and g.expires_at is not None and g.expires_at <= at:
                self.grants[gid] = GrantState(**{**g.__dict__, "remaining_minor": 0})

    def move(self, gid: str, delta: int, **changes: object) -> None:
        g = self.grants[gid]
        self.grants[gid] = GrantState(**{**g.__dict__, "remaining_minor": g.remaining_minor + delta, **changes})


counter = itertools.count()


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(specs=grant_specs, plan=months)
def test_ledger_replays_to_the_balance_and_no_grant_goes_negative(app, api, per_call_plan, specs, plan):
    factory = app.state.sessionmaker
    n = next(counter)
    cid = f"p{n}"
    create_customer(api, id=cid)
    subscribe(api, id=f"{cid}-s", customer=cid, plan=per_call_plan, start="2026-01-01T00:00:00Z")
    model = Model()
    invoices: list[tuple[str, list[tuple[str, int]]]] = []
    with session_scope(factory) as session:
        for i, (cents, priority, effective, expires) in enumerate(specs):
            body = CreditGrantCreate(
                id=f"{cid}-g{i}",
                amount=Decimal(cents) / 100,
                priority=priority,
                effective_at=effective,
                expires_at=expires,
            )
            credit_service.create_grant(session, cid, body, now=JAN)
            model.grants[body.id] = GrantState(body.id, "USD", cents, priority, effective, expires)
            model.granted += cents
    for m, (calls_n, void_grant, void_invoice) in enumerate(plan):
        at = BILLED_AT[m]
        day = (JAN + timedelta(days=31 * m + 10)).replace(day=10)
        send_events(
            api,
            [
                {"id": f"{cid}-{m}-{k}", "customer": cid, "type": "api_call", "timestamp": day.isoformat()}
                for k in range(calls_n)
            ],
        )
        with session_scope(factory) as session:
            if void_invoice == "previous" and invoices:
                _void_invoice(session, model, invoices.pop(), at)
            if void_grant is not None and void_grant < len(specs):
                gid = f"{cid}-g{void_grant}"
                if not model.grants[gid].voided:
                    credit_service.void_grant(session, gid, now=at)
                    model.settle(at)
                    model.move(gid, -model.grants[gid].remaining_minor, voided=True)
        with session_scope(factory) as session:
            invoice, _ = finalize_next(session, f"{cid}-s", until=at, as_of=datetime.now(UTC), now=at)
            assert invoice is not None
            taken = allocate(model.grants.values(), invoice.total_minor, at=at, currency="USD")
            for gid, minor in taken:
                model.move(gid, -minor)
            assert invoice.credits_applied_minor == sum(minor for _, minor in taken) <= invoice.total_minor
            assert invoice.amount_due_minor == invoice.total_minor - invoice.credits_applied_minor
        with session_scope(factory) as session:
            assert credit_ledger.invoice_credits(session, invoice.id) == taken
            if void_invoice == "this":
                _void_invoice(session, model, (invoice.id, taken), at)
            else:
                invoices.append((invoice.id, taken))
        _check(factory, cid, model, at)


def _void_invoice(session, model: Model, invoice: tuple[str, list[tuple[str, int]]], at: datetime) -> None:  # type: ignore[no-untyped-def]
    invoice_id, taken = invoice
    invoice_service.void_invoice(session, invoice_id, now=at)
    model.settle(at)
    for gid, minor in taken:
        g = model.grants[gid]
        gone = g.voided or (g.expires_at is not None and g.expires_at <= at)
        model.move(gid, 0 if gone else minor)


def _check(factory, cid: str, model: Model, at: datetime) -> None:  # type: ignore[no-untyped-def]
    with session_scope(factory) as session:
        credit_ledger.settle_expired(session, cid, now=at)
        model.settle(at)
        rows = {g.id: g for g in session.scalars(select(CreditGrant).where(CreditGrant.customer_id == cid))}
        assert {gid: g.remaining_minor for gid, g in rows.items()} == {
            gid: g.remaining_minor for gid, g in model.grants.items()
        }
        assert all(0 <= g.remaining_minor <= g.amount_minor for g in rows.values())
        replayed = session.scalar(
            select(func.coalesce(func.sum(CreditLedgerEntry.amount_minor), 0)).where(
                CreditLedgerEntry.customer_id == cid, CreditLedgerEntry.at <= at
            )
        )
        assert Decimal(replayed) / 100 == credit_service.balance(session, cid, at)
        applied = session.scalar(
            select(func.coalesce(func.sum(Invoice.credits_applied_minor), 0)).where(
                Invoice.customer_id == cid, Invoice.status != "void"
            )
        )
        assert applied <= model.granted
