"""Batched, retrying, thread-safe delivery of usage events to ``POST /v1/events``.

Life of an event
----------------
1. ``track()`` validates the event, gives it its idempotency ``id`` (the caller's
   or ``evt_`` + 32 random hex digits) and its ``timestamp`` (the caller's or *now*), encrypts
   the configured fields, serialises it to JSON and appends the bytes to an
   in-memory queue. It never does I/O and never waits for the network.
2. One daemon thread per client takes events off the queue in batches — as soon as
   ``batch_size`` events are waiting, when the oldest waiting event is
   ``flush_interval`` seconds old, or when ``flush()``/``close()`` asks — and POSTs
   them gzip-compressed as ``{"events":[...]}`` (≤ 1000 events, ≤ 1 MiB raw).
3. 429, 5xx and network errors are retried with exponential backoff and full
   jitter, or after ``Retry-After`` when the server sends it. The retried body is
   byte-for-byte the same batch, so the ids are the same and the server counts
   anything it already stored as a duplicate. Other 4xx answers are not retried.
"""

from __future__ import annotations

import atexit
import functools
import gzip
import logging
import os
import random
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from decimal import Decimal
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from tollway_sdk import __version__
from tollway_sdk._json import dumps, rfc3339, utc_now_rfc3339
from tollway_sdk._log import Throttle, logger
from tollway_sdk.limits import Decision, LimitChecker

__all__ = ["MAX_BATCH_EVENTS", "MAX_BODY_BYTES", "Client", "Stats"]

MAX_BATCH_EVENTS = 1000
MAX_BODY_BYTES = 1024 * 1024
MAX_ID_LENGTH = 200
_BODY_PREFIX = b'{"events":['
_BODY_SUFFIX = b"]}"
_MAX_EVENT_BYTES = MAX_BODY_BYTES - len(_BODY_PREFIX) - len(_BODY_SUFFIX)


class Stats:
    """Counters of what the client did, safe to read from any thread.

    - ``tracked``: events accepted into the queue by ``track()``.
    - ``dropped``: events refused by ``track()`` because the queue was full or the
      client was closed (overflow policy: the newest event is dropped).
    - ``sent``: events in batches the server answered with 2xx.
    - ``accepted`` / ``duplicates``: the server's own counts from those answers.
    - ``rejected``: events the server refused: per-event ``errors`` of a 202, or a
      whole batch answered with a 4xx other than 429 (not retried).
    - ``failed``: events given up on after ``max_retries`` retries, or still
      undelivered when ``close()`` ran out of time.
    - ``retries``: retry attempts; ``batches``: batches answered 2xx.
    - ``unidentified``: middleware requests skipped because ``identify`` returned None.
    - ``errors``: failures swallowed by the middleware (hooks raising, bad return values).
    """

    FIELDS = (
        "tracked",
        "dropped",
        "sent",
        "accepted",
        "duplicates",
        "rejected",
        "failed",
        "retries",
        "batches",
        "unidentified",
        "errors",
    )

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.tracked = 0
        self.dropped = 0
        self.sent = 0
        self.accepted = 0
        self.duplicates = 0
        self.rejected = 0
        self.failed = 0
        self.retries = 0
        self.batches = 0
        self.unidentified = 0
        self.errors = 0

    def add(self, **counts: int) -> None:
        with self._lock:
            for name, n in counts.items():
                setattr(self, name, getattr(self, name) + n)

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return {name: getattr(self, name) for name in self.FIELDS}

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v}" for k, v in self.snapshot().items())
        return f"Stats({inner})"


# A queued event: (id, JSON bytes, time.monotonic() when queued). A plain tuple
# of atomic values, so that the garbage collector stops tracking it: a queue of
# thousands of events adds nothing to the cost of each collection.
_Item = tuple[str, bytes, float]
_ID, _DATA, _QUEUED_AT = 0, 1, 2


def _parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (delay-seconds or HTTP-date), or None."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        seconds = (when - datetime.now(timezone.utc)).total_seconds()
    if seconds != seconds:  # NaN
        return None
    return max(0.0, seconds)


# Every live client, so that a forked child can reset them (see _after_fork).
_clients: weakref.WeakSet[Client] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for client in list(_clients):
        client._after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _atexit_close(ref: weakref.ReferenceType[Client]) -> None:
    client = ref()
    if client is not None:
        client.close()


