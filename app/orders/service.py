"""Moving an order through its states. Services never commit: the caller owns the transaction.

Evaluation (status gate + pre-checks) is split in two: `evaluation_inputs` does the two
look-ups the checks need, `evaluate` is pure and decides. The webhook path uses that to
insert a new order once, already in its final state, in few round trips.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from app.connections import repository as connections
from app.db.base import utcnow
from app.integrations.models import Integration
from app.integrations.settings import IntegrationSettings
from app.orders import repository as orders
from app.orders.canonical import CanonicalOrder
from app.orders.checks import CheckContext, VatCodeInfo, first_failure, run_checks
from app.orders.models import Order
from app.orders.states import OrderState

log = structlog.get_logger(__name__)

PAUSED = "integration_paused"
PAUSED_MESSAGE = ("the integration is paused: the order passed its checks and waits; it is queued "
                  "when the integration is enabled again")


def integration_settings(integration: Integration) -> IntegrationSettings:
    return IntegrationSettings.model_validate(integration.settings or {})


def canonical_columns(canonical: CanonicalOrder) -> dict[str, Any]:
    """The searchable facts of the canonical order, as order columns."""
    return {
        "canonical": canonical.model_dump(mode="json"),
        "order_number": canonical.order_number,
        "source_status": canonical.status,
        "order_date": canonical.order_date,
        "currency": canonical.currency,
        "total": canonical.total,
        "customer_email": canonical.customer.email,
        "customer_name": canonical.customer.company or canonical.customer.name,
    }


@dataclass
class Evaluation:
    """The outcome of the status gate and the pre-checks for one order."""

    state: OrderState
    checks: list[dict[str, Any]] | None = None
    error_code: str | None = None
    error_message: str | None = None
    retryable: bool | None = None
    events: list[tuple[str, str, dict[str, Any] | None]] = field(default_factory=list)

    @property
    def queue(self) -> bool:
        return self.state == OrderState.QUEUED

    def columns(self) -> dict[str, Any]:
        return {"state": self.state, "checks": self.checks, "error_code": self.error_code,
                "error_message": self.error_message, "retryable": self.retryable}


@dataclass(frozen=True)
class EvaluationInputs:
    vat_codes: dict[str, VatCodeInfo] | None
    duplicate_of: str | None
    # The integration is paused: the order is stored and checked, but waits instead of queueing.
    paused: bool = False


async def evaluation_inputs(session: AsyncSession, integration: Integration, order_number: str,
                            order_id: int | None, *, vat_codes: dict[str, VatCodeInfo] | None = None
                            ) -> EvaluationInputs:
    if vat_codes is None and integration.connection_id is not None and integration.division is not None:
        vat_codes = await connections.vat_codes(session, integration.connection_id, integration.division)
    duplicate = await orders.booked_with_number(session, order_number, order_id, integration)
    return EvaluationInputs(vat_codes, f"order {duplicate}" if duplicate is not None else None,
                            paused=integration.enabled is False)


def evaluate(canonical: CanonicalOrder, settings: IntegrationSettings, inputs: EvaluationInputs) -> Evaluation:
    """Gate on the source status, then run the pre-checks. Never raises."""
    if not settings.is_processable(canonical.status):
        return Evaluation(OrderState.OPEN, events=[(
            "waiting",
            f"source status '{canonical.status}' is not processable "
            f"(processable: {', '.join(settings.processable_statuses) or 'none'}); waiting for an update",
            None,
        )])
    try:
        results = run_checks(canonical, CheckContext(settings=settings, vat_codes=inputs.vat_codes,
                                                     duplicate_of=inputs.duplicate_of))
    except Exception as exc:  # noqa: BLE001 - a bug in a check must not lose the delivery
        log.exception("precheck_crashed", order_number=canonical.order_number)
        message = f"the pre-checks crashed ({type(exc).__name__}); reprocess after the fix"
        return Evaluation(OrderState.FAILED, error_code="internal_error", error_message=message, retryable=True,
                          events=[("checks_failed", message, None)])
    checks = [result.as_dict() for result in results]
    failure = first_failure(results)
    if failure is None and inputs.paused:
        message = PAUSED_MESSAGE
        return Evaluation(OrderState.WAITING, checks=checks, error_code=PAUSED, error_message=message,
                          retryable=True, events=[("waiting", message, None)])
    if failure is None:
        return Evaluation(OrderState.QUEUED, checks=checks)
    failures = [result for result in results if not result.ok]
    message = "; ".join(result.message for result in failures)
    return Evaluation(OrderState.FAILED, checks=checks, error_code=failure.code, error_message=message,
                      retryable=False,
                      events=[("checks_failed", message, {"codes": [result.code for result in failures]})])


async def stage(session: AsyncSession, order_id: int, evaluation: Evaluation, revision: int,
                *, events_before: list[tuple[str, str, dict[str, Any] | None]] = ()) -> int:  # type: ignore[assignment]
    """Write the evaluation's events and, when it queues the order, its outbox job.

    Returns the order's revision afterwards: queueing starts a new revision, so a
    reprocess or an update gets a fresh job id while repeats of one revision collapse.
    """
    events = [*events_before, *evaluation.events]
    if evaluation.queue:
        revision += 1
        job_id = orders.book_job_id(order_id, revision)
        await orders.insert_outbox(session, order_id, orders.BOOK_ORDER, job_id)
        events.append(("queued", "pre-checks passed; queued for booking", {"job_id": job_id}))
    now = utcnow()
    await orders.insert_events(session, [
        {"order_id": order_id, "kind": kind, "message": message, "data": data, "at": now}
        for kind, message, data in events
    ])
    return revision


async def reevaluate(session: AsyncSession, order: Order, integration: Integration) -> Evaluation:
    """Evaluate an existing (locked) order again and apply the outcome to it."""
    await session.flush()  # events added through the ORM before this one stay first
    canonical = CanonicalOrder.model_validate(order.canonical)
    inputs = await evaluation_inputs(session, integration, canonical.order_number, order.id)
    evaluation = evaluate(canonical, integration_settings(integration), inputs)
    for name, value in evaluation.columns().items():
        setattr(order, name, value)
    order.revision = await stage(session, order.id, evaluation, order.revision or 0)
    return evaluation
