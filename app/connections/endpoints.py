"""Configuration API for Exact connections: OAuth connect per country, divisions, reference data.

    POST /api/v1/connections                          admin     a pending connection (country or base_url)
    GET  /api/v1/connections                          viewer    the connections this key sees
    GET  /api/v1/connections/{id}                     viewer    one, with its divisions
    GET  /api/v1/connections/{id}/authorize           admin     302 to Exact's consent page (signed state)
    GET  /api/v1/connections/{id}/divisions           viewer    divisions, each with the integrations on it
    POST /api/v1/connections/{id}/divisions/refresh   operator  read system/Divisions again
    POST /api/v1/divisions/{d}/reference/refresh      operator  reload the division's reference data
    GET  /api/v1/divisions/{d}/reference/{kind}       viewer    cached reference data, for configuration screens
    GET  /oauth/exact/callback                        (state)   where Exact sends the user back

Tokens never leave the database; no answer carries one.
"""

from __future__ import annotations

import html
from datetime import datetime
from typing import Annotated, Any

import httpx
import structlog
from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select, update

from app.connections import reference
from app.connections.models import ExactConnection, ExactDivision, ReferenceItem
from app.connections.oauth import STATE_MAX_AGE_SECONDS, BadState, read_state, sign_state
from app.connections.service import (
    NEEDS_CONSENT,
    PENDING,
    ConnectError,
    complete_consent,
    division_json,
    known_divisions,
    make_exact_client,
    oauth_app,
    refresh_divisions,
    refresh_reference,
    reference_refreshed_at,
)
from app.db.base import utcnow
from app.deps import DB, Admin, Operator, Resources, Viewer
from app.exact.client import ExactClient
from app.exact.errors import ExactAuthError, ExactError, ExactRateLimited, NeedsConsent, RateBudgetExhausted
from app.exact.hosts import base_url_for, normalize_base_url
from app.exact.tokens import authorize_url
from app.integrations.models import Integration
from app.tenancy.access import resolve_tenant
from app.tenancy.auth import Principal

log = structlog.get_logger(__name__)

router = APIRouter(prefix="/api/v1", tags=["exact connections"])
callback_router = APIRouter(tags=["exact connections"])

_COUNTRY_BY_BASE = {base_url_for(c): c for c in ("nl", "be", "de", "fr", "es", "uk", "com")}


# --------------------------------------------------------------------------- process resources


def open_exact_http(app: Any, settings: Any, given: httpx.AsyncClient | None) -> None:
    """The API process's one httpx client for Exact (a test passes one wired to the sandbox)."""
    app.state.exact_http_owned = given is None
    app.state.exact_http = given or httpx.AsyncClient(
        timeout=settings.exact_timeout_seconds, limits=httpx.Limits(max_connections=20, max_keepalive_connections=10))
    app.state.exact_client = None


async def close_exact_http(app: Any) -> None:
    if getattr(app.state, "exact_http_owned", False):
        await app.state.exact_http.aclose()


def _resources(request: Request) -> Resources:
    return request.app.state.resources  # type: ignore[no-any-return]


def _redis(res: Resources) -> Any:
    if res.redis is None:
        raise HTTPException(503, "talking to Exact needs Redis (the shared token lock and rate budget); "
                                 "this API process runs without it")
    return res.redis


def exact_client(request: Request) -> ExactClient:
    """The process's Exact client (token manager + shared limiter), made on first use."""
    state = request.app.state
    if getattr(state, "exact_client", None) is None:
        res = _resources(request)
        state.exact_client = make_exact_client(state.exact_http, _redis(res), res.sessionmaker, res.settings)
    return state.exact_client  # type: ignore[no-any-return]


def exact_http_error(exc: Exception, *, connection_id: int | None = None) -> HTTPException:
    """An Exact failure during an API call, as a plain HTTP answer (never a 500)."""
    if isinstance(exc, RateBudgetExhausted | ExactRateLimited):
        retry_at = exc.retry_at_ms
        seconds = max(1, int((retry_at - utcnow().timestamp() * 1000) / 1000) + 1) if retry_at else 60
        return HTTPException(429, f"Exact's call budget for this division is used up; try again in {seconds} s",
                             headers={"Retry-After": str(seconds)})
    if isinstance(exc, NeedsConsent):
        return HTTPException(409, f"the Exact connection needs consent again ({exc.reason}); authorize it at "
                                  f"/api/v1/connections/{exc.connection_id}/authorize")
    if isinstance(exc, ExactAuthError) and exc.status == 403:
        why = f" ({exc.reason})" if exc.reason else ""
        return HTTPException(409, f"Exact refused access{why}: the Exact user of connection {connection_id} "
                                  "may not open this division, or the app lacks a scope")
    message = getattr(exc, "message", None) or type(exc).__name__
    return HTTPException(502, f"Exact failed: {message}")


