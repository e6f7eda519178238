"""Worker process rules: JSON jobs, health check, schema guard, final failure, sweeper."""

from __future__ import annotations

import asyncio
import json

import pytest
from arq.worker import async_check_health

from app.db.migrate import SchemaOutdated
from app.queue import redis_settings
from app.sandbox.seed import DEFAULT_DIVISION
from tests.api_client import running_app
from tests.booking.harness import connect_sandbox, e2e_settings, running_worker, wait_for_states
from tests.factories import order, signed
from workers.context import startup


async def test_jobs_are_json_not_pickle(database_url, sessionmaker, redis_client, redis_url, sandbox,
                                        sandbox_client) -> None:
    settings = e2e_settings(database_url, redis_url)
    shop = await connect_sandbox(sessionmaker, sandbox, sandbox_client, redis_client, settings)
    async with running_app(database_url, redis_url) as api:
        body, headers = signed(shop.secret, order())
        order_id = (await api.post(f"/webhooks/generic/{shop.key}", content=body, headers=headers)).json()["order_id"]
        for _ in range(100):
            raw = await redis_client.get(f"arq:job:book_order:{order_id}:1")
            if raw:
                break
            await asyncio.sleep(0.02)
    job = json.loads(raw)  # a pickle would not parse
    assert job["f"] == "book_order" and job["a"] == [order_id, 1]


async def test_health_check_answers_while_a_worker_runs(database_url, sessionmaker, redis_client, redis_url,
                                                        sandbox_client) -> None:
    settings = e2e_settings(database_url, redis_url)
    key = f"{settings.queue_name}:health-check"
    assert await async_check_health(redis_settings(redis_url), key) == 1
    async with running_worker(settings, sandbox_client):
        for _ in range(100):
            if await redis_client.exists(key):
                break
            await asyncio.sleep(0.02)
        assert await async_check_health(redis_settings(redis_url), key) == 0


async def test_worker_refuses_a_database_behind_the_migrations(tmp_path, redis_client, redis_url) -> None:
    empty = f"sqlite+aiosqlite:///{tmp_path / 'never-migrated.db'}"
    with pytest.raises(SchemaOutdated, match="koppel migrate"):
        await startup({"redis": redis_client}, e2e_settings(empty, redis_url))


async def test_last_failed_attempt_sets_the_order_failed(database_url, sessionmaker, redis_client, redis_url,
                                                         sandbox, sandbox_client) -> None:
    settings = e2e_settings(database_url, redis_url, max_booking_attempts=3)
    shop = await connect_sandbox(sessionmaker, sandbox, sandbox_client, redis_client, settings)
    sandbox.add_fault(method="POST", path_regex="salesentry/SalesEntries", status=503, times=None)
    async with running_app(database_url, redis_url) as api:
        body, headers = signed(shop.secret, order())
        order_id = (await api.post(f"/webhooks/generic/{shop.key}", content=body, headers=headers)).json()["order_id"]
        async with running_worker(settings, sandbox_client):
            row = (await wait_for_states(sessionmaker, [order_id], timeout=30))[order_id]
    assert row.state == "failed" and row.error_code == "exact_unavailable"
    assert row.retryable is True and row.attempts == 3
    assert "gave up after 3 attempts" in row.error_message
    assert sandbox.sales_entries(DEFAULT_DIVISION) == []
