"""The async engine and session factory, with SQLite set up for safe concurrent writers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine


def _json_dumps(value: Any) -> str:
    # orjson: JSON columns are written on every delivery; Decimal (should one slip in) as text.
    return orjson.dumps(value, default=str).decode()


def create_engine(url: str, *, pool_size: int = 10, lock_timeout_ms: int = 5000,
                  echo: bool = False) -> AsyncEngine:
    """`lock_timeout_ms`: how long a statement waits for a lock before giving up, so the
    webhook answers 503 (and the sender retries) well inside the sender's own timeout."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(url, lock_timeout_ms=lock_timeout_ms, echo=echo)
    # No pre-ping: it would cost a round trip on every checkout of the webhook path. A
    # connection that died with a server restart fails once; the webhook answers 503 (the
    # sender retries) and a job retries, and the pool replaces the connection.
    kwargs: dict[str, Any] = {"pool_size": pool_size, "max_overflow": pool_size, "pool_recycle": 1800,
                              "json_serializer": _json_dumps, "json_deserializer": orjson.loads}
    if parsed.get_driver_name() == "asyncpg":
        kwargs["connect_args"] = {
            "timeout": 5,
            "command_timeout": 30,
            "server_settings": {"lock_timeout": str(lock_timeout_ms)},
        }
    return create_async_engine(url, echo=echo, **kwargs)


def _sqlite_engine(url: str, *, lock_timeout_ms: int, echo: bool) -> AsyncEngine:
    database = make_url(url).database
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(url, echo=echo, connect_args={"timeout": lock_timeout_ms / 1000},
                                 json_serializer=_json_dumps, json_deserializer=orjson.loads)

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, issue BEGIN (so we can make it IMMEDIATE).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        # WAL lets readers run beside the one writer; FULL makes a commit durable before
        # we answer 2xx; foreign keys are off by default in SQLite.
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(lock_timeout_ms)}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        # A deferred transaction that reads and then writes fails with SQLITE_BUSY when
        # another writer got in between; taking the write lock up front queues instead.
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)
