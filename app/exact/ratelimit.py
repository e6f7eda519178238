"""One Exact call budget per (app client_id, division), shared by every worker process.

Exact allows each app a number of calls per division per minute (60) and per day (5,000 for
apps since 2021), reported after each call in ``X-RateLimit-*`` headers whose resets are epoch
milliseconds. The budget is a Redis hash updated only by Lua scripts, so reservations by any
number of processes are atomic::

    koppel:exact:ratelimit:<client_id>:<division>
        ml, mr, mx    minutely limit, remaining, reset (epoch ms)
        dl, dr, dx    daily limit, remaining, reset (epoch ms)

* ``acquire`` reserves one call before sending, or raises ``RateBudgetExhausted(retry_at_ms)``
  at once (it never sleeps: the job is deferred to that time instead). Unknown state means
  60 per minute until the next minute boundary and 5,000 per day until 00:00 UTC; a window
  whose reset has passed is refilled to its (learned) limit.
* ``observe`` corrects the state from the response headers: inside the same window remaining
  only goes down (``min(local, header)``: calls we reserved since may not be in the header
  yet); a newer window is taken from the headers as is; headers about an older window are
  ignored. While a minutely limit is hit Exact sends only the minutely headers; each window
  is handled on its own.
* ``on_429`` empties the window Exact says is exhausted until its reset (next minute boundary
  when headers are missing, later if ``Retry-After`` says so) and returns the retry time.

The hash expires an hour after the daily reset (TTL computed from the caller's clock).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from app.exact.errors import RateBudgetExhausted
from app.exact.retry_after import retry_after_ms

KEY = "koppel:exact:ratelimit:{client_id}:{division}"

DEFAULT_MINUTELY_LIMIT = 60
DEFAULT_DAILY_LIMIT = 5000
KEEP_AFTER_DAILY_RESET_MS = 3_600_000
SAME_WINDOW_TOLERANCE_MS = 1_000
MINUTE_MS = 60_000
DAY_MS = 86_400_000

HEADER_NAMES = (
    "X-RateLimit-Minutely-Limit",
    "X-RateLimit-Minutely-Remaining",
    "X-RateLimit-Minutely-Reset",
    "X-RateLimit-Limit",
    "X-RateLimit-Remaining",
    "X-RateLimit-Reset",
)

# Shared Lua: read the hash, merge header values for one window, write the hash back.
_PRELUDE = """
local key = KEYS[1]
local now = tonumber(ARGV[1])
local keep = tonumber(ARGV[2])
local v = redis.call('HMGET', key, 'ml', 'mr', 'mx', 'dl', 'dr', 'dx')
local ml, mr, mx = tonumber(v[1]), tonumber(v[2]), tonumber(v[3])
local dl, dr, dx = tonumber(v[4]), tonumber(v[5]), tonumber(v[6])

local function next_boundary(t, size)
  return (math.floor(t / size) + 1) * size
end

-- Merge one window's header values (hl, hr, hx may be nil) into local (l, r, x).
local function merge(l, r, x, hl, hr, hx, tol)
  if hr == nil or hx == nil then
    if hl ~= nil then l = hl end
    return l, r, x
  end
  if hx <= now then
    return l, r, x                       -- that window is already over
  end
  if hl ~= nil then l = hl end
  if x ~= nil and r ~= nil and now < x and math.abs(hx - x) <= tol then
    if hr < r then r = hr end           -- same window: never raise what we reserved since
    x = hx
  elseif x == nil or r == nil or now >= x or hx > x then
    r = hr                               -- a newer window: the headers are the truth
    x = hx
  end                                    -- else: headers about an older window; ignore
  return l, r, x
end

local function save()
  local args = {}
  local fields = {ml = ml, mr = mr, mx = mx, dl = dl, dr = dr, dx = dx}
  for name, value in pairs(fields) do
    if value ~= nil then
      table.insert(args, name)
      table.insert(args, string.format('%d', value))
    end
  end
  if #args > 0 then
    redis.call('HSET', key, unpack(args))
    -- relative to the caller's clock, so a skewed Redis clock cannot expire it early
    local ttl = (dx or next_boundary(now, 86400000)) + keep - now
    if ttl < 1000 then ttl = 1000 end
    redis.call('PEXPIRE', key, string.format('%d', ttl))
  end
end
"""

_ACQUIRE = (
    _PRELUDE
    + """
local def_ml = tonumber(ARGV[3])
local def_dl = tonumber(ARGV[4])
if ml == nil then ml = def_ml end
if dl == nil then dl = def_dl end
if mr == nil or mx == nil or now >= mx then
  mr = ml
  mx = next_boundary(now, 60000)
end
if dr == nil or dx == nil or now >= dx then
  dr = dl
  dx = next_boundary(now, 86400000)
end
local granted, retry, window = 0, 0, ''
if dr <= 0 then
  retry = dx
  window = 'daily'
  if mr <= 0 and mx > retry then retry = mx end
elseif mr <= 0 then
  retry = mx
  window = 'minutely'
else
  mr = mr - 1
  dr = dr - 1
  granted = 1
end
save()
return {granted, string.format('%d', retry), window, mr, dr}
"""
)

_OBSERVE = (
    _PRELUDE
    + """
local tol = tonumber(ARGV[3])
ml, mr, mx = merge(ml, mr, mx, tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6]), tol)
dl, dr, dx = merge(dl, dr, dx, tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9]), tol)
save()
return 1
"""
)

_ON_429 = (
    _PRELUDE
    + """
