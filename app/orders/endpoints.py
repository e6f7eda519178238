"""Status API: orders with filters, one order with its timeline, and counts."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query

from app.deps import DB, Viewer
from app.integrations import repository as integrations
from app.orders import repository as orders
from app.orders.models import Order
from app.orders.schemas import IntegrationCounts, OrderDetail, OrderEventOut, OrderPage, OrderSummary, Stats
from app.orders.states import ALL_STATES
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


@router.get("/stats", response_model=Stats)
async def stats(db: DB, who: Viewer) -> Stats:
    flt = orders.OrderFilter(tenant_ids=who.tenant_ids)
    totals: dict[str, int] = {state: 0 for state in ALL_STATES}
    per_integration: dict[int, dict[str, int]] = {}
    for integration in await integrations.list_for_tenants(db, who.tenant_ids):
        per_integration[integration.id] = {state: 0 for state in ALL_STATES}
    for integration_id, state, count in await orders.counts(db, flt):
        totals[state] = totals.get(state, 0) + count
        per_integration.setdefault(integration_id, {s: 0 for s in ALL_STATES})[state] = count
    return Stats(counts=totals, integrations=[IntegrationCounts(integration_id=i, counts=c)
                                              for i, c in sorted(per_integration.items())])
