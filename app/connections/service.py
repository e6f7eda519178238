"""Connecting Exact Online: consent, divisions, reference data, and what a reconnect releases.

No database transaction is ever held open across a call to Exact (SQLite would deadlock on
the token store; PostgreSQL would hold a connection for nothing): Exact is read first, then
the result is written in one short transaction.

One token chain per (Exact user, app). Exact (per Invantive) expires every older refresh token
of a user and app once a newer chain is used, so a second connection for the same Exact user
would silently kill the first. A consent by an Exact user who already has a connection here
therefore *reuses* that connection: the new token chain replaces the old one on the existing
row, and the pending row that started the consent is merged into it and deleted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
import structlog
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.connections import reference
from app.connections.models import ExactConnection, ExactDivision, ReferenceItem
from app.connections.tokens import DatabaseTokenStore, save_token
from app.db.base import utcnow
from app.exact.client import ConnectionRef, ExactClient
from app.exact.errors import (
    ExactAuthError,
    ExactError,
    ExactRateLimited,
    NeedsConsent,
    RateBudgetExhausted,
)
from app.exact.ratelimit import DivisionRateLimiter
from app.exact.tokens import LOCK_KEY, OAuthApp, StoredToken, TokenManager
from app.integrations.models import Integration
from app.orders.models import Order
from app.orders.states import OrderState
from app.settings import Settings
from app.tenancy.models import Tenant

log = structlog.get_logger(__name__)

DIVISION_SELECT = "Code,Description,Country,Currency,CustomerName,VATNumber,IsMainDivision,BlockingStatus"
PENDING, ACTIVE, NEEDS_CONSENT = "pending", "active", "needs_consent"


class ConnectError(Exception):
    """A consent that cannot be completed; ``status`` and ``code`` are for the callback page."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


# --------------------------------------------------------------------------- building blocks


def oauth_app(settings: Settings, client_id: str | None = None) -> OAuthApp:
    """The installation's one Exact app registration (a connection records which client id)."""
    return OAuthApp(client_id=client_id or settings.exact_client_id,
                    client_secret=settings.exact_client_secret.get_secret_value(),
                    redirect_uri=settings.exact_redirect_uri)


def connection_ref(connection: ExactConnection, settings: Settings) -> ConnectionRef:
    return ConnectionRef(id=connection.id, base_url=connection.base_url, app=oauth_app(settings, connection.client_id))


def make_exact_client(http: httpx.AsyncClient, redis: Any, sessionmaker: async_sessionmaker[AsyncSession],
                      settings: Settings) -> ExactClient:
    """An Exact client like the workers': the shared token lock and the shared rate budget."""
    tokens = TokenManager(http, redis, DatabaseTokenStore(sessionmaker, settings.secret_key.get_secret_value()))
    return ExactClient(http, tokens, DivisionRateLimiter(redis), timeout=settings.exact_timeout_seconds)


class _HeldToken:
    """A TokenStore holding one just-exchanged token in memory, until we know which connection
    row it belongs to (the Exact user decides that, and we learn the user with this token)."""

    def __init__(self, token: StoredToken) -> None:
        self.token = token

    async def load(self, connection_id: int) -> StoredToken | None:
        return self.token

    async def save(self, connection_id: int, token: StoredToken) -> None:
        self.token = token

    async def mark_needs_consent(self, connection_id: int, reason: str) -> None:
        raise ConnectError(502, "exact_refused", f"Exact refused the new token at once: {reason}")


async def tenants_related(session: AsyncSession, first: int, second: int) -> bool:
    """The same tenant, or a firm and one of its client tenants."""
    if first == second:
        return True
    parents = dict((await session.execute(
        select(Tenant.id, Tenant.parent_id).where(Tenant.id.in_([first, second])))).all())
    return parents.get(first) == second or parents.get(second) == first


# --------------------------------------------------------------------------- consent


@dataclass
class ConsentResult:
    connection_id: int
    name: str
    exact_user_id: str
    exact_user_name: str | None
    divisions: list[dict[str, Any]]
    merged_from: int | None = None  # the pending connection merged into an existing one
    reconnected: bool = False  # the connection needed consent before
    requeued: list[int] = field(default_factory=list)


def _division_row(row: dict[str, Any]) -> dict[str, Any] | None:
    try:
        code = int(row.get("Code"))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return {
        "code": code,
        "description": (row.get("Description") or "")[:300] or None,
        "country": (row.get("Country") or "").strip() or None,
        "currency": (row.get("Currency") or "").strip() or None,
        "customer_name": (row.get("CustomerName") or "")[:300] or None,
        "vat_number": (row.get("VATNumber") or "").strip()[:40] or None,
        "is_main": bool(row.get("IsMainDivision")),
        "blocked": bool(row.get("BlockingStatus")),
    }


