"""Where counters live: the database (default) or Redis (``TOLLWAY_REDIS_URL``). Same answers.

Both backends keep, per customer, the profile the counters were seeded for and one counter per
(meter, window kind, window). Exactness rests on one ordering rule: ingestion adds to the counters
*inside* its database transaction, holding the shared ingestion lock (``meter.rollup``: an
advisory lock on PostgreSQL, the single writer on SQLite), and seeding computes the counters
from the events holding that lock exclusively. So a seed sees every batch that counted before
it, and every batch after it counts into the seeded counters.

- Database: ``limit_counters`` rows upserted in the batch's transaction; a seed replaces the
  customer's rows. Exact by transaction.
- Redis: a profile key per customer (with the seed's key version and the Redis epoch), and a hash
  per counter whose fields are decimal scales (``"2" → 1234`` is 12.34), incremented with
  ``HINCRBY`` by one Lua script per batch, so sums stay exact decimals. Counter keys expire
  with their window; profiles after an hour (a seed at most hourly bounds any drift). If an
  increment cannot reach Redis, the process bumps the epoch as soon as Redis answers again,
  which makes every check seed again from the database.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Any, Protocol

import orjson
from sqlalchemy import Connection, text
from sqlalchemy.orm import Session

from tollway.limit.profile import Profile
from tollway.limit.tally import EXACT, GRACE, CounterKey
from tollway.meter.sql import dialect_for

log = logging.getLogger("tollway.limit")

Conn = Connection | Session

PROFILE_TTL = timedelta(hours=1)


@dataclass(frozen=True)
class Stored:
    """A customer's stored profile: its content version, and whether it is still trustworthy."""

    version: str
    fresh: bool


class CounterBackend(Protocol):
    name: str

    def load_profiles(self, conn: Conn, customers: Iterable[str]) -> dict[str, Profile]: ...

    def add(
        self,
        conn: Conn,
        increments: Mapping[CounterKey, Decimal],
        profiles: Mapping[str, Profile],
        thresholds: Mapping[CounterKey, Decimal],
    ) -> dict[CounterKey, Decimal]:
        """Add to the counters of the stored ``profiles``. Returns the new value of (at least)
        every counter now at or past its threshold (a limit may have been reached there)."""
        ...

    def read(
        self, conn: Conn, customer: str, keys: Sequence[CounterKey]
    ) -> tuple[Stored | None, dict[CounterKey, Decimal]]: ...

    def seed(self, conn: Conn, profile: Profile, values: Mapping[CounterKey, Decimal], now: datetime) -> None: ...

    def purge(self, conn: Conn, before: datetime) -> int: ...


