"""The worker's notify step: alerts in rounds of ``ALERT_BATCH`` customers, the outbox and webhooks
drained after a round that fired something (its alerts go out before the next round) and once after
the last round, not after every round."""

from __future__ import annotations

import pytest

from tollway import worker as worker_module
from tollway.worker import ALERT_BATCH, Worker


@pytest.mark.parametrize(
    ("rounds", "drained_after"),
    [
        ([(ALERT_BATCH, 0), (ALERT_BATCH, 2), (ALERT_BATCH, 0), (3, 0)], [2, 4]),
        ([(ALERT_BATCH, 0), (ALERT_BATCH, 0), (0, 0)], [3]),
        ([(0, 0)], [1]),
        ([(ALERT_BATCH, 1), (7, 1)], [1, 2]),
    ],
)
def test_the_outbox_is_drained_after_rounds_that_fired_and_after_the_last(
    settings, session_factory, monkeypatch, rounds, drained_after
) -> None:  # type: ignore[no-untyped-def]
    script = iter(rounds)
    done: list[int] = []
    drained: list[int] = []
    monkeypatch.setattr(worker_module, "evaluate_changed", lambda factory, limit: (done.append(1), next(script))[1])
    w = Worker(session_factory, settings)
    monkeypatch.setattr(w, "_drain", lambda: drained.append(len(done)))
    assert w.notify_step() == sum(n for _, n in rounds)
    assert len(done) == len(rounds)
    assert drained == drained_after


def test_a_failed_round_still_drains_and_ends_the_step(settings, session_factory, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    def fail(factory, limit):  # type: ignore[no-untyped-def]
        raise RuntimeError("database went away")

    drained: list[bool] = []
    monkeypatch.setattr(worker_module, "evaluate_changed", fail)
    w = Worker(session_factory, settings)
    monkeypatch.setattr(w, "_drain", lambda: drained.append(True))
    assert w.notify_step() == 0
    assert drained == [True]
