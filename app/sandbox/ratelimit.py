"""Exact's API budgets: 60 calls a minute and 5,000 a day per (app, division).

The minute window is aligned to the clock's minute boundaries and the day window
to 00:00 UTC, which is what the reset headers of real responses show (GH#609:
minutely reset 1683879540000 is a whole minute; daily 1683936000000 is midnight).
Resets are sent in epoch **milliseconds**.

While the minutely budget is exhausted Exact sends only the three minutely
headers on the 429 (GH#646); clients that read the daily headers unconditionally
must cope with their absence, so the sandbox reproduces that.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

DAY = 86_400
MINUTE = 60


@dataclass
class SandboxLimits:
    """Every budget the sandbox enforces; benchmarks raise them via PUT /sandbox/limits."""

    minutely: int = 60
    daily: int = 5_000
    token_daily: int = 200  # token-endpoint calls per (app, user) per UTC day
    errors_per_hour: int = 10  # 400/401/403/404 per (app, user, division, endpoint, hour)
    # Exact blocks an app for about an hour past the error threshold. Off by default:
    # the sandbox records "would be blocked" so tests can assert the client never trips it.
    block_on_errors: bool = False

    def as_dict(self) -> dict:
        return asdict(self)

    def update(self, values: dict) -> None:
        for name, value in values.items():
            if name not in self.__dataclass_fields__:
                raise KeyError(name)
            if value is None:
                continue
            expected = bool if name == "block_on_errors" else int
            if expected is int and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
                raise ValueError(f"{name} must be a non-negative integer")
            if expected is bool and not isinstance(value, bool):
                raise ValueError(f"{name} must be a boolean")
            setattr(self, name, value)


@dataclass
class Decision:
    allowed: bool
    headers: dict[str, str]


@dataclass
class _Bucket:
    minute_start: int = -1
    minute_used: int = 0
    day_start: int = -1
    day_used: int = 0


@dataclass
class RateLimiter:
    limits: SandboxLimits
    buckets: dict[tuple[str, int], _Bucket] = field(default_factory=dict)
    rejected: dict[int, int] = field(default_factory=dict)  # 429s served per division

    def check(self, client_id: str, division: int, now: float) -> Decision:
        """Consume one call for (client, division), or refuse it with a 429 decision."""
        bucket = self.buckets.setdefault((client_id, division), _Bucket())
        minute_start = int(now // MINUTE) * MINUTE
        day_start = int(now // DAY) * DAY
        if bucket.minute_start != minute_start:
            bucket.minute_start, bucket.minute_used = minute_start, 0
        if bucket.day_start != day_start:
            bucket.day_start, bucket.day_used = day_start, 0

        minute_reset_ms = (minute_start + MINUTE) * 1000
        day_reset_ms = (day_start + DAY) * 1000

        if bucket.day_used >= self.limits.daily:
            self.rejected[division] = self.rejected.get(division, 0) + 1
            headers = self._daily(0, day_reset_ms)
            headers.update(self._minutely(max(self.limits.minutely - bucket.minute_used, 0), minute_reset_ms))
            return Decision(False, headers)
        if bucket.minute_used >= self.limits.minutely:
            self.rejected[division] = self.rejected.get(division, 0) + 1
            return Decision(False, self._minutely(0, minute_reset_ms))

        bucket.minute_used += 1
        bucket.day_used += 1
        headers = self._daily(self.limits.daily - bucket.day_used, day_reset_ms)
        headers.update(self._minutely(self.limits.minutely - bucket.minute_used, minute_reset_ms))
        return Decision(True, headers)

    def _daily(self, remaining: int, reset_ms: int) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(self.limits.daily),
            "X-RateLimit-Remaining": str(remaining),
            "X-RateLimit-Reset": str(reset_ms),
        }

    def _minutely(self, remaining: int, reset_ms: int) -> dict[str, str]:
        return {
            "X-RateLimit-Minutely-Limit": str(self.limits.minutely),
            "X-RateLimit-Minutely-Remaining": str(remaining),
            "X-RateLimit-Minutely-Reset": str(reset_ms),
        }

    def usage(self) -> list[dict]:
        return [
            {"client_id": client, "division": division, "minute_used": b.minute_used, "day_used": b.day_used}
            for (client, division), b in self.buckets.items()
        ]
