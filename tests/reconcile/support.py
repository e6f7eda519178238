"""Fakes of the shops' order listings (served through respx) and helpers to set shops up."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import respx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.integrations.models import Integration
from app.orders.models import Order, OrderEvent
from app.reconcile.credentials import save_credentials
from app.reconcile.service import ReconcileRun, reconcile_integration
from app.sources import shopify, woocommerce
from app.webhooks.config_cache import IntakeConfigCache
from app.webhooks.service import IntakeResult, receive
from tests.factories import SECRET_KEY, Shop, make_shop
from tests.sources.support import payload

SHOPIFY_URL = "https://koffie-example.myshopify.com"
SHOPIFY_ORDERS = f"{SHOPIFY_URL}/admin/api/2026-10/orders.json"
SHOPIFY_TOKEN = "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"
WOO_URL = "https://shop.example.com"
WOO_ORDERS = f"{WOO_URL}/wp-json/wc/v3/orders"
WOO_KEY = "ck_1f2e3d4c5b6a79880706f5e4d3c2b1a0f9e8d7c6"
WOO_SECRET = "cs_0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b"

SOURCES = ["shopify", "woocommerce"]


def company_order(source: str) -> dict[str, Any]:
    """The adapters' company order fixture (paid or processing): books when it arrives."""
    return payload(source, "order_company_nl.json" if source == "shopify" else "order_company_excl.json")


def modified_key(source: str) -> str:
    return "updated_at" if source == "shopify" else "date_modified_gmt"


def later(source: str, order: dict[str, Any], stamp: str, **changes: Any) -> dict[str, Any]:
    """A copy of `order` as the shop would show it after a change at `stamp`."""
    changed = copy.deepcopy(order)
    changed[modified_key(source)] = stamp
    changed.update(changes)
    return changed


@dataclass
class FakeShopApi:
    """The shop's order listing: `orders` served in pages of `page_size`, every request kept."""

    source: str
    orders: list[dict[str, Any]] = field(default_factory=list)
    page_size: int = 50
    fail_on_page: int | None = None
    fail_status: int = 500
    requests: list[httpx.Request] = field(default_factory=list)

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        query = parse_qs(urlsplit(str(request.url)).query)
        if self.source == "shopify":
            page = int(query["page_info"][0].removeprefix("p")) if "page_info" in query else 1
        else:
            page = int(query["page"][0])
        if self.fail_on_page == page:
            return httpx.Response(self.fail_status, json={"errors": "boom"})
        chunk = self.orders[(page - 1) * self.page_size: page * self.page_size]
        pages = max(1, -(-len(self.orders) // self.page_size))
        if self.source == "shopify":
            headers = {}
            if page < pages:
                headers["Link"] = (f'<{SHOPIFY_ORDERS}?limit={self.page_size}&page_info=p{page + 1}>; rel="next"')
            return httpx.Response(200, json={"orders": chunk}, headers=headers)
        return httpx.Response(200, json=chunk, headers={"X-WP-Total": str(len(self.orders)),
                                                        "X-WP-TotalPages": str(pages)})

    def params(self, index: int = 0) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(urlsplit(str(self.requests[index].url)).query).items()}


@contextmanager
def shop_api(source: str, orders: list[dict[str, Any]], **options: Any) -> Iterator[FakeShopApi]:
    fake = FakeShopApi(source, list(orders), **options)
    with respx.mock(assert_all_called=False) as router:
        router.get(url__startswith=SHOPIFY_ORDERS if source == "shopify" else WOO_ORDERS).mock(side_effect=fake.handle)
        yield fake


async def shop_with_api(sessionmaker: async_sessionmaker[AsyncSession], source: str, *,
                        settings: dict[str, Any] | None = None, name: str = "Webshop") -> Shop:
    """A shop integration (the source's default settings unless given) with API credentials."""
    shop = await make_shop(sessionmaker, source=source, settings=settings, name=name)
    async with sessionmaker() as session, session.begin():
        integration = await session.get(Integration, shop.integration_id)
        assert integration is not None
        if source == "shopify":
            await save_credentials(session, secret_key=SECRET_KEY, integration=integration, shop_url=SHOPIFY_URL,
                                   secrets={"access_token": SHOPIFY_TOKEN})
        else:
            await save_credentials(session, secret_key=SECRET_KEY, integration=integration, shop_url=WOO_URL,
                                   secrets={"consumer_key": WOO_KEY, "consumer_secret": WOO_SECRET})
    return shop


async def reconcile(sessionmaker: async_sessionmaker[AsyncSession], shop: Shop, *,
                    now: datetime | None = None, budget: float = 60.0) -> ReconcileRun:
    async with httpx.AsyncClient() as http:
        return await reconcile_integration(sessionmaker, http, SECRET_KEY, shop.integration_id,
                                           budget_seconds=budget, now=now)


async def webhook(sessionmaker: async_sessionmaker[AsyncSession], shop: Shop, source: str,
                  order: dict[str, Any], *, event_id: str) -> IntakeResult:
    """Deliver `order` the way the shop's webhook does, signed with the integration's secret."""
    body = json.dumps(order).encode()
    if source == "shopify":
        headers = {"x-shopify-hmac-sha256": shopify.sign(shop.secret, body), "x-shopify-event-id": event_id,
                   "x-shopify-topic": "orders/updated"}
    else:
        headers = {"x-wc-webhook-signature": woocommerce.sign(shop.secret, body),
                   "x-wc-webhook-delivery-id": event_id, "x-wc-webhook-topic": "order.updated"}
    return await receive(sessionmaker, IntakeConfigCache(SECRET_KEY, ttl=0), source, shop.key, body, headers)


async def count(sessionmaker: async_sessionmaker[AsyncSession], model: Any, *where: Any) -> int:
    async with sessionmaker() as session:
        query = select(func.count()).select_from(model)
        for clause in where:
            query = query.where(clause)
        return int((await session.execute(query)).scalar_one())


async def timeline(sessionmaker: async_sessionmaker[AsyncSession], order_id: int) -> list[str]:
    async with sessionmaker() as session:
        return list((await session.execute(
            select(OrderEvent.kind).where(OrderEvent.order_id == order_id).order_by(OrderEvent.id))).scalars())


async def only_order(sessionmaker: async_sessionmaker[AsyncSession], integration_id: int) -> Order:
    async with sessionmaker() as session:
        rows = (await session.execute(select(Order).where(Order.integration_id == integration_id))).scalars().all()
    assert len(rows) == 1, f"expected one order, found {len(rows)}"
    return rows[0]