# --------------------------------------------------------------------------- shapes


def country_of(base_url: str) -> str | None:
    return _COUNTRY_BY_BASE.get(base_url)


def connection_json(connection: ExactConnection, divisions: list[ExactDivision] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": connection.id, "tenant_id": connection.tenant_id, "name": connection.name,
        "base_url": connection.base_url, "country": country_of(connection.base_url),
        "client_id": connection.client_id, "state": connection.state, "state_reason": connection.state_reason,
        "exact_user_id": connection.exact_user_id, "exact_user_name": connection.exact_user_name,
        "refreshed_at": connection.refreshed_at, "created_at": connection.created_at,
        "updated_at": connection.updated_at,
        "authorize_path": f"/api/v1/connections/{connection.id}/authorize",
    }
    if divisions is not None:
        body["divisions"] = [division_json(d) for d in divisions]
    return body


class ConnectionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    country: str | None = Field(default=None, description="nl, be, de, fr, es, uk (co.uk) or com (us)")
    base_url: str | None = Field(default=None, description="Instead of a country: another Exact host, such as "
                                                           "the sandbox (installation admin keys only)")
    tenant_id: int | None = Field(default=None, description="Default: the key's own tenant")


# --------------------------------------------------------------------------- access


async def visible_connection(db: DB, who: Principal, connection_id: int) -> ExactConnection:
    connection = await db.get(ExactConnection, connection_id)
    if connection is None or not who.sees_tenant(connection.tenant_id):
        raise HTTPException(404, f"connection {connection_id} not found")
    return connection


async def reachable_connection(db: DB, who: Principal, division: int, connection_id: int | None) -> ExactConnection:
    """The connection behind (connection, division) for this key: it sees the connection, or one
    of its integrations books into that division through it (a firm's client sees the division
    its shop books into, not the firm's whole connection)."""
    visible_integrations = select(Integration.connection_id).where(Integration.division == division)
    if who.tenant_ids is not None:
        visible_integrations = visible_integrations.where(Integration.tenant_id.in_(who.tenant_ids))
    if connection_id is None:
        own = select(ExactDivision.connection_id).join(
            ExactConnection, ExactConnection.id == ExactDivision.connection_id).where(ExactDivision.code == division)
        if who.tenant_ids is not None:
            own = own.where(ExactConnection.tenant_id.in_(who.tenant_ids))
        ids = sorted({*(await db.execute(own)).scalars(), *(await db.execute(visible_integrations)).scalars()}
                     - {None})
        if not ids:
            raise HTTPException(404, f"division {division} not found in any connection this key sees")
        if len(ids) > 1:
            raise HTTPException(422, f"division {division} is reached through connections "
                                     f"{', '.join(map(str, ids))}: give connection_id")
        connection_id = ids[0]
    connection = await db.get(ExactConnection, connection_id)
    if connection is None:
        raise HTTPException(404, f"connection {connection_id} not found")
    if not who.sees_tenant(connection.tenant_id):
        through = (await db.execute(visible_integrations.where(Integration.connection_id == connection_id)
                                    .limit(1))).first()
        if through is None:
            raise HTTPException(404, f"connection {connection_id} not found")
    known = await known_divisions(db, connection_id)
    if known and division not in known:
        raise HTTPException(404, f"division {division} is not one of connection {connection_id}'s divisions "
                                 f"({', '.join(str(code) for code in known)})")
    return connection


# --------------------------------------------------------------------------- connections


