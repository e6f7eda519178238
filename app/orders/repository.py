"""All queries on orders, their timeline, deliveries and the outbox."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.base import utcnow
from app.db.upsert import insert_or_ignore
from app.integrations.models import Integration
from app.orders.models import Delivery, Order, OrderEvent, OutboxJob
from app.orders.states import OrderState

BOOK_ORDER = "book_order"


def book_job_id(order_id: int, revision: int) -> str:
    return f"{BOOK_ORDER}:{order_id}:{revision}"


async def insert_delivery(session: AsyncSession, values: dict[str, Any]) -> int | None:
    return await insert_or_ignore(session, Delivery, values, ["integration_id", "external_id"])


async def get_delivery(session: AsyncSession, integration_id: int, external_id: str) -> Delivery | None:
    result = await session.execute(
        select(Delivery).where(Delivery.integration_id == integration_id, Delivery.external_id == external_id)
    )
    return result.scalar_one_or_none()


async def delivery_order_state(session: AsyncSession, integration_id: int,
                               external_id: str) -> tuple[int, str] | None:
    result = await session.execute(
        select(Order.id, Order.state)
        .join(Delivery, Delivery.order_id == Order.id)
        .where(Delivery.integration_id == integration_id, Delivery.external_id == external_id)
    )
    row = result.first()
    return (row[0], row[1]) if row else None


async def link_delivery(session: AsyncSession, integration_id: int, external_id: str, order_id: int) -> None:
    await session.execute(update(Delivery).where(
        Delivery.integration_id == integration_id, Delivery.external_id == external_id).values(order_id=order_id))


async def set_delivery_outcome(session: AsyncSession, integration_id: int, external_id: str, outcome: str) -> None:
    await session.execute(update(Delivery).where(
        Delivery.integration_id == integration_id, Delivery.external_id == external_id).values(outcome=outcome))


async def insert_order(session: AsyncSession, values: dict[str, Any]) -> int | None:
    return await insert_or_ignore(session, Order, values, ["integration_id", "source_order_id"])


async def get_order(session: AsyncSession, order_id: int, *, for_update: bool = False) -> Order | None:
    query = select(Order).where(Order.id == order_id)
    if for_update:
        query = query.with_for_update()
    return (await session.execute(query)).scalar_one_or_none()


async def get_by_source_id(session: AsyncSession, integration_id: int, source_order_id: str,
                           *, for_update: bool = False) -> Order | None:
    query = select(Order).where(Order.integration_id == integration_id, Order.source_order_id == source_order_id)
    if for_update:
        query = query.with_for_update()
    return (await session.execute(query)).scalar_one_or_none()


def add_event(session: AsyncSession, order_id: int, kind: str, message: str,
              data: dict[str, Any] | None = None) -> None:
    session.add(OrderEvent(order_id=order_id, kind=kind, message=message, data=data, at=utcnow()))


async def add_event_now(session: AsyncSession, order_id: int, kind: str, message: str,
                        data: dict[str, Any] | None = None) -> None:
    """Insert one timeline row at once (keeps its place before Core-inserted rows)."""
    await insert_events(session, [{"order_id": order_id, "kind": kind, "message": message, "data": data,
                                   "at": utcnow()}])


_INSERT_EVENTS = insert(OrderEvent)
_INSERT_OUTBOX = insert(OutboxJob)


async def insert_events(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Insert timeline rows in one statement (Core: no ORM bookkeeping on the hot path)."""
    if rows:
        connection = await session.connection()
        await connection.execute(_INSERT_EVENTS, rows)


async def insert_outbox(session: AsyncSession, order_id: int, function: str, job_id: str) -> None:
    connection = await session.connection()
    await connection.execute(_INSERT_OUTBOX, {"order_id": order_id, "function": function, "job_id": job_id,
                                              "created_at": utcnow()})


