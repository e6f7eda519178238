"""Status API: orders with filters, one order with its timeline, and counts."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import BaseModel, Field
from sqlalchemy import func, select

from app.connections.models import ExactConnection
from app.deps import DB, Operator, Resources, Viewer, resources
from app.integrations import repository as integrations
from app.orders import repository as orders
from app.orders.models import Order
from app.orders.schemas import IntegrationCounts, OrderDetail, OrderEventOut, OrderPage, OrderSummary, Stats
from app.orders.reprocess import NotReprocessable, reprocess
from app.orders.states import ALL_STATES, REPROCESSABLE
from app.tenancy.auth import Principal

router = APIRouter(prefix="/api/v1", tags=["orders"])


def _cursor(order_id: int) -> str:
    return base64.urlsafe_b64encode(f"o:{order_id}".encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        kind, _, value = raw.partition(":")
        if kind != "o":
            raise ValueError
        return int(value)
    except ValueError as exc:
        raise HTTPException(400, "cursor is not one this API gave out") from exc


async def visible_order(db: DB, who: Principal, order_id: int) -> Order:
    """The order if this key may see it; otherwise 404, exactly as if it did not exist."""
    order = await orders.get_order(db, order_id)
    if order is not None and who.tenant_ids is not None:
        integration = await integrations.get(db, order.integration_id)
        if integration is None or not who.sees_tenant(integration.tenant_id):
            order = None
    if order is None:
        raise HTTPException(404, f"order {order_id} not found")
    return order


def order_filter(who: Principal, state: list[str] | None, integration_id: int | None, since: datetime | None,
                 until: datetime | None, q: str | None) -> orders.OrderFilter:
    unknown = [s for s in state or [] if s not in ALL_STATES]
    if unknown:
        raise HTTPException(422, f"unknown state {', '.join(unknown)}; states are {', '.join(ALL_STATES)}")
    return orders.OrderFilter(tenant_ids=who.tenant_ids, states=state or (), integration_id=integration_id,
                              since=since, until=until, text=q or None)


@router.get("/orders", response_model=OrderPage)
async def list_orders(
    db: DB, who: Viewer,
    state: Annotated[list[str] | None, Query(description="One or more states")] = None,
    integration_id: int | None = None,
    since: Annotated[datetime | None, Query(description="Received at or after (ISO 8601)")] = None,
    until: Annotated[datetime | None, Query(description="Received before (ISO 8601)")] = None,
    q: Annotated[str | None, Query(description="Order number, source id, e-mail, name or Exact number")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: str | None = None,
) -> OrderPage:
    flt = order_filter(who, state, integration_id, since, until, q)
    before = _decode_cursor(cursor) if cursor else None
    rows = await orders.list_orders(db, flt, before_id=before, limit=limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    return OrderPage(orders=[OrderSummary.model_validate(row) for row in rows],
                     next_cursor=_cursor(rows[-1].id) if more and rows else None)


@router.get("/orders/{order_id}", response_model=OrderDetail)
async def get_order(order_id: int, db: DB, who: Viewer) -> OrderDetail:
    order = await visible_order(db, who, order_id)
    timeline = await orders.events(db, order.id)
    summary = OrderSummary.model_validate(order).model_dump()
    return OrderDetail(
        **summary,
        canonical=order.canonical,
        checks=order.checks,
        exact_debtor_id=order.exact_debtor_id,
        revision=order.revision,
        raw_body=order.raw_body.decode("utf-8", errors="replace"),
        raw_headers=order.raw_headers or {},
        timeline=[OrderEventOut.model_validate(event) for event in timeline],
    )


class ReprocessResult(BaseModel):
    order_id: int
    state: str


class BulkReprocess(BaseModel):
    """Which orders to reprocess: explicit ids, or a filter (default: every failed order)."""

    ids: list[int] = Field(default_factory=list, max_length=1000)
    state: list[str] = Field(default_factory=lambda: ["failed"])
    integration_id: int | None = None
    since: datetime | None = None
    until: datetime | None = None
    q: str | None = None
    limit: int = Field(default=500, ge=1, le=1000)


class BulkReprocessResult(BaseModel):
    reprocessed: list[ReprocessResult]
    skipped: list[dict[str, object]]


async def _reprocess_one(db: DB, who: Principal, order_id: int) -> ReprocessResult:
    order = await visible_order(db, who, order_id)
    order = await orders.get_order(db, order.id, for_update=True)
    assert order is not None
    integration = await integrations.get(db, order.integration_id)
    assert integration is not None
    done = await reprocess(db, order, integration, who=f"API key {who.key_id}")
    return ReprocessResult(order_id=done.order_id, state=done.state)


@router.post("/orders/{order_id}/reprocess", response_model=ReprocessResult,
             responses={404: {"description": "No such order for this key"},
                        409: {"description": "The order is booked, being booked or already queued"}})
async def reprocess_order(order_id: int, db: DB, who: Operator,
                          res: Resources = Depends(resources)) -> ReprocessResult:  # noqa: B008
    """Re-check a failed, rejected or waiting order and queue it with a fresh job."""
    async with db.begin():
        try:
            result = await _reprocess_one(db, who, order_id)
        except NotReprocessable as exc:
            raise HTTPException(409, exc.reason) from exc
    if res.relay is not None:
        res.relay.poke()
    return result


@router.post("/orders/reprocess", response_model=BulkReprocessResult)
async def reprocess_orders(body: BulkReprocess, db: DB, who: Operator,
                           res: Resources = Depends(resources)) -> BulkReprocessResult:  # noqa: B008
    """Reprocess a set of orders, chosen by ids or by the same filters as `GET /orders`."""
    if body.ids:
        ids = body.ids[: body.limit]
    else:
        flt = order_filter(who, [s for s in body.state if s in {st.value for st in REPROCESSABLE}] or ["failed"],
                           body.integration_id, body.since, body.until, body.q)
        async with db.begin():
            ids = await orders.order_ids(db, flt, body.limit)
    done: list[ReprocessResult] = []
    skipped: list[dict[str, object]] = []
    for order_id in ids:
        # One short transaction per order, so one bad order never blocks the rest.
        try:
            async with db.begin():
                done.append(await _reprocess_one(db, who, order_id))
        except NotReprocessable as exc:
            skipped.append({"order_id": order_id, "reason": exc.reason})
        except HTTPException as exc:
            skipped.append({"order_id": order_id, "reason": exc.detail})
    if res.relay is not None and done:
        res.relay.poke()
    return BulkReprocessResult(reprocessed=done, skipped=skipped)


@router.get("/stats", response_model=Stats)
async def stats(db: DB, who: Viewer, res: Resources = Depends(resources)) -> Stats:  # noqa: B008
    flt = orders.OrderFilter(tenant_ids=who.tenant_ids)
    totals: dict[str, int] = {state: 0 for state in ALL_STATES}
    per_integration: dict[int, dict[str, int]] = {}
    for integration in await integrations.list_for_tenants(db, who.tenant_ids):
        per_integration[integration.id] = {state: 0 for state in ALL_STATES}
    for integration_id, state, count in await orders.counts(db, flt):
        totals[state] = totals.get(state, 0) + count
        per_integration.setdefault(integration_id, {s: 0 for s in ALL_STATES})[state] = count
    visible = await integrations.list_for_tenants(db, who.tenant_ids)
    consent_query = select(func.count()).select_from(ExactConnection).where(ExactConnection.state == "needs_consent")
    if who.tenant_ids is not None:
        consent_query = consent_query.where(ExactConnection.tenant_id.in_(who.tenant_ids))
    needing_consent = int((await db.execute(consent_query)).scalar_one())
    queue_depth, budget = await _queue_and_budget(res, db, visible)
    return Stats(counts=totals, integrations=[IntegrationCounts(integration_id=i, counts=c)
                                              for i, c in sorted(per_integration.items())],
                 queue_depth=queue_depth, exact_budget=budget, connections_needing_consent=needing_consent)


async def _queue_and_budget(res: Resources, db: DB, visible: list) -> tuple[int | None, list[dict]]:  # type: ignore[type-arg]
    """Jobs waiting in arq, and Exact calls left per division (as last seen in its headers)."""
    if res.redis is None:
        return None, []
    from app.exact.ratelimit import DivisionRateLimiter

    try:
        depth = int(await res.redis.zcard(res.settings.queue_name))
        limiter = DivisionRateLimiter(res.redis)
        budget = []
        seen: set[tuple[str, int]] = set()
        for integration in visible:
            if integration.connection_id is None or integration.division is None:
                continue
            connection = await db.get(ExactConnection, integration.connection_id)
            if connection is None or (connection.client_id, integration.division) in seen:
                continue
            seen.add((connection.client_id, integration.division))
            snap = await limiter.snapshot(connection.client_id, integration.division)
            budget.append({"connection_id": connection.id, "division": integration.division,
                           "calls_left_today": snap["daily"]["remaining"],
                           "calls_left_this_minute": snap["minutely"]["remaining"],
                           "known": snap["known"]})
        return depth, budget
    except Exception:  # noqa: BLE001 - Redis down: the stats still answer from the database
        return None, []