local tol = tonumber(ARGV[3])
local hmr, hmx = tonumber(ARGV[5]), tonumber(ARGV[6])
local hdr, hdx = tonumber(ARGV[8]), tonumber(ARGV[9])
local not_before = tonumber(ARGV[10])
ml, mr, mx = merge(ml, mr, mx, tonumber(ARGV[4]), hmr, hmx, tol)
dl, dr, dx = merge(dl, dr, dx, tonumber(ARGV[7]), hdr, hdx, tol)
local retry, window
if hdr ~= nil and hdr <= 0 and hdx ~= nil and hdx > now then
  dr = 0
  dx = hdx
  retry = hdx
  window = 'daily'
else
  mr = 0
  if hmx ~= nil and hmx > now then
    mx = hmx
  else
    mx = next_boundary(now, 60000)
  end
  if not_before ~= nil and not_before > mx then mx = not_before end
  retry = mx
  window = 'minutely'
end
if not_before ~= nil and not_before > retry then retry = not_before end
save()
return {string.format('%d', retry), window}
"""
)


@dataclass(frozen=True)
class Reservation:
    """What is left after a granted ``acquire`` (as far as this limiter knows)."""

    minutely_remaining: int
    daily_remaining: int


def _now_ms() -> int:
    return int(time.time() * 1000)


def parse_rate_headers(headers: Mapping[str, str]) -> dict[str, int | None]:
    """The six ``X-RateLimit-*`` values as ints (None when absent or unparsable)."""
    lowered = {k.lower(): v for k, v in headers.items()}
    out: dict[str, int | None] = {}
    for name in HEADER_NAMES:
        raw = lowered.get(name.lower())
        try:
            out[name] = int(str(raw).strip()) if raw is not None else None
        except ValueError:
            out[name] = None
    return out


def _arg(value: int | None) -> str:
    return "" if value is None else str(value)


class DivisionRateLimiter:
    """The shared per-(client_id, division) call budget. Safe across processes."""

    def __init__(
        self,
        redis: aioredis.Redis,
        *,
        clock_ms: Callable[[], int] = _now_ms,
        default_minutely_limit: int = DEFAULT_MINUTELY_LIMIT,
        default_daily_limit: int = DEFAULT_DAILY_LIMIT,
    ) -> None:
        self._redis = redis
        self._clock_ms = clock_ms
        self._default_ml = default_minutely_limit
        self._default_dl = default_daily_limit
        self._acquire = redis.register_script(_ACQUIRE)
        self._observe = redis.register_script(_OBSERVE)
        self._on_429 = redis.register_script(_ON_429)

    @staticmethod
    def key(client_id: str, division: int) -> str:
        return KEY.format(client_id=client_id, division=int(division))

    async def acquire(
        self, client_id: str, division: int, now_ms: int | None = None
    ) -> Reservation:
        """Reserve one call, or raise ``RateBudgetExhausted`` without waiting."""
        now = self._clock_ms() if now_ms is None else now_ms
        granted, retry, window, mr, dr = await self._acquire(
            keys=[self.key(client_id, division)],
            args=[now, KEEP_AFTER_DAILY_RESET_MS, self._default_ml, self._default_dl],
        )
        if not int(granted):
            raise RateBudgetExhausted(int(retry), window=_text(window))
        return Reservation(minutely_remaining=int(mr), daily_remaining=int(dr))

    async def observe(
        self,
        client_id: str,
        division: int,
        headers: Mapping[str, str],
        now_ms: int | None = None,
    ) -> None:
        """Correct the budget from a response's ``X-RateLimit-*`` headers."""
        values = parse_rate_headers(headers)
        if all(v is None for v in values.values()):
            return
        now = self._clock_ms() if now_ms is None else now_ms
        await self._observe(
            keys=[self.key(client_id, division)],
            args=[now, KEEP_AFTER_DAILY_RESET_MS, SAME_WINDOW_TOLERANCE_MS]
            + [_arg(values[name]) for name in HEADER_NAMES],
        )

    async def on_429(
        self,
        client_id: str,
        division: int,
        headers: Mapping[str, str],
        now_ms: int | None = None,
    ) -> int:
        """Record a 429: no calls until the reset. Returns the retry time (epoch ms)."""
        now = self._clock_ms() if now_ms is None else now_ms
        values = parse_rate_headers(headers)
        not_before = retry_after_ms(headers, now)
        retry, _window = await self._on_429(
            keys=[self.key(client_id, division)],
            args=[now, KEEP_AFTER_DAILY_RESET_MS, SAME_WINDOW_TOLERANCE_MS]
            + [_arg(values[name]) for name in HEADER_NAMES]
            + [_arg(not_before)],
        )
        return int(retry)

    async def snapshot(
        self, client_id: str, division: int, now_ms: int | None = None
    ) -> dict[str, Any]:
        """The budget as the status API shows it ("Exact calls left today per division").

        Windows whose reset has passed are shown refilled, as the next ``acquire`` would see
        them. ``known`` is False while nothing has been recorded for this division.
        """
        now = self._clock_ms() if now_ms is None else now_ms
        raw = await self._redis.hgetall(self.key(client_id, division))
        state = {_text(k): int(v) for k, v in raw.items()}

        def window(limit_f: str, rem_f: str, reset_f: str, default: int, size: int) -> dict[str, int]:
            limit = state.get(limit_f, default)
            remaining, reset = state.get(rem_f), state.get(reset_f)
            if remaining is None or reset is None or now >= reset:
                remaining, reset = limit, (now // size + 1) * size
            return {"limit": limit, "remaining": max(remaining, 0), "reset_ms": reset}

        return {
            "client_id": client_id,
            "division": int(division),
            "known": bool(state),
            "minutely": window("ml", "mr", "mx", self._default_ml, MINUTE_MS),
            "daily": window("dl", "dr", "dx", self._default_dl, DAY_MS),
        }


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