async def store_divisions(session: AsyncSession, connection_id: int, rows: list[dict[str, Any]],
                          current: int | None) -> list[ExactDivision]:
    """Upsert the divisions Exact listed; the ones it no longer lists become unavailable."""
    now = utcnow()
    existing = {d.code: d for d in (await session.execute(
        select(ExactDivision).where(ExactDivision.connection_id == connection_id))).scalars()}
    seen: set[int] = set()
    for raw in rows:
        values = _division_row(raw)
        if values is None or values["code"] in seen:
            continue
        seen.add(values["code"])
        division = existing.get(values["code"])
        if division is None:
            division = ExactDivision(connection_id=connection_id, code=values["code"])
            session.add(division)
            existing[values["code"]] = division
        for name, value in values.items():
            setattr(division, name, value)
        division.is_current = values["code"] == current
        division.available = True
        division.refreshed_at = now
    for code, division in existing.items():
        if code not in seen:
            division.available = False
            division.is_current = False
    await session.flush()
    return sorted(existing.values(), key=lambda d: d.code)


async def _read_user_and_divisions(client: ExactClient, ref: ConnectionRef) -> tuple[dict[str, Any], int,
                                                                                        list[dict[str, Any]]]:
    me = await client.for_connection(ref).me()
    current = int(me.get("CurrentDivision") or 0)
    if not me.get("UserID") or current <= 0:
        raise ConnectError(502, "exact_unexpected", "Exact's current/Me did not name the user and current division")
    rows = await client.for_division(ref, current).get_all("system/Divisions", {"$select": DIVISION_SELECT})
    return me, current, rows


def _exact_failure(exc: Exception, during: str) -> ConnectError:
    if isinstance(exc, ConnectError):
        return exc
    if isinstance(exc, RateBudgetExhausted | ExactRateLimited):
        return ConnectError(503, "exact_rate_limited",
                            f"Exact's rate limit was reached while {during}; wait a minute and start again")
    message = getattr(exc, "message", None) or type(exc).__name__
    return ConnectError(502, "exact_unavailable", f"Exact failed while {during} ({message}); start again")


async def complete_consent(sessionmaker: async_sessionmaker[AsyncSession], http: httpx.AsyncClient, redis: Any,
                           settings: Settings, connection_id: int, code: str) -> ConsentResult:
    """The OAuth callback's work: exchange the code, learn the user and divisions, store the chain."""
    async with sessionmaker() as session:
        pending = await session.get(ExactConnection, connection_id)
        if pending is None:
            raise ConnectError(404, "connection_not_found",
                               f"Exact connection {connection_id} no longer exists; create it again")
        base_url, client_id = pending.base_url, pending.client_id
        owner_user, owner_name, tenant_id = pending.exact_user_id, pending.exact_user_name, pending.tenant_id
    app = oauth_app(settings, client_id)

    # 1. The code: single use, three minutes. Refusals are the user's to retry, not ours to mask.
    try:
        exchanger = TokenManager(http, redis, _HeldToken(None))  # type: ignore[arg-type]
        token = await exchanger.exchange_code(base_url, app, code)
    except ExactAuthError as exc:
        raise ConnectError(400, "code_refused",
                           f"Exact refused the authorization code: {exc.message}. A code can be used once and is "
                           "valid for 3 minutes; start again from the authorize link") from exc
    except ExactError as exc:
        raise _exact_failure(exc, "exchanging the authorization code") from exc

    # 2. Who consented, and which divisions they ticked (with the new token, still in memory).
    held = _HeldToken(token)
    client = ExactClient(http, TokenManager(http, redis, held), DivisionRateLimiter(redis),
                         timeout=settings.exact_timeout_seconds)
    ref = ConnectionRef(id=connection_id, base_url=base_url, app=app)
    try:
        me, current, rows = await _read_user_and_divisions(client, ref)
    except (ExactError, ConnectError) as exc:
        raise _exact_failure(exc, "reading the Exact user and divisions") from exc
    user_id = str(me["UserID"])
    user_name = me.get("FullName") or me.get("UserName")

    # 3. Which row keeps the chain: the user's existing connection, if there is one.
    if owner_user and owner_user != user_id:
        raise ConnectError(409, "other_exact_user",
                           f"this connection belongs to Exact user {owner_name or owner_user}, but "
                           f"{user_name or user_id} gave consent; log in to Exact as that user, or create a new "
                           "connection for this one")
    async with sessionmaker() as session:
        existing = (await session.execute(select(ExactConnection.id, ExactConnection.tenant_id).where(
            ExactConnection.client_id == client_id, ExactConnection.exact_user_id == user_id,
            ExactConnection.id != connection_id))).first()
        if existing is not None and not await tenants_related(session, existing.tenant_id, tenant_id):
            raise ConnectError(409, "exact_user_connected_elsewhere",
                               f"Exact user {user_name or user_id} is already connected to Koppel by another "
                               "tenant. Exact keeps one token chain per user and app, so a second connection "
                               "would break the first: connect a different Exact user, or ask the other tenant")
    target_id = existing.id if existing is not None else connection_id

    # 4. Store, under the connection's token lock so no worker refreshes the old chain meanwhile.
    lock = redis.lock(LOCK_KEY.format(connection_id=target_id), timeout=60, blocking_timeout=30, thread_local=False)
    if not await lock.acquire():
        raise ConnectError(503, "busy", "the connection is busy refreshing its token; start again in a minute")
    try:
        result = await _store_consent(sessionmaker, settings, connection_id, target_id, held.token, user_id,
                                      user_name, rows, current)
    finally:
        try:
            await lock.release()
        except Exception:  # noqa: BLE001 - an expired lock is harmless here
            pass
    log.info("exact.connected", connection_id=result.connection_id, merged_from=result.merged_from,
             divisions=len(result.divisions), reconnected=result.reconnected)
    result.requeued = await requeue_waiting(sessionmaker, result.connection_id)
    return result