async def events(session: AsyncSession, order_id: int) -> list[OrderEvent]:
    result = await session.execute(select(OrderEvent).where(OrderEvent.order_id == order_id).order_by(OrderEvent.id))
    return list(result.scalars())


async def booked_with_number(session: AsyncSession, order_number: str, exclude_id: int | None,
                             integration: Integration) -> int | None:
    """Id of another order booked (or queued for booking) in the same Exact division under the
    same number. The number becomes YourRef in Exact, which is how a crashed booking is found
    again, so two documents with one YourRef in a division must never exist."""
    query = (
        select(Order.id)
        .where(
            Order.order_number == order_number,
            Order.state.in_([OrderState.BOOKED, OrderState.BOOKING, OrderState.QUEUED]),
        )
        .limit(1)
    )
    if exclude_id is not None:
        query = query.where(Order.id != exclude_id)
    if integration.connection_id is not None and integration.division is not None:
        query = query.join(Integration, Integration.id == Order.integration_id).where(
            Integration.connection_id == integration.connection_id, Integration.division == integration.division
        )
    else:
        query = query.where(Order.integration_id == integration.id)
    return (await session.execute(query)).scalar_one_or_none()


@dataclass(frozen=True)
class OrderFilter:
    tenant_ids: Sequence[int] | None = None  # None: every tenant (admin)
    states: Sequence[str] = ()
    integration_id: int | None = None
    since: datetime | None = None
    until: datetime | None = None
    text: str | None = None


def _filtered(query: Any, flt: OrderFilter) -> Any:
    if flt.tenant_ids is not None:
        query = query.where(Order.integration_id.in_(
            select(Integration.id).where(Integration.tenant_id.in_(flt.tenant_ids))
        ))
    if flt.states:
        query = query.where(Order.state.in_(list(flt.states)))
    if flt.integration_id is not None:
        query = query.where(Order.integration_id == flt.integration_id)
    if flt.since is not None:
        query = query.where(Order.created_at >= flt.since)
    if flt.until is not None:
        query = query.where(Order.created_at < flt.until)
    if flt.text:
        pattern = f"%{flt.text.lower()}%"
        query = query.where(or_(
            func.lower(Order.order_number).like(pattern),
            func.lower(Order.source_order_id).like(pattern),
            func.lower(Order.customer_email).like(pattern),
            func.lower(Order.customer_name).like(pattern),
            func.lower(Order.exact_document_number).like(pattern),
        ))
    return query


async def list_orders(session: AsyncSession, flt: OrderFilter, *, before_id: int | None,
                      limit: int) -> list[Order]:
    """Newest first; keyset pagination on id (stable while new orders keep arriving)."""
    query = _filtered(select(Order), flt)
    if before_id is not None:
        query = query.where(Order.id < before_id)
    query = query.order_by(Order.id.desc()).limit(limit)
    return list((await session.execute(query)).scalars())


async def order_ids(session: AsyncSession, flt: OrderFilter, limit: int) -> list[int]:
    query = _filtered(select(Order.id), flt).order_by(Order.id).limit(limit)
    return list((await session.execute(query)).scalars())


async def counts(session: AsyncSession, flt: OrderFilter) -> list[tuple[int, str, int]]:
    query = _filtered(select(Order.integration_id, Order.state, func.count()), flt).group_by(
        Order.integration_id, Order.state
    )
    return [(row[0], row[1], row[2]) for row in (await session.execute(query)).all()]


async def pending_outbox(session: AsyncSession, limit: int = 200) -> list[OutboxJob]:
    result = await session.execute(
        select(OutboxJob).where(OutboxJob.enqueued_at.is_(None)).order_by(OutboxJob.id).limit(limit)
    )
    return list(result.scalars())


async def mark_enqueued(session: AsyncSession, outbox_ids: Sequence[int]) -> None:
    if outbox_ids:
        await session.execute(update(OutboxJob).where(OutboxJob.id.in_(list(outbox_ids))).values(enqueued_at=utcnow()))
