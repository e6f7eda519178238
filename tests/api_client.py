"""An httpx client talking to a real Koppel app (in-process ASGI, lifespan run)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from asgi_lifespan import LifespanManager

from app.main import create_app
from app.settings import Settings
from tests.factories import SECRET_KEY


def test_settings(database_url: str, **overrides: object) -> Settings:
    return Settings(database_url=database_url, secret_key=SECRET_KEY, log_json=False, **overrides)  # type: ignore[arg-type]


@asynccontextmanager
async def running_app(database_url: str, redis_url: str | None = None, **overrides: object) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(test_settings(database_url, **overrides), redis_url=redis_url)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://koppel.test") as client:
            client.app = manager.app  # type: ignore[attr-defined]
            yield client