@router.post("/connections", status_code=201)
async def create_connection(body: ConnectionCreate, request: Request, db: DB, who: Admin) -> dict[str, Any]:
    """A pending connection; then send the Exact user to its `authorize_path`."""
    if (body.country is None) == (body.base_url is None):
        raise HTTPException(422, "give either country (nl, be, de, fr, es, uk, com) or base_url")
    try:
        base_url = base_url_for(body.country) if body.country else normalize_base_url(body.base_url or "")
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from exc
    if body.base_url is not None and country_of(base_url) is None and who.tenant_id is not None:
        # Koppel sends its app's client secret to the token endpoint of this host.
        raise HTTPException(403, "a base_url other than Exact's own hosts needs an installation admin key; "
                                 "choose a country instead")
    settings = _resources(request).settings
    async with db.begin():
        tenant = await resolve_tenant(db, who, body.tenant_id)
        now = utcnow()
        connection = ExactConnection(tenant_id=tenant.id, name=body.name.strip(), base_url=base_url,
                                     client_id=settings.exact_client_id, state=PENDING, created_at=now,
                                     updated_at=now)
        db.add(connection)
        await db.flush()
        body_out = connection_json(connection, [])
    log.info("exact.connection_created", connection_id=connection.id, tenant_id=tenant.id)
    return body_out


@router.get("/connections")
async def list_connections(db: DB, who: Viewer) -> dict[str, Any]:
    query = select(ExactConnection).order_by(ExactConnection.id)
    if who.tenant_ids is not None:
        query = query.where(ExactConnection.tenant_id.in_(who.tenant_ids))
    connections = list((await db.execute(query)).scalars())
    counts = dict((await db.execute(
        select(ExactDivision.connection_id, func.count()).where(
            ExactDivision.connection_id.in_([c.id for c in connections]), ExactDivision.available.is_(True))
        .group_by(ExactDivision.connection_id))).all()) if connections else {}
    return {"connections": [{**connection_json(c), "division_count": counts.get(c.id, 0)} for c in connections]}


@router.get("/connections/{connection_id}")
async def get_connection(connection_id: int, db: DB, who: Viewer) -> dict[str, Any]:
    connection = await visible_connection(db, who, connection_id)
    return connection_json(connection, list((await known_divisions(db, connection_id)).values()))


def _wants_json(request: Request) -> bool:
    accept = request.headers.get("accept", "").lower()
    return "application/json" in accept and "text/html" not in accept


@router.get("/connections/{connection_id}/authorize", status_code=302,
            responses={302: {"description": "To Exact's consent page"},
                       200: {"description": "With `Accept: application/json`: the URL instead of a redirect"}})
async def authorize(connection_id: int, request: Request, db: DB, who: Admin) -> Response:
    """Send the Exact user to Exact's consent page; Exact sends them back to /oauth/exact/callback.

    The link carries a signed state naming this connection and is valid for 10 minutes, so it
    may be handed to whoever owns the Exact login."""
    connection = await visible_connection(db, who, connection_id)
    await db.commit()  # read-only; unlike a rollback, a commit keeps loaded objects usable
    settings = _resources(request).settings
    state = sign_state(settings.secret_key.get_secret_value(), connection.id)
    url = authorize_url(connection.base_url, oauth_app(settings, connection.client_id), state)
    if _wants_json(request):
        return JSONResponse({"authorize_url": url, "expires_in": STATE_MAX_AGE_SECONDS})
    return RedirectResponse(url, status_code=302)


@router.get("/connections/{connection_id}/divisions")
async def connection_divisions(connection_id: int, db: DB, who: Viewer) -> dict[str, Any]:
    """The accountant portal: every division of the connection and the integrations on each."""
    connection = await visible_connection(db, who, connection_id)
    divisions = await known_divisions(db, connection_id)
    query = select(Integration).where(Integration.connection_id == connection_id).order_by(Integration.id)
    if who.tenant_ids is not None:
        query = query.where(Integration.tenant_id.in_(who.tenant_ids))
    by_division: dict[int, list[dict[str, Any]]] = {}
    for integration in (await db.execute(query)).scalars():
        if integration.division is not None:
            by_division.setdefault(integration.division, []).append({
                "id": integration.id, "name": integration.name, "source": integration.source,
                "tenant_id": integration.tenant_id, "enabled": integration.enabled})
    rows = []
    for code in sorted({*divisions, *by_division}):
        known = divisions.get(code)
        row = division_json(known) if known is not None else {"division": code, "available": None,
                                                              "description": None}
        rows.append({**row, "integrations": by_division.get(code, [])})
    return {"connection_id": connection.id, "state": connection.state, "divisions": rows}


