"""Operator actions: re-check and re-queue failed, rejected or waiting orders. Never commits."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from app.integrations.models import Integration
from app.orders import repository as orders
from app.orders.models import Order
from app.orders.service import canonical_columns, integration_settings, reevaluate
from app.orders.states import REPROCESSABLE, OrderState
from app.sources.registry import get_adapter


class NotReprocessable(Exception):
    def __init__(self, order: Order, reason: str) -> None:
        super().__init__(reason)
        self.order = order
        self.reason = reason


@dataclass(frozen=True)
class Reprocessed:
    order_id: int
    state: str


async def reprocess(session: AsyncSession, order: Order, integration: Integration, *, who: str) -> Reprocessed:
    """Re-read a rejected delivery, re-run the gate and checks, and queue under a new revision.

    The order must be locked by the caller (SELECT … FOR UPDATE).
    """
    state = OrderState(order.state)
    if state not in REPROCESSABLE:
        raise NotReprocessable(order, f"order {order.id} is {state.value}; only failed, rejected or waiting "
                                      "orders can be reprocessed")
    await orders.add_event_now(session, order.id, "reprocess", f"reprocess requested by {who}")
    if state == OrderState.REJECTED or order.canonical is None:
        adapter = get_adapter(integration.source)
        try:
            assert adapter is not None
            payload = adapter.decode(order.raw_body, order.raw_headers or {})
            canonical = adapter.to_order(payload, integration_settings(integration))
        except Exception as exc:  # noqa: BLE001 - BodyNotJSON, MappingError, or an adapter bug: still rejected
            order.error_message = f"still not an order: {exc}"
            await orders.add_event_now(session, order.id, "rejected", order.error_message)
            return Reprocessed(order.id, order.state)
        for name, value in canonical_columns(canonical).items():
            setattr(order, name, value)
    order.attempts = 0
    await reevaluate(session, order, integration)
    return Reprocessed(order.id, order.state)
