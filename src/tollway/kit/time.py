"""Time helpers: RFC 3339 parsing, timezones, and calendar windows aligned in a timezone."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import MAXYEAR, UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$",
)

WINDOWS = ("hour", "day", "month")

BILLING_EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
BILLING_LATEST = datetime(8000, 1, 1, tzinfo=UTC)
"""Subscriptions, plans and invoices live in [1970, 8000): with periods of at most 1000 years
and contracts or free periods of at most 100, every date they compute stays inside the calendar
(year 9999) in any time zone."""


def check_billing_time(value: datetime) -> datetime:
    """Refuse an instant outside :data:`BILLING_EARLIEST` … :data:`BILLING_LATEST` (ValueError)."""
    if not (BILLING_EARLIEST <= value < BILLING_LATEST):
        raise ValueError("must be between 1970-01-01T00:00:00Z and 8000-01-01T00:00:00Z")
    return value


MIN_UTC = datetime.min.replace(tzinfo=UTC)
MAX_UTC = datetime.max.replace(tzinfo=UTC)
"""The first and last instants a datetime can hold: 0001-01-01T00:00:00Z, 9999-12-31T23:59:59.999999Z."""

# The Gregorian calendar repeats every 400 years (146,097 days, a whole number of weeks). Near
# year 1 every zone is before its first transition (a fixed offset) and near year 9999 after its
# last one (a yearly rule), so calendar windows there can be computed 400 years inside the range
# and shifted back exactly.
_CYCLE = timedelta(days=146_097)


def utcnow() -> datetime:
    return datetime.now(UTC)


def parse_rfc3339(value: str) -> datetime:
    """Parse an RFC 3339 timestamp (offset required) into an aware UTC datetime.

    Raises ValueError with a message fit for an API error.
    """
    if not isinstance(value, str) or not _RFC3339.match(value):
        raise ValueError("must be an RFC 3339 timestamp with offset, e.g. 2026-01-05T10:00:00Z")
    text = value
    # Python accepts at most 6 fractional digits: truncate nanoseconds.
    m = re.search(r"\.(\d+)", text)
    if m and len(m.group(1)) > 6:
        text = text[: m.start(1) + 6] + text[m.end(1) :]
    if text[-1] in "Zz":
        text = text[:-1] + "+00:00"
    try:
        return datetime.fromisoformat(text).astimezone(UTC)
    except ValueError as exc:
        raise ValueError(f"not a valid date/time: {exc}") from exc
    except OverflowError as exc:  # e.g. 0001-01-01T00:00:00+01:00 is in year 0 in UTC
        raise ValueError("is out of range: in UTC it must fall in the years 0001 to 9999") from exc


def add_clamped(instant: datetime, delta: timedelta) -> datetime:
    """``instant + delta``, held to [:data:`MIN_UTC`, :data:`MAX_UTC`] instead of overflowing."""
    try:
        return instant + delta
    except OverflowError:
        return MAX_UTC if delta > timedelta(0) else MIN_UTC


def get_zone(name: str) -> ZoneInfo:
    """Return the IANA zone; raises ValueError for an unknown name."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError, OSError) as exc:
        # OSError: a name that is a directory of the zone database ("America") or too long for
        # a file name.
        shown = name if len(name) <= 64 else name[:64] + "…"
        raise ValueError(f"unknown IANA time zone {shown!r}") from exc


def _floor_local(local: datetime, window: str) -> datetime:
    if window == "hour":
        return local.replace(minute=0, second=0, microsecond=0)
    if window == "day":
        return local.replace(hour=0, minute=0, second=0, microsecond=0)
    if window == "month":
        return local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    raise ValueError(f"unknown window {window!r}")


def _add_local(local: datetime, window: str) -> datetime:
    if window == "day":
        return local + timedelta(days=1)
    if window == "month":
        year, month = (local.year + 1, 1) if local.month == 12 else (local.year, local.month + 1)
        if year > MAXYEAR:
            raise OverflowError("date value out of range")
        return local.replace(year=year, month=month)
    raise ValueError(f"unknown window {window!r}")


