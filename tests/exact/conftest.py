"""Fixtures for the Exact client tests: a settable clock, an in-memory token store (a test
double for the TokenStore protocol only), respx for HTTP and the real Redis from tests/conftest."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import timedelta

import httpx
import pytest
import redis.asyncio as aioredis
import respx

from app.exact.client import ConnectionRef, ExactClient
from app.exact.ratelimit import DivisionRateLimiter
from app.exact.tokens import OAuthApp, StoredToken, TokenManager

from tests.exact.support import BASE, CONNECTION_ID, FakeClock, MemoryTokenStore


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def oauth_app() -> OAuthApp:
    return OAuthApp(
        client_id="3f1c9a52-0000-4000-8000-00000000c1d0",
        client_secret="s3cret-value",
        redirect_uri="https://koppel.example/exact/callback",
    )


@pytest.fixture
def store() -> MemoryTokenStore:
    return MemoryTokenStore()


@pytest.fixture
def conn(oauth_app: OAuthApp) -> ConnectionRef:
    return ConnectionRef(id=CONNECTION_ID, base_url=BASE, app=oauth_app)


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


@pytest.fixture
def mock() -> respx.MockRouter:
    with respx.mock(base_url=BASE, assert_all_called=False) as router:
        yield router


@pytest.fixture
async def redis_connections(redis_url: str) -> AsyncIterator[Callable[[], aioredis.Redis]]:
    """Opens extra, separate Redis connections (one per simulated process)."""
    opened: list[aioredis.Redis] = []

    def make() -> aioredis.Redis:
        client = aioredis.from_url(redis_url)
        opened.append(client)
        return client

    yield make
    for client in opened:
        await client.aclose()


@pytest.fixture
def tokens(http, redis_client, store, clock) -> TokenManager:
    return TokenManager(http, redis_client, store, clock=clock)


@pytest.fixture
def limiter(redis_client) -> DivisionRateLimiter:
    return DivisionRateLimiter(redis_client)


@pytest.fixture
def events() -> list:
    return []


@pytest.fixture
def client(http, tokens, limiter, events) -> ExactClient:
    return ExactClient(http, tokens, limiter, on_call=events.append)


@pytest.fixture
def fresh_token(store: MemoryTokenStore, clock: FakeClock) -> StoredToken:
    """A stored token with 5 minutes to live: usable without any refresh."""
    token = StoredToken("access-1", "refresh-1", clock() + timedelta(minutes=5))
    store.tokens[CONNECTION_ID] = token
    return token
