"""The nightly job that looks at every order still `open` again (02:45, the worker's local time).

An order waits as `open` while its source status is not one of its integration's processable
statuses. An update from the shop moves it on at once; this job catches what no update will:
processable statuses changed since the order arrived (a status added, a typo fixed). An open
order whose status is processable now is re-evaluated under its row lock and moves on (queued,
failed, or waiting for a paused integration) with a `reevaluated` event on its timeline; every
other order is left exactly as it is, without a new event. The candidates are found per
integration by state and status, so the many orders that rightly wait cost nothing but the
query.

Candidates go in small batches, one transaction each, so a webhook for the same shop never
waits long for a lock. On PostgreSQL a row another transaction holds is skipped (the shop's
update is changing it right now); SQLite has one writer at a time anyway. The job stays inside
the ordinary job timeout (arq retries a killed worker's jobs only after the largest timeout of
any job); what does not fit is left for the next night.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import structlog
from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.integrations.models import Integration
from app.integrations.settings import IntegrationSettings
from app.orders import repository as orders
from app.orders.models import Order
from app.orders.service import integration_settings, reevaluate
from app.orders.states import OrderState

log = structlog.get_logger(__name__)

# 02:45, after the nightly refresh of Exact reference data (02:30), so the checks see fresh VAT codes.
REEVALUATE_HOUR, REEVALUATE_MINUTE = 2, 45
BATCH_SIZE = 50
# Left of the job timeout for the batch in flight when the budget runs out.
MARGIN_SECONDS = 15.0


async def reevaluate_open_orders(sessionmaker: async_sessionmaker[AsyncSession], *, batch_size: int = BATCH_SIZE,
                                 budget_seconds: float | None = None) -> dict[str, int]:
    """Re-evaluate the open orders whose status is processable now; counts by outcome."""
    deadline = None if budget_seconds is None else time.monotonic() + budget_seconds
    counts: Counter[str] = Counter()
    candidates = await _candidates(sessionmaker)
    counts["candidates"] = len(candidates)
    for start in range(0, len(candidates), batch_size):
        if start and deadline is not None and time.monotonic() >= deadline:
            counts["left_for_next_night"] = len(candidates) - start
            break
        async with sessionmaker() as session, session.begin():
            await _reevaluate_batch(session, candidates[start:start + batch_size], counts)
    if counts["moved"] or counts["left_for_next_night"]:
        log.info("reevaluated_open_orders", **counts)
    return {name: value for name, value in counts.items() if value}


async def _candidates(sessionmaker: async_sessionmaker[AsyncSession]) -> list[int]:
    """Ids of open orders whose stored status is one their integration processes now."""
    found: list[int] = []
    async with sessionmaker() as session:
        with_open = select(Order.integration_id).where(Order.state == OrderState.OPEN).distinct()
        for integration in (await session.execute(
                select(Integration).where(Integration.id.in_(with_open)).order_by(Integration.id))).scalars():
            current = _settings(integration)
            if current is None or not current.processable_statuses:
                continue
            found += (await session.execute(
                select(Order.id).where(Order.integration_id == integration.id, Order.state == OrderState.OPEN,
                                       func.lower(Order.source_status).in_(current.processable_statuses))
                .order_by(Order.id))).scalars()
    return found


async def _reevaluate_batch(session: AsyncSession, ids: list[int], counts: Counter[str]) -> None:
    batch = (await session.execute(
        select(Order).where(Order.id.in_(ids), Order.state == OrderState.OPEN)
        .order_by(Order.id).with_for_update(skip_locked=True))).scalars().all()
    integrations: dict[int, tuple[Integration, IntegrationSettings] | None] = {}
    for order in batch:
        if order.integration_id not in integrations:
            integration = await session.get(Integration, order.integration_id)
            current = _settings(integration) if integration is not None else None
            integrations[order.integration_id] = (integration, current) if integration and current else None
        found = integrations[order.integration_id]
        status = (order.canonical or {}).get("status")
        if found is None or not isinstance(status, str) or not found[1].is_processable(status):
            continue  # changed since the candidates were listed: left as it is
        integration, current = found
        await orders.add_event_now(
            session, order.id, "reevaluated",
            f"nightly re-evaluation: source status '{status}' is processable now "
            f"(processable: {', '.join(current.processable_statuses)})")
        evaluation = await reevaluate(session, order, integration)
        counts["moved"] += 1
        counts[evaluation.state.value] += 1


def _settings(integration: Integration) -> IntegrationSettings | None:
    try:
        return integration_settings(integration)
    except ValidationError:
        log.warning("reevaluate_skipped_invalid_settings", integration_id=integration.id)
        return None


async def reevaluate_open(ctx: dict[str, Any]) -> dict[str, int]:
    budget = max(ctx["settings"].job_timeout_seconds - MARGIN_SECONDS, 5.0)
    counts = await reevaluate_open_orders(ctx["sessionmaker"], budget_seconds=budget)
    if counts.get("queued") and ctx.get("relay") is not None:
        ctx["relay"].poke()
    return counts