@router.post("/connections/{connection_id}/divisions/refresh")
async def refresh_connection_divisions(connection_id: int, request: Request, db: DB,
                                       who: Operator) -> dict[str, Any]:
    """Read `system/Divisions` again (a division added to the Exact user since the consent)."""
    connection = await visible_connection(db, who, connection_id)
    state = connection.state
    await db.commit()  # read-only; unlike a rollback, a commit keeps loaded objects usable
    if state != "active":
        raise HTTPException(409, f"connection {connection_id} is {state}; authorize it first")
    res = _resources(request)
    try:
        divisions = await refresh_divisions(res.sessionmaker, exact_client(request), res.settings, connection_id)
    except ExactError as exc:
        raise exact_http_error(exc, connection_id=connection_id) from exc
    return {"connection_id": connection_id, "divisions": [division_json(d) for d in divisions]}


# --------------------------------------------------------------------------- reference data


def _kind(name: str) -> str:
    key = name.strip().lower().replace("-", "_").replace("centre", "center")
    for candidate in (key, key[:-1] if key.endswith("s") else key):
        if candidate in reference.KINDS:
            return candidate
    raise HTTPException(404, f"unknown reference kind '{name}'; kinds are {', '.join(reference.KINDS)}")


def _code_order(code: str) -> tuple[int, int, str]:
    return (0, int(code), code) if code.isdigit() else (1, 0, code)


def item_json(item: ReferenceItem) -> dict[str, Any]:
    return {"code": item.code, "description": item.description, "exact_id": item.exact_id, **(item.data or {})}


@router.post("/divisions/{division}/reference/refresh")
async def refresh_division_reference(
    division: int, request: Request, db: DB, who: Operator,
    connection_id: Annotated[int | None, Query(description="Needed when the division is reached through "
                                                           "more than one connection")] = None,
    kind: Annotated[list[str] | None, Query(description="Only these kinds (default: all)")] = None,
) -> dict[str, Any]:
    """Reload the division's reference data from Exact (through the shared rate budget)."""
    connection = await reachable_connection(db, who, division, connection_id)
    connection_id, state = connection.id, connection.state
    await db.commit()  # no transaction stays open while Exact is called (commit keeps the objects)
    if state == PENDING:
        raise HTTPException(409, f"connection {connection_id} is not authorized yet")
    kinds = tuple(dict.fromkeys(_kind(k) for k in kind)) if kind else reference.ALL_KINDS
    res = _resources(request)
    try:
        counts = await refresh_reference(res.sessionmaker, exact_client(request), res.settings, connection_id,
                                         division, kinds)
    except ExactError as exc:
        raise exact_http_error(exc, connection_id=connection_id) from exc
    return {"connection_id": connection_id, "division": division, "counts": counts, "refreshed_at": utcnow()}


@router.get("/divisions/{division}/reference/{kind}")
async def division_reference(
    division: int, kind: str, db: DB, who: Viewer,
    connection_id: int | None = None,
    revenue_only: Annotated[bool, Query(description="GL accounts: only profit-and-loss revenue accounts, "
                                                    "the ones revenue may be mapped to")] = False,
    type: Annotated[str | None, Query(description="Journals: sales, cash, bank, purchase, general, …; "
                                                  "VAT codes: incl, excl, zero, none; GL accounts: the type "
                                                  "number")] = None,  # noqa: A002
    include_blocked: bool = False,
) -> dict[str, Any]:
    """Cached reference data of a division (POST …/reference/refresh to reload it)."""
    name = _kind(kind)
    connection = await reachable_connection(db, who, division, connection_id)
    items = list((await reference.lookup(db, connection.id, division, name)).values())
    loaded = await reference_refreshed_at(db, connection.id, division)
    if not include_blocked:
        items = [i for i in items if not (i.data or {}).get("blocked")]
    if revenue_only:
        items = [i for i in items if (i.data or {}).get("revenue")]
    if type is not None:
        wanted = type.strip().lower()
        items = [i for i in items if wanted in {str((i.data or {}).get(field) or "").lower()
                                                for field in ("type_name", "vat_type", "type")}]
    items.sort(key=lambda i: _code_order(i.code))
    return {"kind": name, "connection_id": connection.id, "division": division,
            "refreshed_at": loaded.get(name), "loaded": name in loaded,
            "items": [item_json(i) for i in items]}


