"""Shared fixtures: real Redis (the machine's, or a private one) and, below, real databases."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator

import pytest
import redis.asyncio as aioredis

from app.embedded_redis import start_private_redis


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """KOPPEL_TEST_REDIS_URL when given (CI gives the machine's Redis), else a private server."""
    given = os.environ.get("KOPPEL_TEST_REDIS_URL")
    if given:
        yield given
        return
    server = start_private_redis()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    """A clean Redis database for one test."""
    client = aioredis.from_url(redis_url)
    await client.flushdb()
    try:
        yield client
    finally:
        await client.flushdb()
        await client.aclose()


# --- databases ---------------------------------------------------------------------------
# Every database suite runs on SQLite (the embedded default) and, when a PostgreSQL URL is
# given in KOPPEL_TEST_DATABASE_URL (CI always gives one), on PostgreSQL too. The schema is
# made by the Alembic migrations, never by create_all.

import asyncio  # noqa: E402
import uuid  # noqa: E402
from collections.abc import AsyncIterator as _AsyncIterator  # noqa: E402

from sqlalchemy import text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker  # noqa: E402

from app.db.base import Base  # noqa: E402
from app.db.engine import create_engine, create_sessionmaker  # noqa: E402
from app.db.migrate import upgrade  # noqa: E402
import app.db.models  # noqa: E402,F401

PG_URL = os.environ.get("KOPPEL_TEST_DATABASE_URL")
BACKENDS = ["sqlite"] + (["postgresql"] if PG_URL else [])


async def _admin_execute(url: str, statement: str) -> None:
    import asyncpg

    parsed = make_url(url)
    conn = await asyncpg.connect(host=parsed.host or "127.0.0.1", port=parsed.port or 5432,
                                 user=parsed.username or "postgres", password=parsed.password,
                                 database=parsed.database or "postgres")
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


def _fresh_postgres(base_url: str) -> tuple[str, str]:
    name = f"koppel_test_{uuid.uuid4().hex[:10]}"
    asyncio.run(_admin_execute(base_url, f'CREATE DATABASE "{name}"'))
    url = make_url(base_url).set(drivername="postgresql+asyncpg", database=name)
    return url.render_as_string(hide_password=False), name


@pytest.fixture(scope="session", params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A migrated, empty database of each backend, for the whole session."""
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('db') / 'koppel.db'}"
        upgrade(url)
        yield url
        return
    assert PG_URL is not None
    url, name = _fresh_postgres(PG_URL)
    upgrade(url)
    yield url
    asyncio.run(_admin_execute(PG_URL, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
async def engine(database_url: str) -> _AsyncIterator[AsyncEngine]:
    eng = create_engine(database_url, pool_size=20)
    yield eng
    await eng.dispose()


async def _empty_all_tables(eng: AsyncEngine) -> None:
    tables = [table.name for table in Base.metadata.sorted_tables]
    async with eng.begin() as conn:
        if eng.dialect.name == "postgresql":
            await conn.execute(text("TRUNCATE " + ", ".join(tables) + " RESTART IDENTITY CASCADE"))
        else:
            for table in reversed(tables):
                await conn.execute(text(f"DELETE FROM {table}"))


@pytest.fixture
async def sessionmaker(engine: AsyncEngine) -> _AsyncIterator[async_sessionmaker[AsyncSession]]:
    """A session factory on a database emptied after the test."""
    try:
        yield create_sessionmaker(engine)
    finally:
        await _empty_all_tables(engine)


@pytest.fixture(autouse=True)
def _structlog_defaults() -> Iterator[None]:
    """A worker started by one test configures logging; the next test starts clean."""
    import structlog

    yield
    structlog.reset_defaults()


# --- the bundled Exact Online sandbox, in-process -----------------------------------------


@pytest.fixture
def sandbox():  # type: ignore[no-untyped-def]
    from app.sandbox import SandboxState

    return SandboxState()


@pytest.fixture
async def sandbox_client(sandbox):  # type: ignore[no-untyped-def]
    """An httpx client whose requests reach the sandbox app (as the worker's client would reach Exact)."""
    from tests.booking.harness import sandbox_http

    async with sandbox_http(sandbox) as client:
        yield client
