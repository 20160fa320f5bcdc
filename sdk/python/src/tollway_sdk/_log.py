"""Logging helpers: one logger for the SDK and a throttle for repetitive failures.

A metered API that serves thousands of requests per second must not write
thousands of identical log lines per second because, say, the ``identify`` hook
has a bug. :class:`Throttle` lets the first occurrence of each kind of problem
through and then at most one line per ``interval`` seconds, with a count of
what was suppressed in between.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

logger = logging.getLogger("tollway_sdk")


class Throttle:
    def __init__(self, interval: float = 10.0) -> None:
        self._interval = interval
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def log(self, key: str, level: int, msg: str, *args: Any, exc_info: bool = False) -> None:
        now = time.monotonic()
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self._interval:
                self._suppressed[key] = self._suppressed.get(key, 0) + 1
                return
            self._last[key] = now
            suppressed = self._suppressed.pop(key, 0)
        if suppressed:
            msg = f"{msg} ({suppressed} similar messages suppressed)"
        logger.log(level, msg, *args, exc_info=exc_info)
