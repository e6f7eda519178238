"""End-to-end harness: a real API, a real arq worker, real Redis and DB, the bundled sandbox.

The sandbox runs in-process behind an httpx ASGI transport (the worker's one httpx client
talks to it as it would to Exact); everything else is the production code path.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from arq import cron, func
from arq.worker import Worker
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.booking.service import connection_ref
from app.connections import reference
from app.connections.models import ExactConnection
from app.connections.tokens import save_token
from app.db.base import utcnow
from app.exact.client import ExactClient
from app.exact.ratelimit import DivisionRateLimiter
from app.exact.tokens import StoredToken, TokenManager
from app.connections.tokens import DatabaseTokenStore
from app.integrations.service import create_integration, create_tenant
from app.orders.models import Order
from app.queue import deserialize, redis_settings, serialize
from app.sandbox import SandboxState, create_sandbox_app
from app.sandbox.seed import DEFAULT_DIVISION
from app.settings import Settings
from app.tenancy.auth import create_key
from tests.factories import SECRET_KEY
from workers.book_order import book_order
from workers.context import shutdown, startup
from workers.sweeper import sweep

SANDBOX_URL = "http://sandbox.test"
TERMINAL = {"booked", "failed", "rejected", "open", "waiting"}


def e2e_settings(database_url: str, redis_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url, "redis_url": redis_url, "secret_key": SECRET_KEY, "log_json": False,
        "log_level": "WARNING", "booking_retry_base_seconds": 0.05, "job_timeout_seconds": 20,
        "exact_client_id": "koppel-sandbox", "exact_client_secret": "koppel-sandbox-secret",
    }
    values.update(overrides)
    return Settings(**values)


@dataclass
class Booked:
    tenant_id: int
    connection_id: int
    integration_id: int
    key: str
    secret: str
    api_key: str


async def connect_sandbox(sessionmaker: async_sessionmaker[AsyncSession], state: SandboxState | None,
                          http: httpx.AsyncClient, redis: Any, settings: Settings, *,
                          division: int = DEFAULT_DIVISION, name: str = "Webshop",
                          integration_settings: dict[str, Any] | None = None,
                          tenant_id: int | None = None, connection_id: int | None = None,
                          base_url: str = SANDBOX_URL) -> Booked:
    """A tenant with an Exact connection to the sandbox (real tokens), reference data loaded
    through the real client, an integration on `division`, and an operator key.

    `state` is the in-process sandbox; None means a sandbox server at `base_url`, whose
    admin API issues the tokens."""
    async with sessionmaker() as session, session.begin():
        if tenant_id is None:
            tenant_id = (await create_tenant(session, f"{name} B.V.")).id
        if connection_id is None:
            connection = ExactConnection(tenant_id=tenant_id, name=f"{name} Exact", base_url=base_url,
                                         client_id=settings.exact_client_id, state="active",
                                         created_at=utcnow(), updated_at=utcnow())
            session.add(connection)
            await session.flush()
            connection_id = connection.id
            if state is not None:
                issued = state.issue_tokens()
            else:
                issued = (await http.post(f"{base_url}/sandbox/tokens/issue", json={})).json()
            await save_token(session, SECRET_KEY, connection_id, StoredToken(
                issued["access_token"], issued["refresh_token"],
                datetime.now(UTC) + timedelta(seconds=int(issued["expires_in"]))))
        integration, secret = await create_integration(
            session, secret_key=SECRET_KEY, tenant_id=tenant_id, name=name, source="generic",
            connection_id=connection_id, division=division, settings=integration_settings)
        _, api_key = await create_key(session, tenant_id=tenant_id, scope="operator", name="ops")
    async with sessionmaker() as session:
        connection = await session.get(ExactConnection, connection_id)
        assert connection is not None
    await reference.refresh(sessionmaker, exact_client(http, redis, sessionmaker).for_division(
        connection_ref(connection, settings), division), connection_id, division)
    return Booked(tenant_id, connection_id, integration.id, integration.key, secret, api_key)


def exact_client(http: httpx.AsyncClient, redis: Any, sessionmaker: async_sessionmaker[AsyncSession]) -> ExactClient:
    tokens = TokenManager(http, redis, DatabaseTokenStore(sessionmaker, SECRET_KEY))
    return ExactClient(http, tokens, DivisionRateLimiter(redis))


@asynccontextmanager
async def sandbox_http(state: SandboxState) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_sandbox_app(state))
    async with httpx.AsyncClient(transport=transport, base_url=SANDBOX_URL) as client:
        yield client


@asynccontextmanager
async def running_worker(settings: Settings, http: httpx.AsyncClient, *, max_jobs: int = 10) -> AsyncIterator[Worker]:
    assert settings.redis_url
    worker = Worker(
        functions=[func(book_order, name="book_order", timeout=settings.job_timeout_seconds, max_tries=10_000)],
        cron_jobs=[cron(sweep, second=set(range(0, 60, 2)), run_at_startup=False)],
        on_startup=startup, on_shutdown=shutdown, redis_settings=redis_settings(settings.redis_url),
        queue_name=settings.queue_name, job_serializer=serialize, job_deserializer=deserialize,
        ctx={"settings": settings, "http": http}, poll_delay=0.02, max_jobs=max_jobs, handle_signals=False,
        job_timeout=settings.job_timeout_seconds, keep_result=3600,
    )
    task = asyncio.create_task(worker.async_run())
    try:
        yield worker
    finally:
        task.cancel()
        try:
            await task
        except (asyncio.CancelledError, Exception):  # noqa: BLE001
            pass
        try:
            await worker.close()
        except asyncio.CancelledError:
            # close() gathers the job tasks; one that was just starting (a re-enqueued job of an
            # order already booked) ends cancelled. Only a cancellation of the test itself counts.
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise


async def wait_for_states(sessionmaker: async_sessionmaker[AsyncSession], order_ids: list[int], *,
                          states: set[str] = TERMINAL, timeout: float = 30.0) -> dict[int, Order]:
    deadline = time.monotonic() + timeout
    while True:
        async with sessionmaker() as session:
            rows = (await session.execute(select(Order).where(Order.id.in_(order_ids)))).scalars().all()
        if len(rows) == len(order_ids) and all(row.state in states for row in rows):
            return {row.id: row for row in rows}
        if time.monotonic() > deadline:
            raise AssertionError(f"orders not settled: {[(r.id, r.state, r.error_message) for r in rows]}")
        await asyncio.sleep(0.05)
