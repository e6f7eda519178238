"""Webhook intake: authenticate, store durably, normalise, gate and check — in one transaction.

Nothing here talks to Exact. The answer is decided only after the transaction committed,
so a 2xx always means the delivery is on disk. A new order (the common case) costs one
transaction of a few statements: insert the delivery (the inbox: a repeat stops here),
insert the order already in its final state, its events and outbox row, link the delivery.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.base import utcnow
from app.orders import repository as orders
from app.orders.canonical import CanonicalOrder
from app.orders.models import Order
from app.orders.service import (
    Evaluation,
    canonical_columns,
    evaluate,
    evaluation_inputs,
    reevaluate,
    stage,
)
from app.orders.states import CHANGEABLE, OrderState
from app.sources.base import BodyNotJSON, MappingError, SignatureError, SourceAdapter
from app.sources.registry import get_adapter
from app.webhooks.config_cache import IntakeConfig, IntakeConfigCache, SecretUnreadable

log = structlog.get_logger(__name__)


@dataclass
class IntakeResult:
    status_code: int
    order_id: int | None = None
    state: str | None = None
    detail: str | None = None
    queued: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {}
        if self.order_id is not None:
            body["order_id"] = self.order_id
        if self.state is not None:
            body["state"] = self.state
        if self.detail is not None:
            body["detail"] = self.detail
        body.update(self.extra)
        return body


@dataclass
class _Parsed:
    canonical: CanonicalOrder | None
    source_order_id: str | None
    rejection: str | None
    status_code: int


def _parse(adapter: SourceAdapter, config: IntakeConfig, body: bytes, headers: Mapping[str, str]) -> _Parsed:
    try:
        payload = adapter.decode(body, headers)
    except BodyNotJSON as exc:
        return _Parsed(None, None, str(exc), 400)
    try:
        canonical = adapter.to_order(payload, config.settings)
    except MappingError as exc:
        return _Parsed(None, exc.source_order_id, f"not an order: {exc.field}: {exc.reason}", 422)
    except Exception as exc:  # noqa: BLE001 - an adapter bug must not lose the delivery or answer 500
        log.exception("adapter_crashed", source=adapter.name)
        return _Parsed(None, None, f"the {adapter.name} adapter could not read this order "
                                   f"({type(exc).__name__}); it is kept and can be reprocessed after a fix", 422)
    return _Parsed(canonical, canonical.source_order_id, None, 202)


async def receive(
    sessionmaker: async_sessionmaker[AsyncSession],
    cache: IntakeConfigCache,
    source: str,
    integration_key: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    now: float | None = None,
) -> IntakeResult:
    adapter = get_adapter(source)
    if adapter is None:
        return IntakeResult(404, detail=f"unknown source '{source}'")
    async with sessionmaker() as session, session.begin():
        try:
            config = await cache.get(session, integration_key)
        except SecretUnreadable:
            # Misconfigured server (KOPPEL_SECRET_KEY changed): not the sender's fault, and
            # nothing stored yet, so ask for a retry rather than refusing the order.
            log.error("webhook_secret_undecryptable", integration_key_prefix=integration_key[:4])
            return IntakeResult(503, detail="this integration's secret cannot be read by the server; retry later")
        if config is None or config.integration.source != source:
            return IntakeResult(404, detail="unknown integration")
        if adapter.is_ping(body, headers):
            return IntakeResult(200, detail="subscription ping acknowledged")
        try:
            adapter.verify(config.secret, body, headers, time.time() if now is None else now)
        except SignatureError as exc:
            return IntakeResult(401, detail=str(exc))
        return await accept(session, adapter, config, body, headers)


async def accept(session: AsyncSession, adapter: SourceAdapter, config: IntakeConfig, body: bytes,
                 headers: Mapping[str, str], *, delivery_id: str | None = None) -> IntakeResult:
    """Store and process one delivery whose authenticity is settled, in the caller's transaction.

    The webhook path calls this after `verify()`; reconciliation calls it for an order read
    from the shop's own API. `delivery_id` is the delivery's idempotency key, by default the
    adapter's (the sender's event id). The same dedupe holds for every caller: a known
    delivery id is a repeat, a known source order id is a later delivery of that order.
    The caller commits, and only then may the result be reported as durable.
    """
    parsed = _parse(adapter, config, body, headers)
    return await _store(session, adapter, config, body, headers, parsed, delivery_id)


class _RepeatDelivery(Exception):
    """This delivery id was stored before: roll back and answer with what it produced."""


async def _store(session: AsyncSession, adapter: SourceAdapter, config: IntakeConfig, body: bytes,
                 headers: Mapping[str, str], parsed: _Parsed, delivery_id: str | None = None) -> IntakeResult:
    integration = config.integration
    external_id = delivery_id if delivery_id is not None else adapter.delivery_id(body, headers)
    delivery = {
        "integration_id": integration.id, "external_id": external_id[:200],
        "body": body, "headers": adapter.headers_to_keep(headers), "received_at": utcnow(),
    }
    try:
        # A savepoint only where a rejected body may need undoing; none on the common path.
        async with session.begin_nested() if parsed.source_order_id is None else contextlib.nullcontext():
            return await _store_order(session, config, parsed, delivery)
    except _RepeatDelivery:
        # The same delivery again (a sender retry, or a concurrent duplicate that waited
        # for the first one to commit): nothing new is written.
        known = await orders.delivery_order_state(session, integration.id, delivery["external_id"])
        return IntakeResult(200, *(known or (None, None)), detail="repeat of delivery already received")


async def _store_order(session: AsyncSession, config: IntakeConfig, parsed: _Parsed,
                       delivery: dict[str, Any]) -> IntakeResult:
    integration = config.integration
    if parsed.source_order_id is None:
        # Nothing identifies the order (a rejected body): the delivery id is the only key.
        await _insert_delivery(session, delivery, None, "rejected")
    created = await _insert_new(session, config, parsed, delivery["body"], delivery["headers"])
    if created is not None:
        order_id, state = created
        if parsed.source_order_id is None:
            await orders.link_delivery(session, integration.id, delivery["external_id"], order_id)
        else:
            await _insert_delivery(session, delivery, order_id, "new" if parsed.canonical else "rejected")
        if parsed.rejection is not None:
            return IntakeResult(parsed.status_code, order_id, state, detail=parsed.rejection)
        return IntakeResult(202, order_id, state, queued=state == OrderState.QUEUED)

    # The source order exists (its insert conflicted, after waiting for a concurrent one).
    order = await orders.get_by_source_id(session, integration.id, parsed.source_order_id or "", for_update=True)
    assert order is not None
    await _insert_delivery(session, delivery, order.id, "received")
    outcome = await _later_delivery(session, order, config, parsed, delivery["body"], delivery["headers"])
    await orders.set_delivery_outcome(session, integration.id, delivery["external_id"], outcome)
    await session.flush()
    if parsed.rejection is not None:
        return IntakeResult(parsed.status_code, order.id, order.state, detail=parsed.rejection)
    return IntakeResult(200, order.id, order.state, queued=outcome == "updated" and order.state == OrderState.QUEUED)


async def _insert_delivery(session: AsyncSession, delivery: dict[str, Any], order_id: int | None,
                           outcome: str) -> None:
    if await orders.insert_delivery(session, {**delivery, "order_id": order_id, "outcome": outcome}) is None:
        raise _RepeatDelivery


async def _insert_new(session: AsyncSession, config: IntakeConfig, parsed: _Parsed, body: bytes,
                      headers: dict[str, str]) -> tuple[int, OrderState] | None:
    """Insert the order in its final state; None when the source order already exists."""
    integration = config.integration
    if parsed.canonical is not None:
        inputs = await evaluation_inputs(session, integration, parsed.canonical.order_number, None,
                                         vat_codes=config.vat_codes)
        evaluation = evaluate(parsed.canonical, config.settings, inputs)
        columns = {**canonical_columns(parsed.canonical), **evaluation.columns()}
    else:
        code = "not_json" if parsed.status_code == 400 else "not_an_order"
        evaluation = Evaluation(OrderState.REJECTED, error_code=code, error_message=parsed.rejection,
                                retryable=False, events=[("rejected", parsed.rejection or "rejected", None)])
        columns = evaluation.columns()
    now = utcnow()
    order_id = await orders.insert_order(session, {
        "integration_id": integration.id, "source_order_id": parsed.source_order_id,
        "raw_body": body, "raw_headers": headers, "exact_calls": 0, "attempts": 0,
        "revision": 1 if evaluation.queue else 0, "created_at": now, "updated_at": now, **columns,
    })
    if order_id is None:
        return None
    await stage(session, order_id, evaluation, 0,
                events_before=[("received", f"delivery received from {integration.source}", None)])
    return order_id, evaluation.state


async def _later_delivery(session: AsyncSession, order: Order, config: IntakeConfig, parsed: _Parsed,
                          body: bytes, headers: dict[str, str]) -> str:
    """Another delivery of a known order: a repeat, an update to apply, or a late change."""
    state = OrderState(order.state)
    if parsed.canonical is None:
        orders.add_event(session, order.id, "rejected_update",
                         f"an update for this order could not be read and was kept raw: {parsed.rejection}")
        return "rejected"
    new = parsed.canonical.model_dump(mode="json")
    if new == order.canonical:
        orders.add_event(session, order.id, "repeat", "the same order was delivered again; nothing changed")
        return "repeat"
    if state not in CHANGEABLE:
        # Already (being) booked: Exact has the document; we record, we never book again.
        orders.add_event(session, order.id, "changed_after_booking",
                         f"the shop changed this order after it was {state.value}; the change is recorded, "
                         "not booked", {"status": parsed.canonical.status, "total": str(parsed.canonical.total)})
        return "changed_after_booking"
    order.raw_body = body
    order.raw_headers = headers
    for name, value in canonical_columns(parsed.canonical).items():
        setattr(order, name, value)
    orders.add_event(session, order.id, "updated", f"order updated by the shop (status '{parsed.canonical.status}')")
    await reevaluate(session, order, config.integration)
    return "updated"
