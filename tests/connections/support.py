"""Helpers for the connection and integration tests: a real API with its Exact HTTP client wired to
the in-process sandbox, tenants with keys, and the browser's part of the OAuth dance."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
from asgi_lifespan import LifespanManager
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.integrations.service import create_tenant
from app.main import create_app
from app.tenancy.auth import create_key
from tests.booking.harness import SANDBOX_URL, e2e_settings

JSON = {"Accept": "application/json"}


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@asynccontextmanager
async def koppel_api(database_url: str, redis_url: str, exact_http: httpx.AsyncClient,
                     **overrides: Any) -> AsyncIterator[httpx.AsyncClient]:
    """The API as production builds it, except that its Exact client talks to the sandbox."""
    app = create_app(e2e_settings(database_url, redis_url, **overrides), redis_url=redis_url, exact_http=exact_http)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://koppel.test") as client:
            yield client


@dataclass
class TenantKeys:
    tenant_id: int
    admin: dict[str, str]
    operator: dict[str, str]
    viewer: dict[str, str]


async def tenant(sessionmaker: async_sessionmaker[AsyncSession], name: str, parent_id: int | None = None) -> TenantKeys:
    async with sessionmaker() as session, session.begin():
        row = await create_tenant(session, name, parent_id)
        keys = {scope: (await create_key(session, tenant_id=row.id, scope=scope, name=f"{scope} of {name}"))[1]
                for scope in ("admin", "operator", "viewer")}
    return TenantKeys(row.id, bearer(keys["admin"]), bearer(keys["operator"]), bearer(keys["viewer"]))


async def installation_admin(sessionmaker: async_sessionmaker[AsyncSession]) -> dict[str, str]:
    async with sessionmaker() as session, session.begin():
        _, key = await create_key(session, tenant_id=None, scope="admin", name="installation")
    return bearer(key)


async def new_connection(api: httpx.AsyncClient, install: dict[str, str], tenant_id: int,
                         name: str = "Exact") -> int:
    """A pending connection to the sandbox (a custom base URL needs the installation admin)."""
    response = await api.post("/api/v1/connections", headers=install,
                              json={"name": name, "base_url": SANDBOX_URL, "tenant_id": tenant_id})
    assert response.status_code == 201, response.text
    assert response.json()["state"] == "pending"
    return int(response.json()["id"])


async def consent_redirect(api: httpx.AsyncClient, sandbox_http: httpx.AsyncClient, connection_id: int,
                           auth: dict[str, str], **sandbox: str) -> str:
    """Authorize → Exact's consent page (the sandbox) → the callback URL Exact redirects to."""
    authorize = await api.get(f"/api/v1/connections/{connection_id}/authorize", headers=auth)
    assert authorize.status_code == 302, authorize.text
    location = authorize.headers["location"]
    assert location.startswith(f"{SANDBOX_URL}/api/oauth2/auth?")
    consent = await sandbox_http.get(location + ("&" + urlencode(sandbox) if sandbox else ""))
    assert consent.status_code == 302, consent.text
    back = urlsplit(consent.headers["location"])
    assert back.path == "/oauth/exact/callback"
    return f"{back.path}?{back.query}"


async def connect(api: httpx.AsyncClient, sandbox_http: httpx.AsyncClient, connection_id: int,
                  auth: dict[str, str], **sandbox: str) -> httpx.Response:
    """The whole browser round trip; the callback answers JSON."""
    callback = await consent_redirect(api, sandbox_http, connection_id, auth, **sandbox)
    return await api.get(callback, headers=JSON)
