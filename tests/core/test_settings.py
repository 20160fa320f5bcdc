"""Settings added in round 2: the scheduled billing run can be turned off; the secret key is
long enough when set."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from pydantic import ValidationError

from tollway.config import Settings
from tollway.worker import Worker


def test_secret_key_must_have_32_characters() -> None:
    assert Settings(secret_key="x" * 32).secret_key == "x" * 32
    assert Settings().secret_key is None
    with pytest.raises(ValidationError, match="at least 32 characters"):
        Settings(secret_key="short")


def test_a_short_secret_key_stops_the_cli_with_a_clear_message(tmp_path) -> None:  # type: ignore[no-untyped-def]
    env = {**os.environ, "TOLLWAY_DATABASE_URL": f"sqlite:///{tmp_path}/t.db", "TOLLWAY_SECRET_KEY": "short"}
    out = subprocess.run([sys.executable, "-m", "tollway", "migrate"], env=env, capture_output=True, text=True)
    assert out.returncode == 2
    assert "TOLLWAY_SECRET_KEY" in out.stderr and "Traceback" not in out.stderr


@pytest.mark.parametrize(("interval", "runs"), [(0, 0), (3600, 1)])
def test_billing_run_interval_zero_turns_the_scheduled_run_off(settings, session_factory, interval, runs) -> None:  # type: ignore[no-untyped-def]
    worker = Worker(session_factory, settings.model_copy(update={"billing_run_interval_seconds": interval}))
    calls: list[int] = []
    worker.billing_step = lambda: calls.append(1) or 0  # type: ignore[method-assign]
    worker.run_once()
    worker.run_once()
    assert len(calls) == runs
    with pytest.raises(ValidationError):
        Settings(billing_run_interval_seconds=-1)
