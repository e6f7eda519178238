"""Shared helpers for the Exact tests (imported by conftest.py and the test modules)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from app.exact.tokens import StoredToken

BASE = "https://start.exactonline.nl"
TOKEN_URL = f"{BASE}/api/oauth2/token"
DIVISION = 123456
CONNECTION_ID = 7
T0 = datetime(2025, 3, 14, 12, 0, 0, tzinfo=UTC)


class FakeClock:
    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class MemoryTokenStore:
    """Stands in for the DB-backed store: every save is 'committed' at once."""

    def __init__(self) -> None:
        self.tokens: dict[int, StoredToken] = {}
        self.saves: list[tuple[int, StoredToken]] = []
        self.consent: list[tuple[int, str]] = []
        self.loads = 0

    async def load(self, connection_id: int) -> StoredToken | None:
        self.loads += 1
        return self.tokens.get(connection_id)

    async def save(self, connection_id: int, token: StoredToken) -> None:
        self.tokens[connection_id] = token
        self.saves.append((connection_id, token))

    async def mark_needs_consent(self, connection_id: int, reason: str) -> None:
        self.consent.append((connection_id, reason))


def token_json(access: str, refresh: str, expires_in: str = "600") -> dict[str, str]:
    return {
        "access_token": access,
        "token_type": "bearer",
        "expires_in": expires_in,
        "refresh_token": refresh,
    }