def _near_the_ends(
    compute: Callable[[datetime, str, ZoneInfo], datetime], instant: datetime, window: str, tz: ZoneInfo
) -> datetime:
    """``compute(instant, window, tz)``, also in the first and last days of the calendar, where
    local time or a window boundary falls outside the years 1 to 9999: there the result is
    computed 400 years inside and shifted back, and a boundary that lies before year 1 or after
    year 9999 is reported as :data:`MIN_UTC` or :data:`MAX_UTC` (callers clip windows to their
    range, so that is where such a window is cut anyway)."""
    try:
        return compute(instant, window, tz)
    except OverflowError:
        pass
    shift = _CYCLE if instant.year < 5000 else -_CYCLE
    result = compute(instant + shift, window, tz)
    try:
        return result - shift
    except OverflowError:
        return MIN_UTC if shift > timedelta(0) else MAX_UTC


def window_start(instant: datetime, window: str, tz: ZoneInfo) -> datetime:
    """The UTC start of the window (aligned in ``tz``) containing ``instant``; :data:`MIN_UTC`
    for a window that starts before year 1."""
    return _near_the_ends(_window_start, instant, window, tz)


def _window_start(instant: datetime, window: str, tz: ZoneInfo) -> datetime:
    if window == "hour":
        # Hours are absolute: step in UTC so DST repeats/skips give 1-hour windows. Zones with
        # sub-hour offsets (Asia/Kolkata) align the hour to local wall-clock time.
        local = instant.astimezone(tz)
        floored = local.replace(minute=0, second=0, microsecond=0)
        return floored.astimezone(UTC)
    local = _floor_local(instant.astimezone(tz).replace(tzinfo=None), window)
    return localize(local, tz)


def localize(naive_local: datetime, tz: ZoneInfo) -> datetime:
    """Wall-clock time in ``tz`` to UTC. A time in a DST gap moves forward by the gap; an
    ambiguous time (DST fold) takes its first occurrence."""
    aware = naive_local.replace(tzinfo=tz, fold=0)
    back = aware.astimezone(UTC).astimezone(tz).replace(tzinfo=None)
    if back != naive_local:  # in a gap: move forward by the gap
        aware = naive_local.replace(tzinfo=tz, fold=1)
    return aware.astimezone(UTC)


def next_window_start(start: datetime, window: str, tz: ZoneInfo) -> datetime:
    """The start of the window after the one containing ``start``; :data:`MAX_UTC` when that
    is after year 9999."""
    return _near_the_ends(_next_window_start, start, window, tz)


def _next_window_start(start: datetime, window: str, tz: ZoneInfo) -> datetime:
    if window == "hour":
        nxt = start + timedelta(hours=1)
        # Re-align in case a sub-hour offset change happened (rare; e.g. Lord Howe Island).
        aligned = _window_start(nxt, "hour", tz)
        return aligned if aligned > start else nxt
    local = start.astimezone(tz).replace(tzinfo=None)
    return localize(_add_local(_floor_local(local, window), window), tz)


def windows(
    start: datetime, end: datetime, window: str | None, tz: ZoneInfo, *, max_windows: int = 10_000
) -> list[tuple[datetime, datetime]]:
    """Half-open windows ``[a, b)`` covering ``[start, end)``, aligned in ``tz`` and clipped to the
    range. Without a window, one window for the whole range."""
    if end <= start:
        return []
    if window is None:
        return [(start, end)]
    out: list[tuple[datetime, datetime]] = []
    cur = window_start(start, window, tz)
    while cur < end:
        nxt = next_window_start(cur, window, tz)
        out.append((max(cur, start), min(nxt, end)))
        if len(out) > max_windows:
            raise ValueError(f"more than {max_windows} windows; use a larger window or a shorter range")
        cur = nxt
    return out