# --------------------------------------------------------------------------- the OAuth callback


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Koppel · Exact Online</title>
<style>body{{font-family:system-ui,sans-serif;max-width:40rem;margin:4rem auto;padding:0 1rem;color:#222}}
h1{{font-size:1.4rem}} .ok{{color:#17692b}} .bad{{color:#a31d1d}} code{{background:#f3f3f3;padding:0 .2rem}}</style>
</head><body><h1 class="{css}">{title}</h1><p>{message}</p>{extra}</body></html>"""


def _page(request: Request, status: int, code: str, title: str, message: str, *,
          extra: dict[str, Any] | None = None, items: list[str] | None = None) -> Response:
    if _wants_json(request):
        body: dict[str, Any] = {"status": "connected" if status < 400 else "error", "code": code,
                                "detail": message, **(extra or {})}
        return JSONResponse(body, status_code=status, headers={"Cache-Control": "no-store"})
    listed = "".join(f"<li>{html.escape(i)}</li>" for i in items or [])
    page = _PAGE.format(css="ok" if status < 400 else "bad", title=html.escape(title),
                        message=html.escape(message),
                        extra=(f"<ul>{listed}</ul>" if listed else "")
                        + ("" if status < 400 else f"<p><small>error code: <code>{html.escape(code)}</code>"
                                                   "</small></p>"))
    return HTMLResponse(page, status_code=status, headers={"Cache-Control": "no-store"})


@callback_router.get("/oauth/exact/callback", summary="Exact's redirect back after consent")
async def exact_callback(request: Request, code: str | None = None, state: str | None = None,
                         error: str | None = None, error_description: str | None = None) -> Response:
    """Exchange the code, learn the Exact user and divisions, store the token chain.

    Answers an HTML page, or JSON when the caller accepts `application/json` (and not HTML)."""
    res = _resources(request)
    failed = "Exact Online was not connected"
    try:
        connection_id = read_state(res.settings.secret_key.get_secret_value(), state)
    except BadState as exc:
        return _page(request, 400, exc.code, failed, exc.message)
    if error:
        declined = error == "access_denied"
        message = ("access to Exact Online was declined on Exact's consent page; nothing changed"
                   if declined else f"Exact reported an error: {error_description or error}")
        await _note_declined(res, connection_id, message)
        return _page(request, 400, "consent_denied" if declined else "consent_error", failed, message,
                     extra={"connection_id": connection_id})
    if not code:
        return _page(request, 400, "missing_code", failed, "the callback carries neither a code nor an error; "
                                                           "start again from the authorize link")
    if res.redis is None:
        return _page(request, 503, "redis_unavailable", failed, "this API process runs without Redis, which "
                                                                "Exact calls need; try again later")
    try:
        result = await complete_consent(res.sessionmaker, request.app.state.exact_http, res.redis, res.settings,
                                        connection_id, code)
    except ConnectError as exc:
        return _page(request, exc.status, exc.code, failed, exc.message, extra={"connection_id": connection_id})
    except Exception as exc:  # noqa: BLE001 - the person in the browser gets a page, the log the trace
        log.exception("exact.callback_failed", connection_id=connection_id)
        return _page(request, 502, "connect_failed", failed,
                     f"completing the connection failed ({type(exc).__name__}); start again from the "
                     "authorize link", extra={"connection_id": connection_id})
    if result.requeued and res.relay is not None:
        res.relay.poke()
    names = [f"{d['division']} {d['description'] or ''}".strip() for d in result.divisions]
    message = (f"connection '{result.name}' now books as Exact user {result.exact_user_name or result.exact_user_id}, "
               f"with {len(names)} division{'s' if len(names) != 1 else ''}")
    if result.merged_from is not None:
        message += (f" (this Exact user was already connected: connection {result.connection_id} was reused and "
                    f"the new connection {result.merged_from} merged into it)")
    if result.requeued:
        message += f"; {len(result.requeued)} waiting order(s) queued again"
    return _page(request, 200, "connected", "Exact Online connected", message, items=names, extra={
        "connection_id": result.connection_id, "merged_from": result.merged_from,
        "exact_user_id": result.exact_user_id, "exact_user_name": result.exact_user_name,
        "reconnected": result.reconnected, "requeued_orders": result.requeued,
        "divisions": jsonable(result.divisions)})


def jsonable(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v.isoformat() if isinstance(v, datetime) else v for k, v in row.items()} for row in rows]


async def _note_declined(res: Resources, connection_id: int, message: str) -> None:
    """A pending connection remembers why it is still pending; an active one is left alone."""
    async with res.sessionmaker() as session, session.begin():
        await session.execute(update(ExactConnection).where(
            ExactConnection.id == connection_id, ExactConnection.state == PENDING).values(
            state_reason=message, updated_at=utcnow()))


__all__ = ["router", "callback_router", "open_exact_http", "close_exact_http", "exact_client", "NEEDS_CONSENT"]