def as_utc(value: Any) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _doc(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else orjson.loads(value)


@lru_cache(maxsize=20_000)
def parse_profile(raw: str) -> Profile:
    """A stored profile; parsed once per distinct document (ingestion reads them every batch)."""
    return Profile.from_doc(orjson.loads(raw))


def _dialect_name(conn: Conn) -> str:
    bind = conn.get_bind() if isinstance(conn, Session) else conn
    return bind.dialect.name


class DatabaseCounters:
    name = "database"

    def load_profiles(self, conn: Conn, customers: Iterable[str]) -> dict[str, Profile]:
        wanted = sorted(set(customers))
        if not wanted:
            return {}
        d = dialect_for(_dialect_name(conn))
        sql = f"SELECT CAST(profile AS TEXT) FROM limit_profiles WHERE customer {d.in_list(wanted, 'text')}"
        return {p.customer: p for p in (parse_profile(r[0]) for r in conn.execute(text(sql), d.params))}

    def add(
        self,
        conn: Conn,
        increments: Mapping[CounterKey, Decimal],
        profiles: Mapping[str, Profile],
        thresholds: Mapping[CounterKey, Decimal],
    ) -> dict[CounterKey, Decimal]:
        if not increments:
            return {}
        name = _dialect_name(conn)
        d = dialect_for(name)
        keys = sorted(increments)  # one lock order for every batch: no deadlocks between batches
        by_text = {(k.customer, k.meter, k.window, d.ts(k.start), d.ts(k.end)): k for k in keys}
        cols = "customer, meter_key, window_kind, window_start, window_end, value"
        conflict = "ON CONFLICT (customer, meter_key, window_kind, window_start, window_end) DO UPDATE SET"
        if name == "postgresql":
            # Only the counters at or past their threshold come back (json_to_recordset reads objects).
            rows = []
            for k in keys:
                limit = str(thresholds[k]) if k in thresholds else None
                row = {"c": k.customer, "m": k.meter, "w": k.window, "s": d.ts(k.start), "e": d.ts(k.end)}
                rows.append({**row, "v": str(increments[k]), "t": limit})
            doc = orjson.dumps(rows).decode()
            sql = (
                f"WITH b AS (SELECT * FROM json_to_recordset(CAST({d.bind(doc)} AS json)) "
                "AS x(c text, m text, w text, s timestamp, e timestamp, v numeric, t numeric)), "
                f"up AS (INSERT INTO limit_counters ({cols}) SELECT b.c, b.m, b.w, b.s, b.e, b.v FROM b "
                f"ORDER BY b.c, b.m, b.w, b.s, b.e {conflict} value = limit_counters.value + excluded.value "
                f"RETURNING {cols}) "
                "SELECT up.* FROM up JOIN b ON b.c = up.customer AND b.m = up.meter_key AND b.w = up.window_kind "
                "AND b.s = up.window_start AND b.e = up.window_end WHERE up.value >= b.t"
            )
        else:
            doc = orjson.dumps(
                [[k.customer, k.meter, k.window, d.ts(k.start), d.ts(k.end), str(increments[k])] for k in keys]
            ).decode()
            columns = ", ".join(f"json_extract(value, '$[{i}]')" for i in range(6))
            sql = (
                f"INSERT INTO limit_counters ({cols}) SELECT {columns} FROM json_each({d.bind(doc)}) WHERE true "
                f"{conflict} value = tw_decimal_add(limit_counters.value, excluded.value) RETURNING {cols}"
            )
        out = {}
        for r in conn.execute(text(sql), d.params):
            start, end = (d.ts(as_utc(r[3])), d.ts(as_utc(r[4])))
            key = by_text[(r[0], r[1], r[2], start, end)]
            value = Decimal(str(r[5]))
            if key in thresholds and value >= thresholds[key]:
                out[key] = value
        return out

    def read(
        self, conn: Conn, customer: str, keys: Sequence[CounterKey]
    ) -> tuple[Stored | None, dict[CounterKey, Decimal]]:
        # One round trip: the stored profile's version (the row without a meter), then the counters.
        d = dialect_for(_dialect_name(conn))
        lo = min((k.start for k in keys), default=None)
        sql = f"SELECT NULL, NULL, NULL, NULL, version FROM limit_profiles WHERE customer = {d.bind(customer)}"
        if lo is not None:
            sql += (
                " UNION ALL SELECT meter_key, window_kind, window_start, window_end, CAST(value AS TEXT) "
                f"FROM limit_counters WHERE customer = {d.bind(customer)} AND window_end > {d.bind(d.ts(lo))}"
            )
        stored: Stored | None = None
        wanted = set(keys)
        values: dict[CounterKey, Decimal] = {}
        for r in conn.execute(text(sql), d.params):
            if r[0] is None:
                stored = Stored(str(r[4]), fresh=True)
                continue
            key = CounterKey(customer, r[0], r[1], as_utc(r[2]), as_utc(r[3]))
            if key in wanted:
                values[key] = Decimal(str(r[4]))
        return (stored, values) if stored is not None else (None, {})

    def seed(self, conn: Conn, profile: Profile, values: Mapping[CounterKey, Decimal], now: datetime) -> None:
        conn.execute(text("DELETE FROM limit_counters WHERE customer = :c"), {"c": profile.customer})
        conn.execute(text("DELETE FROM limit_profiles WHERE customer = :c"), {"c": profile.customer})
        name = _dialect_name(conn)
        d = dialect_for(name)
        doc = profile.to_json()
        cast = f"CAST({d.bind(doc)} AS jsonb)" if name == "postgresql" else d.bind(doc)
        conn.execute(
            text(
                "INSERT INTO limit_profiles (customer, version, profile, seeded_at) "
                f"VALUES ({d.bind(profile.customer)}, {d.bind(profile.version)}, {cast}, {d.bind(d.ts(now))})"
            ),
            d.params,
        )
        nonzero = {k: v for k, v in values.items() if v != 0}
        if nonzero:
            self.add(conn, nonzero, {profile.customer: profile}, {})

    def purge(self, conn: Conn, before: datetime) -> int:
        d = dialect_for(_dialect_name(conn))
        result = conn.execute(text(f"DELETE FROM limit_counters WHERE window_end < {d.bind(d.ts(before))}"), d.params)
        return int(getattr(result, "rowcount", 0) or 0)


# ------------------------------------------------------------------------------------ Redis

# ARGV[1]: JSON [[key, [[scale, mantissa], ...], expire_at], ...] (one argument: cheap to send).
# Returns JSON: each key's hash after the increments, [scale, mantissa, ...], in the same order.
# ARGV[1]: JSON [[key, scale, mantissa, expire_at, threshold], ...] (one argument: cheap to send).
# Adds each mantissa to the key's field for its scale; returns JSON [[index, hash], ...] of the
# counters that may have reached a limit: the field added to is at or past the threshold (given
# at the same scale), or the hash has other scales too. A threshold "" never returns the key.
_ADD = """
local items = cjson.decode(ARGV[1])
local out = {}
for i, item in ipairs(items) do
  local k = item[1]
  local v = redis.call('HINCRBY', k, item[2], item[3])
  redis.call('EXPIREAT', k, item[4])
  if item[5] ~= '' and (tonumber(v) >= tonumber(item[5]) or redis.call('HLEN', k) > 1) then
    out[#out + 1] = {i - 1, redis.call('HGETALL', k)}
  end
end
if #out == 0 then return '[]' end
return cjson.encode(out)
"""

# KEYS[1] profile key, KEYS[2] epoch key; ARGV[1] counter key prefix, ARGV[2..] counter suffixes.
# Reads the profile's key version and the counters of that version in one round trip.
_READ = """
local p = redis.call('GET', KEYS[1])
local epoch = redis.call('GET', KEYS[2]) or '0'
if not p then return {false, epoch} end
local doc = cjson.decode(p)
local out = {doc['version'], tostring(doc['epoch']) == epoch and '1' or '0'}
for i = 2, #ARGV do
  out[i + 1] = redis.call('HGETALL', ARGV[1] .. doc['ver'] .. ARGV[i])
end
return out
"""


def split_decimal(value: Decimal) -> tuple[int, int]:
    """``value`` as (scale, integer mantissa), exactly: 12.34 → (2, 1234)."""
    if value == value.to_integral_value():  # counts and whole sums: the common case
        return 0, int(value)
    sign, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int), "counters hold finite values only"
    mantissa = int("".join(map(str, digits)) or "0")
    if exponent > 0:
        mantissa *= 10**exponent
    return max(0, -exponent), -mantissa if sign else mantissa


