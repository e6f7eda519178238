"""The API process: webhooks, the status API, health, readiness and metrics."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from app.connections.endpoints import callback_router as exact_callback_router
from app.connections.endpoints import close_exact_http, open_exact_http
from app.connections.endpoints import router as connections_router
from app.dashboard.routes import install as install_dashboard
from app.db.engine import create_engine, create_sessionmaker
from app.db.migrate import current_revision, head_revision
from app.deps import Resources
from app.integrations.endpoints import router as integrations_router
from app.observability import configure_logging, refresh_gauges
from app.orders.endpoints import router as orders_router
from app.orders.outbox import OutboxRelay
from app.settings import Settings, get_settings
from app.webhooks.config_cache import IntakeConfigCache
from app.webhooks.endpoints import router as webhooks_router

log = structlog.get_logger(__name__)


def create_app(settings: Settings | None = None, *, redis_url: str | None = None,
               exact_http: object | None = None) -> FastAPI:
    """Build the API. `redis_url` overrides the settings (embedded mode passes its private one);
    `exact_http` is the httpx client for Exact (tests pass one wired to the sandbox)."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(settings.log_level, settings.log_json)
        engine = create_engine(settings.database_url, pool_size=settings.database_pool_size,
                               lock_timeout_ms=settings.database_lock_timeout_ms)
        res = Resources(settings=settings, engine=engine, sessionmaker=create_sessionmaker(engine),
                        intake_cache=IntakeConfigCache(settings.secret_key.get_secret_value(),
                                                       ttl=settings.config_cache_seconds))
        url = redis_url or settings.redis_url
        if url:
            from app.queue import connect

            res.redis = await connect(url, settings.queue_name)
            res.relay = OutboxRelay(res.sessionmaker, res.redis)
            res.relay.start()
        app.state.resources = res
        open_exact_http(app, settings, exact_http)  # one httpx client for Exact per process
        try:
            yield
        finally:
            await close_exact_http(app)
            if res.relay is not None:
                await res.relay.stop()
            if res.redis is not None:
                await res.redis.aclose()
            await engine.dispose()

    app = FastAPI(
        title="Koppel",
        version="0.1.0",
        description="Books webshop and point-of-sale orders into Exact Online, exactly once.",
        lifespan=lifespan,
    )
    app.include_router(webhooks_router)
    app.include_router(orders_router)
    install_dashboard(app)
    app.include_router(connections_router)
    app.include_router(exact_callback_router)
    app.include_router(integrations_router)

    @app.get("/metrics", include_in_schema=False)
    async def metrics(request: Request) -> Response:
        # Order and connection gauges come from the database, the truth, at scrape time.
        await refresh_gauges(request.app.state.resources)
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"field": ".".join(str(p) for p in e["loc"]), "reason": e["msg"]} for e in exc.errors()]
        return JSONResponse({"detail": "invalid request", "errors": errors}, status_code=422)

    @app.get("/healthz", tags=["ops"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["ops"])
    async def readyz(request: Request) -> JSONResponse:
        res: Resources = request.app.state.resources
        problems: list[str] = []
        try:
            async with res.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
            if await current_revision(res.engine) != head_revision():
                problems.append("database schema is not at the newest migration")
        except Exception as exc:  # noqa: BLE001 - any failure means not ready
            problems.append(f"database unreachable: {type(exc).__name__}")
        if res.redis is not None:
            try:
                await res.redis.ping()
            except Exception as exc:  # noqa: BLE001
                problems.append(f"redis unreachable: {type(exc).__name__}")
        body = {"status": "ready" if not problems else "not ready", "problems": problems}
        return JSONResponse(body, status_code=200 if not problems else 503)

    return app