async def _store_consent(sessionmaker: async_sessionmaker[AsyncSession], settings: Settings, pending_id: int,
                         target_id: int, token: StoredToken, user_id: str, user_name: str | None,
                         rows: list[dict[str, Any]], current: int) -> ConsentResult:
    secret = settings.secret_key.get_secret_value()
    try:
        async with sessionmaker() as session, session.begin():
            target = (await session.execute(select(ExactConnection).where(ExactConnection.id == target_id)
                                            .with_for_update())).scalar_one_or_none()
            if target is None:
                raise ConnectError(404, "connection_not_found", "the Exact connection disappeared meanwhile")
            reconnected = target.state == NEEDS_CONSENT
            merged_from = None
            if target_id != pending_id:
                await _merge_into(session, pending_id, target_id)
                merged_from = pending_id
            target.exact_user_id, target.exact_user_name = user_id, user_name
            await session.flush()
            await save_token(session, secret, target_id, token)
            divisions = await store_divisions(session, target_id, rows, current)
            name = target.name
    except IntegrityError as exc:
        # Another consent by the same Exact user won the race for this (app, user) pair.
        raise ConnectError(409, "concurrent_consent",
                           "another consent for the same Exact user finished at the same moment; "
                           "reload the connections list") from exc
    return ConsentResult(connection_id=target_id, name=name, exact_user_id=user_id, exact_user_name=user_name,
                         divisions=[division_json(d) for d in divisions if d.available], merged_from=merged_from,
                         reconnected=reconnected)


async def _merge_into(session: AsyncSession, pending_id: int, target_id: int) -> None:
    """Point whatever references the pending row at the target, then delete the pending row.

    A pending row never had tokens, so it has no cached reference data, divisions or links;
    those tables are emptied for it to be safe, and integrations (which someone may have made
    from the CLI) move to the kept connection.
    """
    import app.db.models  # noqa: F401 - every table with a connection_id is known

    from app.db.base import Base

    await session.execute(update(Integration).where(Integration.connection_id == pending_id)
                          .values(connection_id=target_id, updated_at=utcnow()))
    for table in Base.metadata.sorted_tables:
        if table.name != Integration.__tablename__ and "connection_id" in table.c:
            await session.execute(delete(table).where(table.c.connection_id == pending_id))
    await session.execute(delete(ExactConnection).where(ExactConnection.id == pending_id))
    await session.flush()


async def requeue_waiting(sessionmaker: async_sessionmaker[AsyncSession], connection_id: int) -> list[int]:
    """After a reconnect: the orders that waited for consent are checked and queued again."""
    from app.orders import repository as orders
    from app.orders.reprocess import NotReprocessable, reprocess

    async with sessionmaker() as session:
        ids = list((await session.execute(
            select(Order.id).join(Integration, Integration.id == Order.integration_id).where(
                Integration.connection_id == connection_id, Order.state == OrderState.WAITING,
                Order.error_code == "needs_consent").order_by(Order.id))).scalars())
    done: list[int] = []
    for order_id in ids:
        # One short transaction per order: one odd order never holds up the rest.
        async with sessionmaker() as session, session.begin():
            order = await orders.get_order(session, order_id, for_update=True)
            if order is None or order.state != OrderState.WAITING:
                continue
            integration = await session.get(Integration, order.integration_id)
            if integration is None:
                continue
            try:
                await reprocess(session, order, integration,
                                who=f"the reconnection of Exact connection {connection_id}")
            except NotReprocessable:
                continue
            done.append(order_id)
    if done:
        log.info("exact.reconnected_orders_requeued", connection_id=connection_id, orders=len(done))
    return done


