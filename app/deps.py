"""FastAPI dependencies: the process-wide resources and the caller's API key."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.settings import Settings
from app.tenancy.auth import Principal, authenticate


@dataclass
class Resources:
    """What one API process holds: settings, the engine, and (when Redis is up) the queue."""

    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    intake_cache: Any = None  # app.webhooks.config_cache.IntakeConfigCache
    redis: Any | None = None  # arq.connections.ArqRedis
    relay: Any | None = None  # app.orders.outbox.OutboxRelay


async def resources(request: Request) -> Resources:
    # async: FastAPI runs a plain `def` dependency in a thread pool, a costly hop per request.
    return request.app.state.resources  # type: ignore[no-any-return]


async def session(res: Annotated[Resources, Depends(resources)]) -> AsyncIterator[AsyncSession]:
    async with res.sessionmaker() as db:
        yield db


_bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer kpl_…`")


async def principal(
    db: Annotated[AsyncSession, Depends(session)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None or not credentials.credentials:
        raise HTTPException(401, "missing API key (Authorization: Bearer …)", headers={"WWW-Authenticate": "Bearer"})
    found = await authenticate(db, credentials.credentials)
    await db.rollback()
    if found is None:
        raise HTTPException(401, "unknown or revoked API key", headers={"WWW-Authenticate": "Bearer"})
    return found


def require(scope: str) -> Callable[..., Any]:
    async def check(who: Annotated[Principal, Depends(principal)]) -> Principal:
        if not who.allows(scope):
            raise HTTPException(403, f"this API key's scope '{who.scope}' may not do this (needs '{scope}')")
        return who

    return check


DB = Annotated[AsyncSession, Depends(session)]
Viewer = Annotated[Principal, Depends(require("viewer"))]
Operator = Annotated[Principal, Depends(require("operator"))]
Admin = Annotated[Principal, Depends(require("admin"))]
