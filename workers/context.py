"""What one worker process holds: the engine, one httpx client, the Exact client, the relay.

Built once in arq's on_startup and handed to every job through `ctx`. A worker refuses to
start on a database that is not at the newest migration.
"""

from __future__ import annotations

from typing import Any

import httpx
import structlog
from prometheus_client import start_http_server

from app.booking.service import BookingService
from app.connections.tokens import DatabaseTokenStore
from app.db.engine import create_engine, create_sessionmaker
from app.db.migrate import ensure_current
from app.exact.client import ExactClient
from app.exact.ratelimit import DivisionRateLimiter
from app.exact.tokens import TokenManager
from app.observability import configure_logging
from app.orders.outbox import OutboxRelay
from app.settings import Settings, get_settings

log = structlog.get_logger(__name__)


async def startup(ctx: dict[str, Any], settings: Settings | None = None) -> None:
    settings = settings or ctx.get("settings") or get_settings()
    configure_logging(settings.log_level, settings.log_json)
    engine = create_engine(settings.database_url, pool_size=settings.database_pool_size,
                           lock_timeout_ms=settings.database_lock_timeout_ms)
    try:
        await ensure_current(engine)
    except Exception:
        await engine.dispose()
        raise
    sessionmaker = create_sessionmaker(engine)
    # Tests hand in a client wired to an in-process sandbox; otherwise the process's one client.
    http = ctx.get("http") or httpx.AsyncClient(
        timeout=settings.exact_timeout_seconds, limits=httpx.Limits(max_connections=50, max_keepalive_connections=20))
    ctx["own_http"] = "http" not in ctx
    redis = ctx["redis"]
    tokens = TokenManager(http, redis, DatabaseTokenStore(sessionmaker, settings.secret_key.get_secret_value()))
    exact = ExactClient(http, tokens, DivisionRateLimiter(redis), timeout=settings.exact_timeout_seconds)
    if settings.worker_metrics_port and not ctx.get("metrics_started"):
        # Each worker process serves its own metrics (Exact calls, 429s, job latency).
        start_http_server(settings.worker_metrics_port)
        ctx["metrics_started"] = True
    relay = OutboxRelay(sessionmaker, redis)
    relay.start()
    ctx.update(settings=settings, engine=engine, sessionmaker=sessionmaker, http=http, exact=exact, relay=relay,
               booking=BookingService(sessionmaker, exact, redis, settings))
    log.info("worker_started", queue=settings.queue_name)


async def shutdown(ctx: dict[str, Any]) -> None:
    if "relay" in ctx:
        await ctx["relay"].stop()
    if ctx.get("own_http") and "http" in ctx:
        await ctx["http"].aclose()
    if "engine" in ctx:
        await ctx["engine"].dispose()