def join_decimal(fields: Sequence[Any]) -> Decimal:
    """The value of a counter hash ``[scale, mantissa, scale, mantissa, ...]``."""
    total = Decimal(0)
    for i in range(0, len(fields), 2):
        scale, mantissa = int(fields[i]), int(fields[i + 1])
        total = EXACT.add(total, Decimal(mantissa).scaleb(-scale, EXACT))
    return total


@lru_cache(maxsize=100_000)
def _key_suffix(key: CounterKey) -> str:
    return f"|{key.meter}|{key.window}|{_us(key.start)}|{_us(key.end)}"


@lru_cache(maxsize=10_000)
def _threshold_at(limit: Decimal | None, scale: int) -> str:
    """A threshold in units of ``scale`` (the field the script adds to and compares): "" for
    none (never sent back), "0" when it is not a whole number of such units (always sent back)."""
    if limit is None:
        return ""
    units = limit.scaleb(scale, EXACT)
    return str(int(units)) if units == units.to_integral_value() else "0"


def _us(value: datetime) -> int:
    delta = value.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


class RedisCounters:
    """Counters in Redis under ``prefix``. Errors are the caller's to handle (``redis.RedisError``)."""

    name = "redis"

    def __init__(self, url: str, prefix: str, *, timeout: float = 0.5) -> None:
        import redis

        self.client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
        self.prefix = prefix
        self._add = self.client.register_script(_ADD)
        self._read = self.client.register_script(_READ)
        self._names: dict[tuple[str, CounterKey], str] = {}  # counter key names, as built last
        self.missed = False

    # -- keys ------------------------------------------------------------------------------
    def _profile_key(self, customer: str) -> str:
        return f"{self.prefix}|prof|{customer}"

    @property
    def _epoch_key(self) -> str:
        return f"{self.prefix}|epoch"

    def _counter_prefix(self, customer: str) -> str:
        return f"{self.prefix}|ctr|{customer}|"

    @staticmethod
    def _suffix(key: CounterKey) -> str:
        return _key_suffix(key)

    def _counter_key(self, ver: str, key: CounterKey) -> str:
        return self._counter_prefix(key.customer) + ver + self._suffix(key)

    # -- recovery --------------------------------------------------------------------------
    def note_missed(self, exc: Exception) -> None:
        """An increment did not reach Redis: every counter may be short from now on."""
        if not self.missed:
            log.warning("limit counters: Redis unreachable (%s); counters will be seeded again", exc)
        self.missed = True

    def _recover(self) -> None:
        if self.missed:
            self.client.incr(self._epoch_key)
            self.missed = False
            log.warning("limit counters: Redis answers again; epoch bumped, counters are seeded again on check")

    # -- the backend -------------------------------------------------------------------------
    def load_profiles(self, conn: Conn, customers: Iterable[str]) -> dict[str, Profile]:
        wanted = sorted(set(customers))
        if not wanted:
            return {}
        self._recover()
        out: dict[str, Profile] = {}
        raws: list[Any] = self.client.mget([self._profile_key(c) for c in wanted])  # type: ignore[assignment]
        for raw in raws:
            if raw is not None:
                profile = parse_profile(raw.decode() if isinstance(raw, bytes) else raw)
                out[profile.customer] = profile
        return out

    def add(
        self,
        conn: Conn,
        increments: Mapping[CounterKey, Decimal],
        profiles: Mapping[str, Profile],
        thresholds: Mapping[CounterKey, Decimal],
    ) -> dict[CounterKey, Decimal]:
        if not increments:
            return {}
        self._recover()
        keys = sorted(increments)
        items = []
        names = self._names
        if len(names) > 200_000:
            names.clear()
        for key in keys:
            scale, mantissa = split_decimal(increments[key])
            ver = profiles[key.customer].key_version
            name = names.get((ver, key))
            if name is None:
                name = names[(ver, key)] = self._counter_key(ver, key)
            thr = _threshold_at(thresholds.get(key), scale)
            items.append([name, str(scale), str(mantissa), int((key.end + 2 * GRACE).timestamp()), thr])
        found = orjson.loads(self._add(args=[orjson.dumps(items)], client=self.client))
        return {keys[int(i)]: join_decimal(fields) for i, fields in found}

    def read(
        self, conn: Conn, customer: str, keys: Sequence[CounterKey]
    ) -> tuple[Stored | None, dict[CounterKey, Decimal]]:
        self._recover()
        result = self._read(
            keys=[self._profile_key(customer), self._epoch_key],
            args=[self._counter_prefix(customer), *(self._suffix(k) for k in keys)],
            client=self.client,
        )
        if not result or not result[0]:
            return None, {}
        version = result[0].decode() if isinstance(result[0], bytes) else str(result[0])
        stored = Stored(version, fresh=result[1] in (b"1", "1"))
        values = {k: join_decimal(fields) for k, fields in zip(keys, result[2:], strict=True) if fields}
        return stored, values

    def seed(self, conn: Conn, profile: Profile, values: Mapping[CounterKey, Decimal], now: datetime) -> None:
        self._recover()
        epoch = self.client.get(self._epoch_key)
        ver = f"{profile.version}.{secrets.token_hex(4)}"  # a fresh key space: no stale counter survives
        pipe = self.client.pipeline(transaction=True)
        for key, value in values.items():
            if value == 0:
                continue
            name = self._counter_key(ver, key)
            scale, mantissa = split_decimal(value)
            pipe.hset(name, str(scale), str(mantissa))
            pipe.expireat(name, int((key.end + 2 * GRACE).timestamp()))
        doc = profile.to_json(ver=ver, epoch=(epoch.decode() if isinstance(epoch, bytes) else "0"))
        pipe.set(self._profile_key(profile.customer), doc, ex=int(PROFILE_TTL.total_seconds()))
        pipe.execute()

    def purge(self, conn: Conn, before: datetime) -> int:
        return 0  # keys expire with their window


def purge_ended(conn: Conn, now: datetime) -> int:
    """Drop the database counters of windows that ended (Redis keys expire by themselves)."""
    return DatabaseCounters().purge(conn, now - 2 * GRACE)