class Client:
    """Sends usage events to a Tollway server from a background thread.

    Thread-safe: any number of threads may call ``track()`` concurrently. From
    asyncio code ``track()`` is safe to call directly (it never blocks on I/O);
    see :class:`tollway_sdk.AsyncClient` for awaitable ``flush``/``close``.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        batch_size: int = 500,
        flush_interval: float = 1.0,
        max_queue_size: int = 10_000,
        timeout: float = 10.0,
        max_retries: int = 10,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        max_retry_after: float = 60.0,
        close_timeout: float = 10.0,
        gzip_level: int = 6,
        encrypt_fields: tuple[str, ...] | list[str] = (),
        encryption_key: bytes | str | None = None,
        transport: httpx.BaseTransport | None = None,
        limits_fail_open: bool = True,
    ) -> None:
        if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
            raise ValueError("base_url must be an http:// or https:// URL, e.g. http://127.0.0.1:8080")
        if not api_key:
            raise ValueError("api_key is required")
        if not 1 <= batch_size <= MAX_BATCH_EVENTS:
            raise ValueError(f"batch_size must be between 1 and {MAX_BATCH_EVENTS}")
        if flush_interval <= 0:
            raise ValueError("flush_interval must be > 0")
        if max_queue_size < 1:
            raise ValueError("max_queue_size must be >= 1")
        if max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        if not 0 <= gzip_level <= 9:
            raise ValueError("gzip_level must be 0 (no compression) to 9")
        self.base_url = base_url.rstrip("/")
        self.endpoint = f"{self.base_url}/v1/events"
        self._api_key = api_key
        self.batch_size = batch_size
        self.flush_interval = float(flush_interval)
        self.max_queue_size = max_queue_size
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.max_retry_after = max_retry_after
        self.close_timeout = close_timeout
        self.gzip_level = gzip_level
        self._transport = transport
        self.limits_fail_open = limits_fail_open

        self._encrypt: Callable[[Mapping[str, Any]], dict[str, Any]] | None = None
        if encrypt_fields:
            if encryption_key is None:
                raise ValueError("encrypt_fields needs an encryption_key")
            from tollway_sdk.crypto import FieldEncryptor

            self._encrypt = FieldEncryptor(encryption_key, encrypt_fields).encrypt
        elif encryption_key is not None:
            raise ValueError("encryption_key given but encrypt_fields is empty")

        self.stats = Stats()
        self._throttle = Throttle()
        self._init_state()
        _clients.add(self)
        self._atexit_hook = _make_atexit_hook(self)
        atexit.register(self._atexit_hook)

    # -- state -------------------------------------------------------------------

    def _init_state(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._queue: deque[_Item] = deque()
        self._enqueued = 0  # events ever put on the queue
        self._settled = 0  # events taken off it and finished with (whatever the outcome)
        self._flush_waiters = 0
        self._closing = False
        self._closed = False
        self._abort = threading.Event()  # close() ran out of time: stop retrying
        self._thread: threading.Thread | None = None

    def _after_fork(self) -> None:
        # Threads do not survive fork(): the child gets fresh locks, an empty queue
        # and will start its own worker on first use. What the parent had queued
        # stays the parent's to deliver.
        closed = self._closed or self._closing
        self.stats._lock = threading.Lock()
        self._throttle = Throttle()
        self._init_state()
        self._closed = self._closing = closed

    @property
    def queue_size(self) -> int:
        with self._cond:
            return len(self._queue)

    # -- public API --------------------------------------------------------------

    @functools.cached_property
    def limits(self) -> LimitChecker:
        """Limit checks with this client's server and key (see :mod:`tollway_sdk.limits`)."""
        return LimitChecker(self.base_url, self._api_key, fail_open=self.limits_fail_open, transport=self._transport)

    def check(self, customer: str, meter: str | None = None, quantity: int | str | Decimal = 1) -> Decision:
        """May ``customer`` use ``quantity`` more of ``meter`` (every limit when omitted)? Asks
        ``POST /v1/limits/check`` now; fail-open when Tollway cannot be reached."""
        return self.limits.check(customer, meter, quantity)

    def track(
        self,
        customer: str,
        type: str,
        properties: Mapping[str, Any] | None = None,
        id: str | None = None,
        timestamp: datetime | str | None = None,
    ) -> str | None:
        """Queue one event; return its id, or None when it was dropped.

        Raises ``TypeError``/``ValueError`` for an invalid event (empty customer or
        type, id over 200 characters, naive datetime, properties that are not
        JSON-serialisable, an event over 1 MiB). Never raises for delivery
        conditions: a full queue or a closed client drop the event and count it in
        ``stats.dropped``.
        """
        if not isinstance(customer, str) or not customer:
            raise ValueError("customer must be a non-empty string")
        if not isinstance(type, str) or not type:
            raise ValueError("type must be a non-empty string")
        if id is None:
            id = f"evt_{os.urandom(16).hex()}"  # 128 random bits, like a uuid4
        elif not isinstance(id, str) or not id or len(id) > MAX_ID_LENGTH:
            raise ValueError(f"id must be a non-empty string of at most {MAX_ID_LENGTH} characters")
        if timestamp is None:
            ts = utc_now_rfc3339()
        elif isinstance(timestamp, datetime):
            ts = rfc3339(timestamp)
        elif isinstance(timestamp, str) and timestamp:
            ts = timestamp
        else:
            raise TypeError("timestamp must be an aware datetime or an RFC 3339 string")
        if properties is None:
            props: Mapping[str, Any] = {}
        elif properties.__class__ is dict or isinstance(properties, Mapping):
            props = properties
        else:
            raise TypeError("properties must be a mapping")
        if self._encrypt is not None:
            props = self._encrypt(props)
        data = dumps({"id": id, "customer": customer, "type": type, "timestamp": ts, "properties": props})
        if len(data) > _MAX_EVENT_BYTES:
            raise ValueError(f"event {id} is {len(data)} bytes once encoded; the limit is {_MAX_EVENT_BYTES}")

        with self._cond:
            if self._closing:
                dropped_reason = "closed"
            elif len(self._queue) >= self.max_queue_size:
                dropped_reason = "full"
            else:
                self._queue.append((id, data, time.monotonic()))
                self._enqueued += 1
                # tracked/dropped are only ever changed here, under this lock.
                self.stats.tracked += 1
                n = len(self._queue)
                if self._thread is None:
                    self._start_worker()
                elif n == 1 or n == self.batch_size:
                    self._cond.notify()
                dropped_reason = ""
            if dropped_reason:
                self.stats.dropped += 1
        if dropped_reason:
            if dropped_reason == "full":
                self._throttle.log(
                    "overflow",
                    logging.WARNING,
                    "Tollway event queue is full (%d events): dropping new events (%d dropped so far)",
                    self.max_queue_size,
                    self.stats.dropped,
                )
            else:
                self._throttle.log("closed", logging.WARNING, "Tollway client is closed: event dropped")
            return None
        return id

    def flush(self, timeout: float | None = None) -> bool:
        """Send everything tracked so far and wait until it is settled.

        Settled means delivered, rejected by the server or given up on (see
        ``stats``). Returns False if ``timeout`` seconds passed first.
        """
        with self._cond:
            target = self._enqueued
            if self._settled >= target:
                return True
            self._flush_waiters += 1
            self._cond.notify_all()
            try:
                return self._cond.wait_for(lambda: self._settled >= target, timeout)
            finally:
                self._flush_waiters -= 1

    def close(self, timeout: float | None = None) -> bool:
        """Stop accepting events, deliver what is queued and stop the worker.

        Waits at most ``timeout`` seconds (default ``close_timeout``). Events still
        undelivered then are abandoned and counted in ``stats.failed``. Returns
        True when everything was settled in time. Idempotent; also runs at exit.
        """
        if timeout is None:
            timeout = self.close_timeout
        with self._cond:
            if self._closed:
                return self._settled >= self._enqueued
            self._closing = True
            self._cond.notify_all()
            thread = self._thread
        ok = True
        if thread is not None and thread.is_alive():
            thread.join(timeout)
            if thread.is_alive():
                ok = False
                self._abort.set()
                with self._cond:
                    self._cond.notify_all()
                thread.join(max(1.0, min(self.timeout, 5.0)))
        with self._cond:
            self._closed = True
            leftover = len(self._queue)
            if leftover:
                # The worker never started or could not finish: nothing else will send these.
                self._queue.clear()
                self._settled += leftover
                self._cond.notify_all()
        if leftover:
            ok = False
            self.stats.add(failed=leftover)
            logger.error("Tollway client closed with %d undelivered events", leftover)
        atexit.unregister(self._atexit_hook)
        if "limits" in self.__dict__:  # a checker was made: close its connections
            self.limits.close()
        return ok

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- worker ------------------------------------------------------------------

    def _start_worker(self) -> None:
        # Called with self._cond held.
        self._thread = threading.Thread(target=self._run, name="tollway-sdk-worker", daemon=True)
        self._thread.start()

    def _http(self) -> httpx.Client:
        return httpx.Client(
            timeout=self.timeout,
            transport=self._transport,
            headers={
                "Authorization": f"Bearer {self._api_key}",
                "Content-Type": "application/json",
                "Accept": "application/json",
                "User-Agent": f"tollway-sdk-python/{__version__}",
            },
        )

    def _run(self) -> None:
        try:
            http: httpx.Client | None = self._http()
        except Exception:
            logger.exception("Tollway SDK: cannot create the HTTP client; events will be given up")
            http = None
        try:
            while True:
                batch = self._next_batch()
                if batch is None:
                    return
                try:
                    if http is None:
                        self._give_up(batch, "no HTTP client")
                    elif self._abort.is_set():
                        self._give_up(batch, "client closed before delivery")
                    else:
                        self._deliver(http, batch)
                except Exception:
                    logger.exception("Tollway SDK: unexpected error delivering %d events", len(batch))
                    self.stats.add(failed=len(batch))
                finally:
                    with self._cond:
                        self._settled += len(batch)
                        self._cond.notify_all()
        finally:
            if http is not None:
                http.close()

    def _next_batch(self) -> list[_Item] | None:
        """Block until a batch is due; None when closing and the queue is empty."""
        with self._cond:
            while True:
                if self._queue:
                    if len(self._queue) >= self.batch_size or self._flush_waiters or self._closing:
                        break
                    wait = self._queue[0][_QUEUED_AT] + self.flush_interval - time.monotonic()
                    if wait <= 0:
                        break
                    self._cond.wait(wait)
                elif self._closing:
                    return None
                else:
                    self._cond.wait()
            if self._abort.is_set():
                # close() ran out of time: everything left is given up on at once.
                batch = list(self._queue)
                self._queue.clear()
                return batch
            batch: list[_Item] = []
            size = len(_BODY_PREFIX) + len(_BODY_SUFFIX)
            while self._queue and len(batch) < self.batch_size:
                extra = len(self._queue[0][_DATA]) + (1 if batch else 0)
                if size + extra > MAX_BODY_BYTES:
                    break
                size += extra
                batch.append(self._queue.popleft())
            return batch

    def _backoff(self, attempt: int) -> float:
        # "Full jitter": uniform in [0, min(cap, base * 2**attempt)].
        return random.uniform(0.0, min(self.backoff_max, self.backoff_base * (2**attempt)))

    def _deliver(self, http: httpx.Client, batch: list[_Item]) -> None:
        body = _BODY_PREFIX + b",".join(item[_DATA] for item in batch) + _BODY_SUFFIX
        headers = {}
        if self.gzip_level:
            body = gzip.compress(body, compresslevel=self.gzip_level)
            headers["Content-Encoding"] = "gzip"
        attempt = 0
        while True:
            retry_after: float | None = None
            try:
                response = http.post(self.endpoint, content=body, headers=headers)
            except httpx.HTTPError as exc:
                reason = f"{type(exc).__name__}: {exc}"
            else:
                status = response.status_code
                if 200 <= status < 300:
                    self._on_success(batch, response)
                    return
                if status != 429 and status < 500:
                    self._on_rejected(batch, response)
                    return
                reason = f"HTTP {status}"
                retry_after = _parse_retry_after(response.headers.get("Retry-After"))
            if attempt >= self.max_retries:
                self._give_up(batch, f"{reason} after {attempt} retries")
                return
            delay = self._backoff(attempt) if retry_after is None else min(retry_after, self.max_retry_after)
            attempt += 1
            self.stats.add(retries=1)
            self._throttle.log(
                "retry",
                logging.WARNING,
                "Tollway: sending %d events failed (%s); retry %d/%d in %.2fs",
                len(batch),
                reason,
                attempt,
                self.max_retries,
                delay,
            )
            if self._abort.wait(delay):
                self._give_up(batch, f"{reason}; client closed while retrying")
                return

    def _on_success(self, batch: list[_Item], response: httpx.Response) -> None:
        accepted = duplicates = 0
        errors: list[Any] = []
        try:
            payload = response.json()
        except ValueError:
            payload = None
        if isinstance(payload, dict):
            accepted = _int(payload.get("accepted"))
            duplicates = _int(payload.get("duplicates"))
            if isinstance(payload.get("errors"), list):
                errors = payload["errors"]
        for error in errors:
            if isinstance(error, dict):
                index = error.get("index")
                event_id = error.get("id")
                if event_id is None and isinstance(index, int) and 0 <= index < len(batch):
                    event_id = batch[index][_ID]
                message = error.get("message")
            else:
                index, event_id, message = None, None, error
            self._throttle.log(
                "event-error",
                logging.WARNING,
                "Tollway rejected event %s (index %s in batch): %s",
                event_id,
                index,
                message,
            )
        self.stats.add(sent=len(batch), batches=1, accepted=accepted, duplicates=duplicates, rejected=len(errors))

    def _on_rejected(self, batch: list[_Item], response: httpx.Response) -> None:
        detail = response.text[:500]
        self.stats.add(rejected=len(batch))
        self._throttle.log(
            f"http-{response.status_code}",
            logging.ERROR,
            "Tollway refused a batch of %d events with HTTP %d (not retried): %s",
            len(batch),
            response.status_code,
            detail,
        )

    def _give_up(self, batch: list[_Item], reason: str) -> None:
        self.stats.add(failed=len(batch))
        logger.error(
            "Tollway: giving up on %d events (%s); first id %s", len(batch), reason, batch[0][_ID] if batch else "-"
        )


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _make_atexit_hook(client: Client) -> Callable[[], None]:
    ref = weakref.ref(client)

    def hook() -> None:
        _atexit_close(ref)

    return hook
