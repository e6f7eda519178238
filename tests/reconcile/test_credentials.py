"""Shop API credentials: encrypted at rest, validated, and only for shops that can be reconciled."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import text

from app import crypto
from app.integrations.models import Integration
from app.reconcile.credentials import CredentialsError, normalise_shop_url, read_secrets, save_credentials
from app.reconcile.models import ShopApiCredentials
from tests.factories import SECRET_KEY, make_shop
from tests.reconcile.support import SHOPIFY_TOKEN, WOO_KEY, WOO_SECRET, WOO_URL, shop_with_api


async def test_credentials_are_stored_encrypted_and_read_back(database_url, sessionmaker) -> None:
    shopify = await shop_with_api(sessionmaker, "shopify")
    woo = await shop_with_api(sessionmaker, "woocommerce")
    async with sessionmaker() as session:
        raw = dict((await session.execute(text(
            "SELECT integration_id, credentials_enc FROM shop_api_credentials"))).all())
        rows = {row.integration_id: row for row in (await session.execute(
            ShopApiCredentials.__table__.select())).all()}
    for secret in (SHOPIFY_TOKEN, WOO_KEY, WOO_SECRET):
        assert all(secret not in stored for stored in raw.values())
    assert json.loads(crypto.decrypt(SECRET_KEY, raw[shopify.integration_id])) == {"access_token": SHOPIFY_TOKEN}
    assert json.loads(crypto.decrypt(SECRET_KEY, raw[woo.integration_id])) == {
        "consumer_key": WOO_KEY, "consumer_secret": WOO_SECRET}
    with pytest.raises(ValueError, match="KOPPEL_SECRET_KEY"):
        crypto.decrypt("another-key", raw[woo.integration_id])
    assert rows[woo.integration_id].shop_url == WOO_URL and rows[woo.integration_id].enabled


async def test_a_first_save_starts_at_the_integrations_creation_and_a_replacement_keeps_the_cursor(
        database_url, sessionmaker) -> None:
    shop = await shop_with_api(sessionmaker, "shopify")
    async with sessionmaker() as session, session.begin():
        integration = await session.get(Integration, shop.integration_id)
        row = (await session.execute(ShopApiCredentials.__table__.select())).one()
        assert row.reconciled_until == integration.created_at
        await session.execute(ShopApiCredentials.__table__.update().values(
            reconciled_until=integration.created_at.replace(year=2030), enabled=False))
    async with sessionmaker() as session, session.begin():
        integration = await session.get(Integration, shop.integration_id)
        replaced = await save_credentials(session, secret_key=SECRET_KEY, integration=integration,
                                          shop_url="koffie-example.myshopify.com",
                                          secrets={"access_token": "shpat_new"}, api_version="2026-07")
        assert replaced.reconciled_until.year == 2030 and replaced.enabled
        assert replaced.api_version == "2026-07"
        assert read_secrets(SECRET_KEY, replaced) == {"access_token": "shpat_new"}
    async with sessionmaker() as session:
        assert len((await session.execute(ShopApiCredentials.__table__.select())).all()) == 1


@pytest.mark.parametrize(("source", "secrets", "message"), [
    ("lightspeed", {"access_token": "x"}, "not available for the 'lightspeed' source"),
    ("generic", {"access_token": "x"}, "not available for the 'generic' source"),
    ("shopify", {"access_token": " "}, "missing access_token"),
    ("woocommerce", {"consumer_key": "ck_1"}, "missing consumer_secret"),
])
async def test_unusable_credentials_are_refused(database_url, sessionmaker, source, secrets, message) -> None:
    shop = await make_shop(sessionmaker, source=source)
    async with sessionmaker() as session, session.begin():
        integration = await session.get(Integration, shop.integration_id)
        with pytest.raises(CredentialsError, match=message):
            await save_credentials(session, secret_key=SECRET_KEY, integration=integration,
                                   shop_url="https://shop.example.com", secrets=secrets)
    async with sessionmaker() as session:
        assert (await session.execute(ShopApiCredentials.__table__.select())).all() == []


@pytest.mark.parametrize(("source", "given", "expected"), [
    ("shopify", "koffie.myshopify.com", "https://koffie.myshopify.com"),
    ("shopify", "https://koffie.myshopify.com/admin/", "https://koffie.myshopify.com"),
    ("woocommerce", "https://shop.example.com/", "https://shop.example.com"),
    ("woocommerce", "https://example.com/winkel/", "https://example.com/winkel"),
    ("woocommerce", "http://localhost:8080", "http://localhost:8080"),
])
def test_shop_addresses_are_normalised(source: str, given: str, expected: str) -> None:
    assert normalise_shop_url(source, given) == expected


@pytest.mark.parametrize("given", ["http://shop.example.com", "ftp://shop.example.com", "https://shop.example.com/?a=1",
                                   "https://"])
def test_shop_addresses_that_would_leak_or_mislead_are_refused(given: str) -> None:
    with pytest.raises(CredentialsError):
        normalise_shop_url("woocommerce", given)
