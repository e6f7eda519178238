"""The arq connection, with a JSON serializer on both ends (never pickle: a writable Redis
would otherwise mean code execution in every worker)."""

from __future__ import annotations

import json
from typing import Any

from arq.connections import ArqRedis, RedisSettings, create_pool
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError


def serialize(value: dict[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":"), default=str).encode()


def deserialize(data: bytes) -> dict[str, Any]:
    return json.loads(data)  # type: ignore[no-any-return]


def redis_settings(url: str) -> RedisSettings:
    settings = RedisSettings.from_dsn(url)
    # Ride out a Redis restart instead of crashing the worker's poll loop.
    settings.retry_on_timeout = True
    settings.retry_on_error = [RedisConnectionError, RedisTimeoutError]
    settings.retry = Retry(ExponentialBackoff(cap=5, base=0.1), retries=8)
    settings.conn_timeout = 2
    settings.conn_retries = 3
    return settings


async def connect(url: str, queue_name: str) -> ArqRedis:
    return await create_pool(
        redis_settings(url),
        job_serializer=serialize,
        job_deserializer=deserialize,
        default_queue_name=queue_name,
    )