# --------------------------------------------------------------------------- divisions, reference


def division_json(division: ExactDivision) -> dict[str, Any]:
    return {
        "division": division.code, "description": division.description, "country": division.country,
        "currency": division.currency, "customer_name": division.customer_name,
        "vat_number": division.vat_number, "is_main": division.is_main, "is_current": division.is_current,
        "blocked": division.blocked, "available": division.available, "refreshed_at": division.refreshed_at,
    }


async def refresh_divisions(sessionmaker: async_sessionmaker[AsyncSession], exact: ExactClient,
                            settings: Settings, connection_id: int) -> list[ExactDivision]:
    """Read ``current/Me`` and ``system/Divisions`` again with the stored token chain."""
    async with sessionmaker() as session:
        connection = await session.get(ExactConnection, connection_id)
        if connection is None:
            raise LookupError(f"Exact connection {connection_id} not found")
        ref = connection_ref(connection, settings)
    _, current, rows = await _read_user_and_divisions(exact, ref)
    async with sessionmaker() as session, session.begin():
        return await store_divisions(session, connection_id, rows, current)


async def known_divisions(session: AsyncSession, connection_id: int) -> dict[int, ExactDivision]:
    rows = (await session.execute(select(ExactDivision).where(ExactDivision.connection_id == connection_id)
                                  .order_by(ExactDivision.code))).scalars()
    return {row.code: row for row in rows}


async def refresh_reference(sessionmaker: async_sessionmaker[AsyncSession], exact: ExactClient, settings: Settings,
                            connection_id: int, division: int,
                            kinds: tuple[str, ...] = reference.ALL_KINDS) -> dict[str, int]:
    """Fetch the division's reference data through the rate-limited client, then replace the cache."""
    async with sessionmaker() as session:
        connection = await session.get(ExactConnection, connection_id)
        if connection is None:
            raise LookupError(f"Exact connection {connection_id} not found")
        if connection.state == NEEDS_CONSENT:
            raise NeedsConsent(connection_id, connection.state_reason or "consent was withdrawn or expired")
        ref = connection_ref(connection, settings)
    counts = await reference.refresh(sessionmaker, exact.for_division(ref, division), connection_id, division, kinds)
    log.info("exact.reference_refreshed", connection_id=connection_id, division=division, counts=counts)
    return counts


async def reference_refreshed_at(session: AsyncSession, connection_id: int, division: int) -> dict[str, datetime]:
    """When each kind was last loaded for the division (kinds never loaded are absent)."""
    from sqlalchemy import func

    rows = (await session.execute(select(ReferenceItem.kind, func.max(ReferenceItem.refreshed_at)).where(
        ReferenceItem.connection_id == connection_id, ReferenceItem.division == division)
        .group_by(ReferenceItem.kind))).all()
    return {kind: at for kind, at in rows}


async def refresh_reference_once(settings: Settings, connection_id: int, division: int, *,
                                 kinds: tuple[str, ...] = reference.ALL_KINDS,
                                 http: httpx.AsyncClient | None = None, redis_url: str | None = None) -> dict[str, int]:
    """For ``koppel reference refresh``: its own engine, Redis connection and HTTP client."""
    import redis.asyncio as aioredis

    from app.db.engine import create_engine, create_sessionmaker

    url = redis_url or settings.redis_url
    if not url:
        raise ValueError("set KOPPEL_REDIS_URL (the Redis `koppel run` prints): Exact calls share the token "
                         "lock and rate budget kept there")
    engine = create_engine(settings.database_url)
    redis = aioredis.from_url(url)
    own_http = http is None
    client_http = http or httpx.AsyncClient(timeout=settings.exact_timeout_seconds)
    try:
        sessionmaker = create_sessionmaker(engine)
        exact = make_exact_client(client_http, redis, sessionmaker, settings)
        return await refresh_reference(sessionmaker, exact, settings, connection_id, division, kinds)
    finally:
        if own_http:
            await client_http.aclose()
        await redis.aclose()
        await engine.dispose()
