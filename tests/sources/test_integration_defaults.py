"""Integrations created for a shop store that shop's paid statuses, and the intake gates on them."""

from __future__ import annotations

import json

import pytest

from app.integrations.models import Integration
from app.integrations.service import create_integration, create_tenant
from app.sources import lightspeed, shopify, woocommerce
from app.webhooks.config_cache import IntakeConfigCache
from app.webhooks.service import receive
from tests.factories import SECRET_KEY, make_shop
from tests.sources.support import payload


@pytest.mark.parametrize(("source", "expected"), [
    ("shopify", ["paid"]),
    ("woocommerce", ["processing", "completed"]),
    ("lightspeed", ["paid"]),
    ("generic", ["paid"]),
])
async def test_a_new_integration_stores_its_sources_processable_statuses(database_url, sessionmaker, source,
                                                                         expected) -> None:
    async with sessionmaker() as session, session.begin():
        tenant = await create_tenant(session, "Voorbeeld B.V.")
        integration, _ = await create_integration(session, secret_key=SECRET_KEY, tenant_id=tenant.id,
                                                  name="Shop", source=source)
    async with sessionmaker() as session:
        stored = await session.get(Integration, integration.id)
    assert stored.settings["processable_statuses"] == expected


def _shopify(secret: str, order: dict, event: str) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(order).encode()
    return body, {"x-shopify-hmac-sha256": shopify.sign(secret, body), "x-shopify-event-id": event}


def _woocommerce(secret: str, order: dict, event: str) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(order).encode()
    return body, {"x-wc-webhook-signature": woocommerce.sign(secret, body), "x-wc-webhook-delivery-id": event}


def _lightspeed(secret: str, order: dict, event: str) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(order).encode()
    return body, {"x-signature": lightspeed.sign(secret, body)}


@pytest.mark.parametrize(("source", "fixture", "field", "waits", "books"), [
    ("shopify", "order_company_nl.json", "financial_status", ["pending", "authorized", "refunded"], ["paid"]),
    ("woocommerce", "order_company_excl.json", "status", ["pending", "on-hold", "cancelled"],
     ["processing", "completed"]),
    ("lightspeed", "order_company.json", "paymentStatus", ["not_paid"], ["paid"]),
])
async def test_with_the_defaults_only_paid_orders_are_queued(database_url, sessionmaker, source, fixture, field,
                                                             waits, books) -> None:
    shop = await make_shop(sessionmaker, source=source)  # no settings given: the source's defaults
    sign = {"shopify": _shopify, "woocommerce": _woocommerce, "lightspeed": _lightspeed}[source]
    cache = IntakeConfigCache(SECRET_KEY, ttl=0)
    states = {}
    for k, status in enumerate(waits + books):
        order = payload(source, fixture)
        target = order["order"] if source == "lightspeed" else order
        target["id"] = 900 + k
        target["number"] = str(900 + k)
        if source == "shopify":
            target["name"] = f"#{900 + k}"
        target[field] = status
        body, headers = sign(shop.secret, order, f"evt-{k}")
        result = await receive(sessionmaker, cache, source, shop.key, body, headers)
        assert result.status_code == 202, result.body()
        states[status] = result.state
    assert states == {**{status: "open" for status in waits}, **{status: "queued" for status in books}}
