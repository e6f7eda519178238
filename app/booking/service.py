"""One booking attempt for one order: claim it, talk to Exact, record the outcome.

Exactly-once rests on the database, not on the queue:

* the claim re-reads the order under a row lock and does nothing for a stale revision or an
  order that is already booked, so a job may run any number of times;
* a Redis lock per order keeps two workers off the same order at the same moment;
* `create_sent_at` is committed before the create is sent; an attempt that finds it set
  without an Exact id first looks the document up by YourRef, so a crash, a timeout or a
  "done, then 502" never creates a second document;
* no database transaction is held open across a call to Exact.

The outcome tells the arq job whether to come back later (`defer_ms`): rate budget
exhausted (not counted as an attempt), or a transient failure (jittered backoff, at most
`max_booking_attempts`, then `failed` — arq has no final-failure hook, so we set it here).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog
from redis.exceptions import LockError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.booking.debtors import DebtorResolver, forget_account
from app.booking.plan import BookingConfigError, EntryPlan, plan_entry
from app.booking.targets import BookingContext, target_for
from app.connections import reference
from app.connections.models import ExactConnection, ReferenceItem
from app.db.base import utcnow
from app.exact.client import ConnectionRef, ExactClient, ExactSession
from app.exact.errors import ExactError, ExactRateLimited, ExactValidationError, NeedsConsent, RateBudgetExhausted
from app.exact.tokens import OAuthApp
from app.integrations.models import Integration
from app.integrations.settings import IntegrationSettings
from app.orders import repository as orders
from app.orders.canonical import CanonicalOrder
from app.orders.models import Order, OrderEvent
from app.orders.states import OrderState
from app.settings import Settings

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Outcome:
    name: str  # booked | recovered | noop | busy | deferred | retry | failed | waiting
    defer_ms: int | None = None
    detail: str = ""


@dataclass
class Claim:
    order_id: int
    revision: int
    attempt: int
    canonical: CanonicalOrder
    settings: IntegrationSettings
    integration: Integration
    connection: ExactConnection
    create_sent_at: datetime | None
    debtor_id: str | None
    debtor_remembered: bool = False


_CUSTOMER_WORDS = ("factuur voor", "besteld door", "relatie", "customer", "orderedby", "invoice to")


def _about_the_customer(message: str) -> bool:
    return any(word in message.lower() for word in _CUSTOMER_WORDS)


def backoff_ms(attempt: int, *, base_ms: int = 5_000, cap_ms: int = 600_000) -> int:
    """Exponential backoff with jitter (half to full of the step), so retries spread out."""
    step = min(cap_ms, base_ms * 2 ** max(0, attempt - 1))
    return int(random.uniform(step / 2, step))


def connection_ref(connection: ExactConnection, settings: Settings) -> ConnectionRef:
    app = OAuthApp(client_id=connection.client_id, client_secret=settings.exact_client_secret.get_secret_value(),
                   redirect_uri=settings.exact_redirect_uri)
    return ConnectionRef(id=connection.id, base_url=connection.base_url, app=app)


class BookingService:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], exact: ExactClient, redis: Any,
                 settings: Settings, *, now_ms: Callable[[], int] = lambda: int(time.time() * 1000)) -> None:
        self.sessionmaker = sessionmaker
        self.exact = exact
        self.redis = redis
        self.settings = settings
        self.now_ms = now_ms

    async def run(self, order_id: int, revision: int) -> Outcome:
        lock = self.redis.lock(f"koppel:order-lock:{order_id}", timeout=self.settings.job_timeout_seconds + 30)
        if not await lock.acquire(blocking=False):
            return Outcome("busy", defer_ms=5_000 + random.randint(0, 5_000), detail="another worker has it")
        try:
            return await self._run(order_id, revision)
        finally:
            try:
                await lock.release()
            except LockError:  # expired meanwhile; the row lock and revision still protect us
                pass

    # ------------------------------------------------------------------------- steps

    async def _run(self, order_id: int, revision: int) -> Outcome:
        claim = await self._claim(order_id, revision)
        if isinstance(claim, Outcome):
            return claim
        if claim.connection.state == "needs_consent":
            return await self._waiting(claim, 0, claim.connection.state_reason or "consent was withdrawn or expired")
        exact = self.exact.for_division(connection_ref(claim.connection, self.settings), claim.integration.division)
        structlog.contextvars.bind_contextvars(order_id=order_id)
        try:
            async with asyncio.timeout(max(5, self.settings.job_timeout_seconds - 10)):
                document, recovered = await self._book(claim, exact)
        except (RateBudgetExhausted, ExactRateLimited) as exc:
            return await self._deferred(claim, exact.calls, exc.retry_at_ms)
        except NeedsConsent as exc:
            return await self._waiting(claim, exact.calls, exc.message)
        except BookingConfigError as exc:
            return await self._failed(claim, exact.calls, exc.code, exc.message, retryable=False)
        except ExactValidationError as exc:
            if claim.debtor_remembered and _about_the_customer(exc.message):
                # A remembered debtor that Exact no longer accepts (deleted or blocked
                # there): forget it and find or create the debtor again, once.
                await self._forget_debtor(claim)
                return await self._retry(claim, exact.calls, f"Exact no longer accepts the remembered debtor "
                                         f"({exc.message}); looking it up again", None)
            return await self._failed(claim, exact.calls, "exact_rejected",
                                      f"Exact refused the document: {exc.message}", retryable=False)
        except ExactError as exc:
            if not exc.retryable:
                return await self._failed(claim, exact.calls, "exact_error", exc.message, retryable=False)
            return await self._retry(claim, exact.calls, f"Exact: {exc.message}", exc.retry_at_ms)
        except TimeoutError:
            return await self._retry(claim, exact.calls, "the booking attempt timed out", None)
        except Exception as exc:  # noqa: BLE001 - never let a job end silently
            log.exception("booking_crashed")
            return await self._retry(claim, exact.calls, f"internal error ({type(exc).__name__})", None)
        finally:
            structlog.contextvars.unbind_contextvars("order_id")
        return await self._booked(claim, exact.calls, document, recovered)

    async def _claim(self, order_id: int, revision: int) -> Claim | Outcome:
        async with self.sessionmaker() as db, db.begin():
            order = await orders.get_order(db, order_id, for_update=True)
            if order is None:
                return Outcome("noop", detail="order not found")
            if order.state == OrderState.BOOKED:
                return Outcome("noop", detail="already booked")
            if order.revision != revision:
                return Outcome("noop", detail=f"stale job (revision {revision}, order at {order.revision})")
            if order.state not in (OrderState.QUEUED, OrderState.BOOKING):
                return Outcome("noop", detail=f"order is {order.state}")
            integration = await db.get(Integration, order.integration_id)
            connection = await db.get(ExactConnection, integration.connection_id) if integration else None
            if integration is None or connection is None or integration.division is None:
                order.state = OrderState.FAILED
                order.error_code, order.retryable = "no_exact_division", False
                order.error_message = "the integration is not linked to an Exact connection and division"
                orders.add_event(db, order.id, "failed", order.error_message)
                return Outcome("failed", detail=order.error_message)
            order.state = OrderState.BOOKING
            order.attempts = (order.attempts or 0) + 1
            order.updated_at = utcnow()
            orders.add_event(db, order.id, "booking", f"booking attempt {order.attempts}")
            return Claim(order.id, revision, order.attempts, CanonicalOrder.model_validate(order.canonical),
                         IntegrationSettings.model_validate(integration.settings or {}), integration, connection,
                         order.create_sent_at, order.exact_debtor_id)

    async def _book(self, claim: Claim, exact: ExactSession) -> tuple[dict[str, Any], bool]:
        settings, order = claim.settings, claim.canonical
        target = target_for(settings)
        if claim.create_sent_at is not None:
            existing = await target.find(exact, settings, order)
            if existing is not None:
                return existing, True
        plan = plan_entry(order, settings)
        debtor_id = claim.debtor_id
        claim.debtor_remembered = debtor_id is not None
        if debtor_id is None:
            resolver = DebtorResolver(self.sessionmaker, exact, claim.connection.id, claim.integration.division)
            debtor_id = await resolver.resolve(order, settings, plan.kind)
            claim.debtor_remembered = resolver.from_cache
            async with self.sessionmaker() as db, db.begin():
                (await orders.get_order(db, claim.order_id)).exact_debtor_id = debtor_id

        async def mark_sent() -> None:
            async with self.sessionmaker() as db, db.begin():
                (await orders.get_order(db, claim.order_id)).create_sent_at = utcnow()

        async def gl_accounts() -> dict[str, ReferenceItem]:
            return await self._gl_accounts(claim, exact, plan)

        context = BookingContext(exact=exact, sessionmaker=self.sessionmaker, connection_id=claim.connection.id,
                                 division=claim.integration.division, order=order, settings=settings, plan=plan,
                                 debtor_id=debtor_id, gl_accounts=gl_accounts, mark_sent=mark_sent)
        return await target.create(context), False

    async def _gl_accounts(self, claim: Claim, exact: ExactSession, plan: EntryPlan) -> dict[str, ReferenceItem]:
        """The division's GL accounts from the cache; refreshed once if one is missing."""
        needed = {line.gl_code for line in plan.lines}
        async with self.sessionmaker() as db:
            known = await reference.lookup(db, claim.connection.id, claim.integration.division, "gl_account")
        if needed <= known.keys():
            return known
        await reference.refresh(self.sessionmaker, exact, claim.connection.id, claim.integration.division,
                                ("gl_account",))
        async with self.sessionmaker() as db:
            return await reference.lookup(db, claim.connection.id, claim.integration.division, "gl_account")

    async def _forget_debtor(self, claim: Claim) -> None:
        async with self.sessionmaker() as db, db.begin():
            order = await orders.get_order(db, claim.order_id)
            if order is not None and order.exact_debtor_id:
                await forget_account(db, claim.connection.id, claim.integration.division, order.exact_debtor_id)
                order.exact_debtor_id = None

    # ------------------------------------------------------------------- outcomes

    async def _finish(self, claim: Claim, calls: int, **values: Any) -> Order | None:
        """Apply the outcome to the order if this attempt still owns it."""
        async with self.sessionmaker() as db, db.begin():
            order = await orders.get_order(db, claim.order_id, for_update=True)
            if order is None or order.revision != claim.revision or order.state != OrderState.BOOKING:
                return None
            order.exact_calls = (order.exact_calls or 0) + calls
            order.updated_at = utcnow()
            events = values.pop("_events", [])
            for name, value in values.items():
                setattr(order, name, value)
            for kind, message, data in events:
                orders.add_event(db, order.id, kind, message, data)
            return order

    async def _booked(self, claim: Claim, calls: int, document: dict[str, Any], recovered: bool) -> Outcome:
        target = target_for(claim.settings)
        document_id, number = target.identify(document)
        how = "found in Exact by YourRef after an interrupted attempt" if recovered else "booked"
        message = (f"{how}: {target.document_type.replace('_', ' ')} {number} in division "
                   f"{claim.integration.division} ({calls} Exact calls in this attempt)")
        await self._finish(claim, calls, state=OrderState.BOOKED, exact_document_type=target.document_type,
                           exact_document_id=document_id, exact_document_number=number,
                           booked_at=utcnow(), error_code=None, error_message=None, retryable=None,
                           _events=[("booked", message, {"calls": calls, "recovered": recovered})])
        log.info("order_booked", order_id=claim.order_id, entry_number=number, calls=calls)
        return Outcome("recovered" if recovered else "booked", detail=number)

    async def _failed(self, claim: Claim, calls: int, code: str, message: str, *, retryable: bool) -> Outcome:
        await self._finish(claim, calls, state=OrderState.FAILED, error_code=code, error_message=message,
                           retryable=retryable, _events=[("failed", message, {"code": code})])
        log.warning("order_failed", order_id=claim.order_id, code=code)
        return Outcome("failed", detail=message)

    async def _waiting(self, claim: Claim, calls: int, reason: str) -> Outcome:
        message = (f"the Exact connection '{claim.connection.name}' needs consent ({reason}); "
                   "reconnect it and the order is booked")
        await self._finish(claim, calls, state=OrderState.WAITING, error_code="needs_consent",
                           error_message=message, retryable=True, _events=[("waiting", message, None)])
        return Outcome("waiting", detail=message)

    async def _deferred(self, claim: Claim, calls: int, retry_at_ms: int | None) -> Outcome:
        now = self.now_ms()
        at = max(retry_at_ms or now + 60_000, now + 1_000) + random.randint(0, 2_000)
        async with self.sessionmaker() as db:
            last = (await db.execute(select(OrderEvent.kind).where(OrderEvent.order_id == claim.order_id)
                                     .order_by(OrderEvent.id.desc()).limit(2))).scalars().all()
        events = [] if "deferred" in last else [
            ("deferred", "Exact's rate limit for this division is used up; waiting for its reset", None)]
        # Waiting for the budget is not a failed attempt. A create stopped by the budget (ours,
        # before sending; or Exact's 429, which processes nothing) never reached Exact, so a
        # mark set in this attempt is lifted: the next attempt needs no YourRef look-up.
        await self._finish(claim, calls, state=OrderState.QUEUED, attempts=claim.attempt - 1,
                           create_sent_at=claim.create_sent_at, _events=events)
        return Outcome("deferred", defer_ms=at - now)

    async def _retry(self, claim: Claim, calls: int, reason: str, retry_at_ms: int | None) -> Outcome:
        if claim.attempt >= self.settings.max_booking_attempts:
            return await self._failed(claim, calls, "exact_unavailable",
                                      f"gave up after {claim.attempt} attempts; last: {reason}", retryable=True)
        delay = backoff_ms(claim.attempt, base_ms=int(self.settings.booking_retry_base_seconds * 1000))
        if retry_at_ms is not None:
            delay = max(delay, retry_at_ms - self.now_ms())
        message = f"attempt {claim.attempt} failed: {reason}; retrying in {delay // 1000} s"
        await self._finish(claim, calls, state=OrderState.QUEUED, _events=[("retry", message, None)])
        return Outcome("retry", defer_ms=delay, detail=reason)
