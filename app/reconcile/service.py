"""Reconciliation: find the orders whose webhooks never arrived, and take them in after all.

For each integration with shop API credentials, a run lists the orders the shop changed
since the last run (minus `OVERLAP`, for clock skew and for orders changed while the last run
was listing) and feeds every version Koppel has not received through the webhook intake's
own `accept()`, as a delivery with id `reconcile:<shop order id>:<shop modification time>`.
The intake's dedupe therefore holds unchanged: a known order id is a later delivery of that
order (an update, a repeat, or a change after booking — never a second order), and a run
that sees the same version again finds its delivery id taken.

Each order is taken in in its own transaction, exactly as a webhook would be. The cursor
(`reconciled_until`) moves to the moment the listing started only after every order of the
listing was committed. A run has a time budget (it must end well inside the worker's job
timeout): a listing that does not fit stops after a whole page and leaves a resume point
(`resume`: the same `since`, the listing's start, the next page), where the next run goes on.
A run that fails keeps the cursor and its resume point; the next run lists that part again and
skips what was already taken in.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.connections import repository as connections
from app.db.base import utcnow
from app.integrations.models import Integration
from app.integrations.settings import IntegrationSettings
from app.orders import repository as orders
from app.orders.models import Delivery, Order
from app.reconcile.base import MAX_PAGES, ListedOrder, ShopApiError, ShopOrders, parse_time
from app.reconcile.credentials import REQUIRED_SECRETS, CredentialsError, get_for_integration, read_secrets
from app.reconcile.models import ShopApiCredentials
from app.reconcile.shopify import ShopifyOrders
from app.reconcile.woocommerce import WooCommerceOrders
from app.sources.base import SourceAdapter
from app.sources.registry import get_adapter
from app.webhooks.config_cache import IntakeConfig
from app.webhooks.service import accept

log = structlog.get_logger(__name__)

# How far before the last run's start each run lists again.
OVERLAP = timedelta(minutes=10)
DELIVERY_PREFIX = "reconcile"
SHOP_NAMES = {"shopify": "Shopify Admin", "woocommerce": "WooCommerce REST"}


@dataclass
class ReconcileRun:
    integration_id: int
    since: datetime
    # When the listing began (a resumed listing keeps its first run's start): the new cursor.
    started: datetime
    counts: Counter[str] = field(default_factory=Counter)
    queued: int = 0
    error: str | None = None
    # The next page when the run stopped before the end of the listing, else None.
    next_page: str | None = None
    pages: int = 0

    @property
    def finished(self) -> bool:
        return self.error is None and self.next_page is None


def make_client(source: str, http: httpx.AsyncClient, row: ShopApiCredentials,
                secrets: dict[str, str]) -> ShopOrders:
    if source == "shopify":
        return ShopifyOrders(http, row.shop_url, secrets["access_token"], row.api_version)
    if source == "woocommerce":
        return WooCommerceOrders(http, row.shop_url, secrets["consumer_key"], secrets["consumer_secret"])
    raise CredentialsError(f"reconciliation is not available for the {source!r} source")


def delivery_id_for(listed: ListedOrder) -> str:
    """`reconcile:<shop order id>:<modification time>`; without a time, a hash of the order
    stands in, so that a changed order is still a new delivery and an unchanged one is not."""
    version = listed.modified or "sha256:" + hashlib.sha256(
        json.dumps(listed.payload, sort_keys=True).encode()).hexdigest()[:32]
    return f"{DELIVERY_PREFIX}:{listed.source_order_id}:{version}"[:200]


async def integrations_to_reconcile(sessionmaker: async_sessionmaker[AsyncSession]) -> list[int]:
    """Integrations with enabled credentials, the longest unvisited first (so a run that runs
    out of time is not always spent on the same shops)."""
    async with sessionmaker() as session:
        result = await session.execute(
            select(ShopApiCredentials.integration_id)
            .join(Integration, Integration.id == ShopApiCredentials.integration_id)
            # A paused integration is still reconciled: like its webhooks, the orders are
            # stored and checked and wait (app.orders.service) until it is enabled again.
            .where(ShopApiCredentials.enabled.is_(True), Integration.source.in_(list(REQUIRED_SECRETS)))
            .order_by(ShopApiCredentials.last_run_at.is_not(None), ShopApiCredentials.last_run_at,
                      ShopApiCredentials.integration_id)
        )
        return list(result.scalars())


async def reconcile_all(sessionmaker: async_sessionmaker[AsyncSession], http: httpx.AsyncClient,
                        secret_key: str, *, budget_seconds: float, now: datetime | None = None
                        ) -> list[ReconcileRun]:
    """One run per integration with enabled credentials, as long as the budget lasts (every
    shop gets at least one page once it is started). One failing shop stops no other."""
    deadline = time.monotonic() + budget_seconds
    runs = []
    for integration_id in await integrations_to_reconcile(sessionmaker):
        left = deadline - time.monotonic()
        if left <= 0 and runs:
            break  # the others first next time: they have waited longest
        try:
            runs.append(await reconcile_integration(sessionmaker, http, secret_key, integration_id,
                                                    budget_seconds=max(left, 0), now=now))
        except Exception:  # noqa: BLE001 - logged; the other shops still run, this one runs next time
            log.exception("reconcile_crashed", integration_id=integration_id)
    return runs


async def reconcile_integration(sessionmaker: async_sessionmaker[AsyncSession], http: httpx.AsyncClient,
                                secret_key: str, integration_id: int, *, budget_seconds: float = 60.0,
                                now: datetime | None = None) -> ReconcileRun:
    """List and take in the shop's changed orders; page after page until the listing ends or
    `budget_seconds` are spent (at least one page)."""
    deadline = time.monotonic() + budget_seconds
    async with sessionmaker() as session:
        row = await get_for_integration(session, integration_id)
        integration = await session.get(Integration, integration_id)
        if row is None or integration is None:
            raise LookupError(f"integration {integration_id} has no shop API credentials")
        run = _resumed(row, now or utcnow())
        try:
            client = make_client(integration.source, http, row, read_secrets(secret_key, row))
            config = await _intake_config(session, integration)
        except (ValueError, KeyError) as exc:  # undecryptable or incomplete secrets, invalid settings
            run.error = f"cannot use this integration's credentials or settings: {type(exc).__name__}: {exc}"
    if run.error is None:
        adapter = get_adapter(integration.source)
        assert adapter is not None
        try:
            while True:
                listed, run.next_page = await client.page(run.since, run.next_page)
                run.pages += 1
                for order in listed:
                    run.counts["listed"] += 1
                    outcome, queued = await _take_in(sessionmaker, adapter, client, config, order, run.started)
                    run.counts[outcome] += 1
                    run.queued += queued
                if run.next_page is None or time.monotonic() >= deadline:
                    break
                if run.pages >= MAX_PAGES:
                    raise ShopApiError(f"more than {MAX_PAGES} pages of changed orders; stopped")
        except ShopApiError as exc:
            run.error = str(exc)
    await _finish(sessionmaker, run)
    log.info("reconciled", integration_id=integration_id, source=integration.source, error=run.error,
             finished=run.finished, pages=run.pages, queued=run.queued, **run.counts)
    return run


def _resumed(row: ShopApiCredentials, now: datetime) -> ReconcileRun:
    """A new listing from the cursor, or the one a previous run left unfinished."""
    resume = row.resume or {}
    since, started = parse_time(resume.get("since")), parse_time(resume.get("started"))
    if since is None or started is None:
        return ReconcileRun(row.integration_id, row.reconciled_until - OVERLAP, now)
    return ReconcileRun(row.integration_id, since, started, next_page=resume.get("next"),
                        pages=int(resume.get("pages") or 0))


async def _intake_config(session: AsyncSession, integration: Integration) -> IntakeConfig:
    """What the intake needs about the integration; no webhook secret, nothing is verified."""
    vat_codes = None
    if integration.connection_id is not None and integration.division is not None:
        vat_codes = await connections.vat_codes(session, integration.connection_id, integration.division)
    settings = IntegrationSettings.model_validate(integration.settings or {})
    return IntakeConfig(integration, "", settings, vat_codes, time.monotonic())


async def _take_in(sessionmaker: async_sessionmaker[AsyncSession], adapter: SourceAdapter, client: ShopOrders,
                   config: IntakeConfig, listed: ListedOrder, started: datetime) -> tuple[str, int]:
    """Feed one listed order to the intake unless Koppel has that version; (outcome, queued)."""
    integration = config.integration
    delivery_id = delivery_id_for(listed)
    # The order exactly as the shop's API returned it, re-serialised: nothing signed it, so
    # there is no signature to keep intact, and the adapter maps it like a webhook body.
    body = json.dumps(listed.payload, ensure_ascii=False).encode()
    headers = {"x-koppel-via": "reconciliation", "x-koppel-listed-at": started.isoformat()}
    async with sessionmaker() as session, session.begin():
        if await orders.get_delivery(session, integration.id, delivery_id) is not None:
            return "already_seen", 0
        known = await orders.get_by_source_id(session, integration.id, listed.source_order_id, for_update=True)
        if known is not None and not await _newer_than_received(session, client, known, listed):
            return "unchanged", 0  # a webhook (or an earlier run) brought this version or a later one
        result = await accept(session, adapter, config, body, headers, delivery_id=delivery_id)
        delivery = await orders.get_delivery(session, integration.id, delivery_id)
        outcome = delivery.outcome if delivery is not None else "repeat"
        # 200 means the order existed after all (a webhook inserted it a moment ago).
        created = known is None and result.status_code != 200
        if created:
            outcome = "new" if result.status_code == 202 else "rejected"
        if result.order_id is not None and (created or outcome == "updated"):
            what = "order" if created else "change"
            shop = SHOP_NAMES.get(integration.source, integration.source)
            await orders.add_event_now(session, result.order_id, "reconciled",
                                       f"no webhook brought this {what}; reconciliation found it through the "
                                       f"{shop} API (changed {listed.modified or 'at an unknown time'})")
    return outcome, int(result.queued)


async def _newer_than_received(session: AsyncSession, client: ShopOrders, order: Order,
                               listed: ListedOrder) -> bool:
    """Whether the listed version is newer than every version of the order Koppel received.

    Compared on the shop's own modification time in each stored delivery; when that cannot
    be told, the intake decides (a repeat of the same order changes nothing)."""
    listed_at = client.modified_at(listed.payload)
    if listed_at is None:
        return True
    bodies = (await session.execute(select(Delivery.body).where(Delivery.order_id == order.id))).scalars()
    seen = [client.modified_at(_json(body)) for body in bodies]
    known = [moment for moment in seen if moment is not None]
    return not known or listed_at > max(known)


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None


async def _finish(sessionmaker: async_sessionmaker[AsyncSession], run: ReconcileRun) -> None:
    """Record the run; the cursor moves only when a whole listing is committed."""
    async with sessionmaker() as session, session.begin():
        row = await get_for_integration(session, run.integration_id, for_update=True)
        if row is None:
            return
        row.last_run_at = utcnow()
        row.last_counts = dict(run.counts)
        row.last_error = run.error
        if run.finished:
            row.resume = None
            if run.started > row.reconciled_until:  # never backwards (an overlapping, older run)
                row.reconciled_until = run.started
        elif run.next_page is not None or run.pages:
            # Go on from the page that was not (completely) taken in; on an error that is the
            # page that failed, which the next run asks for again.
            row.resume = {"since": run.since.isoformat(), "started": run.started.isoformat(),
                          "next": run.next_page, "pages": run.pages}
