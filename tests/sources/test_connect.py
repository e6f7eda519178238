"""`python -m app.sources.connect`: the shop's own webhook key, and reconciliation credentials."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from sqlalchemy import select

from app import crypto
from app.db.engine import create_engine, create_sessionmaker
from app.integrations.models import Integration
from app.reconcile.models import ShopApiCredentials
from app.settings import Settings
from app.sources import connect, shopify
from app.webhooks.config_cache import IntakeConfigCache
from app.webhooks.service import receive
from tests.factories import SECRET_KEY, make_shop
from tests.sources.support import raw

SHOPIFY_APP_SECRET = "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"


def run_async(database_url: str, work: Any) -> Any:
    async def go() -> Any:
        engine = create_engine(database_url)
        try:
            return await work(create_sessionmaker(engine))
        finally:
            await engine.dispose()

    return asyncio.run(go())


@pytest.fixture
def cli(database_url: str, sessionmaker, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setattr(connect, "get_settings", lambda: Settings(database_url=database_url, secret_key=SECRET_KEY))
    monkeypatch.setattr(connect.getpass, "getpass", lambda prompt: pytest.fail(f"prompted for {prompt!r}"))

    def call(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any]:
        code = connect.main(list(argv))
        out, err = capsys.readouterr()
        return code, json.loads(out) if code == 0 else err

    return call


def test_the_shops_own_signing_key_replaces_the_generated_secret(database_url, cli, capsys, monkeypatch) -> None:
    shop = run_async(database_url, lambda sm: make_shop(sm, source="shopify"))
    body = raw("shopify", "order_company_nl.json")
    headers = {"x-shopify-hmac-sha256": shopify.sign(SHOPIFY_APP_SECRET, body), "x-shopify-event-id": "evt-1"}

    async def deliver(sessionmaker: Any) -> int:
        result = await receive(sessionmaker, IntakeConfigCache(SECRET_KEY, ttl=0), "shopify", shop.key, body, headers)
        return result.status_code

    assert run_async(database_url, deliver) == 401  # signed with Shopify's key, not Koppel's
    monkeypatch.setenv("KOPPEL_SHOP_WEBHOOK_SECRET", SHOPIFY_APP_SECRET)
    assert cli(capsys, "webhook-secret", str(shop.integration_id)) == (
        0, {"integration_id": shop.integration_id, "webhook_secret": "stored"})
    assert run_async(database_url, deliver) == 202

    async def stored(sessionmaker: Any) -> str:
        async with sessionmaker() as session:
            return (await session.get(Integration, shop.integration_id)).webhook_secret_enc

    enc = run_async(database_url, stored)
    assert SHOPIFY_APP_SECRET not in enc and crypto.decrypt(SECRET_KEY, enc) == SHOPIFY_APP_SECRET


def test_api_credentials_are_stored_encrypted_and_reconciliation_can_be_switched_off(
        database_url, cli, capsys, monkeypatch) -> None:
    shop = run_async(database_url, lambda sm: make_shop(sm, source="woocommerce"))
    monkeypatch.setenv("KOPPEL_SHOP_CONSUMER_KEY", "ck_abc")
    monkeypatch.setenv("KOPPEL_SHOP_CONSUMER_SECRET", "cs_def")
    code, answer = cli(capsys, "api-credentials", str(shop.integration_id), "--shop-url", "https://shop.example.com/")
    assert code == 0 and answer["shop_url"] == "https://shop.example.com"
    assert cli(capsys, "reconcile-off", str(shop.integration_id)) == (
        0, {"integration_id": shop.integration_id, "reconciliation": "off"})

    async def row(sessionmaker: Any) -> ShopApiCredentials:
        async with sessionmaker() as session:
            return (await session.execute(select(ShopApiCredentials))).scalar_one()

    stored = run_async(database_url, row)
    assert not stored.enabled and "cs_def" not in stored.credentials_enc
    assert json.loads(crypto.decrypt(SECRET_KEY, stored.credentials_enc)) == {
        "consumer_key": "ck_abc", "consumer_secret": "cs_def"}


def test_lightspeed_has_no_reconciliation(database_url, cli, capsys, monkeypatch) -> None:
    shop = run_async(database_url, lambda sm: make_shop(sm, source="lightspeed"))
    code, err = cli(capsys, "api-credentials", str(shop.integration_id), "--shop-url", "https://shop.example.com")
    assert code == 2 and "not available for the 'lightspeed' source" in err
    assert cli(capsys, "reconcile-off", "999")[0] == 2


def test_reconcile_now_takes_in_what_the_shop_lists(database_url, cli, capsys) -> None:
    from tests.reconcile.support import company_order, shop_api, shop_with_api

    shop = run_async(database_url, lambda sm: shop_with_api(sm, "woocommerce"))
    with shop_api("woocommerce", [company_order("woocommerce")]) as api:
        code, answer = cli(capsys, "reconcile", "--integration", str(shop.integration_id))
    assert code == 0 and len(api.requests) == 1
    [run] = answer["runs"]
    assert (run["integration_id"], run["finished"], run["error"], run["new"], run["queued"]) == (
        shop.integration_id, True, None, 1, 1)
