"""Traffic bookkeeping: requests per division and Exact's error budget.

Since July 2021 Exact blocks an app for about an hour once it makes more than 10
errors (400, 401, 403, 404) per app, user, division, endpoint and hour. Tests of
Koppel's client assert that it never gets there, so the sandbox counts precisely
that key and records every key that went over ("would be blocked"). Actually
blocking (403) is opt-in via ``SandboxLimits.block_on_errors``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from app.sandbox.ratelimit import SandboxLimits

TRACKED_ERRORS = frozenset({400, 401, 403, 404})
HOUR = 3600

ErrorKey = tuple[str | None, str | None, int | None, str, int]  # client, user, division, endpoint, hour


@dataclass
class RequestMonitor:
    limits: SandboxLimits
    requests: dict[int, int] = field(default_factory=dict)
    statuses: dict[int, dict[int, int]] = field(default_factory=dict)
    errors: dict[ErrorKey, int] = field(default_factory=dict)
    would_block: dict[ErrorKey, int] = field(default_factory=dict)  # key -> count when first exceeded

    def record(
        self,
        *,
        client_id: str | None,
        user_id: str | None,
        division: int | None,
        endpoint: str,
        status: int,
        now: float,
    ) -> None:
        if division is not None:
            self.requests[division] = self.requests.get(division, 0) + 1
            per_status = self.statuses.setdefault(division, {})
            per_status[status] = per_status.get(status, 0) + 1
        if status not in TRACKED_ERRORS:
            return
        key: ErrorKey = (client_id, user_id, division, endpoint, int(now // HOUR))
        self.errors[key] = self.errors.get(key, 0) + 1
        if self.errors[key] > self.limits.errors_per_hour and key not in self.would_block:
            self.would_block[key] = self.errors[key]

    def blocked(self, client_id: str, user_id: str, division: int | None, endpoint: str, now: float) -> bool:
        if not self.limits.block_on_errors:
            return False
        key: ErrorKey = (client_id, user_id, division, endpoint, int(now // HOUR))
        return key in self.would_block

    @staticmethod
    def _row(key: ErrorKey, count: int) -> dict:
        client, user, division, endpoint, hour = key
        return {
            "client_id": client,
            "user_id": user,
            "division": division,
            "endpoint": endpoint,
            "hour_start": hour * HOUR,
            "count": count,
        }

    def snapshot(self) -> dict:
        return {
            "total": sum(self.errors.values()),
            "by_key": [self._row(k, n) for k, n in self.errors.items()],
            "max_per_key_hour": max(self.errors.values(), default=0),
            "would_block": [self._row(k, self.errors[k]) for k in self.would_block],
        }
