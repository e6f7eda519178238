"""Storing and reading a shop's API credentials, encrypted at rest. Never commits."""

from __future__ import annotations

import json
from datetime import datetime

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app import crypto
from app.db.base import utcnow
from app.integrations.models import Integration
from app.reconcile.models import ShopApiCredentials

# The sources whose shops can be reconciled, and the secrets each needs.
REQUIRED_SECRETS = {
    "shopify": ("access_token",),
    "woocommerce": ("consumer_key", "consumer_secret"),
}


class CredentialsError(ValueError):
    """The credentials given cannot be used (unknown source, missing secret, bad address)."""


def normalise_shop_url(source: str, shop_url: str) -> str:
    """`https://host[/path]` without a trailing slash. A Shopify shop may be given as its
    bare `name.myshopify.com`. Plain HTTP is accepted only for localhost (development)."""
    value = shop_url.strip()
    if source == "shopify" and "://" not in value:
        value = "https://" + value
    try:
        url = httpx.URL(value)
    except httpx.InvalidURL as exc:
        raise CredentialsError(f"shop address {shop_url!r} is not a URL: {exc}") from exc
    if not url.host:
        raise CredentialsError(f"shop address {shop_url!r} has no host")
    local = url.host in ("localhost", "127.0.0.1", "::1")
    if url.scheme != "https" and not (url.scheme == "http" and local):
        raise CredentialsError("the shop address must start with https:// (its API credentials would travel in clear)")
    if url.query or url.fragment:
        raise CredentialsError("the shop address must not carry a query or fragment")
    path = "" if source == "shopify" else url.path.rstrip("/")
    return str(url.copy_with(path=path or "/", query=None, fragment=None)).rstrip("/")


async def get_for_integration(session: AsyncSession, integration_id: int,
                              *, for_update: bool = False) -> ShopApiCredentials | None:
    query = select(ShopApiCredentials).where(ShopApiCredentials.integration_id == integration_id)
    if for_update:
        query = query.with_for_update()
    return (await session.execute(query)).scalar_one_or_none()


async def save_credentials(session: AsyncSession, *, secret_key: str, integration: Integration, shop_url: str,
                           secrets: dict[str, str], api_version: str | None = None,
                           now: datetime | None = None) -> ShopApiCredentials:
    """Create or replace the integration's shop API credentials (encrypted) and enable them.

    A first save starts reconciliation at the integration's creation: orders from before
    Koppel was connected are not the shop's lost webhooks. Replacing credentials keeps how far
    reconciliation got."""
    required = REQUIRED_SECRETS.get(integration.source)
    if required is None:
        raise CredentialsError(f"reconciliation is not available for the {integration.source!r} source "
                               f"(only {', '.join(REQUIRED_SECRETS)})")
    missing = [name for name in required if not (secrets.get(name) or "").strip()]
    if missing:
        raise CredentialsError(f"missing {', '.join(missing)} for {integration.source}")
    plaintext = json.dumps({name: secrets[name].strip() for name in required})
    now = now or utcnow()
    row = await get_for_integration(session, integration.id, for_update=True)
    if row is None:
        row = ShopApiCredentials(integration_id=integration.id, reconciled_until=integration.created_at or now,
                                 created_at=now)
        session.add(row)
    row.shop_url = normalise_shop_url(integration.source, shop_url)
    row.api_version = ((api_version or "").strip() or None) if integration.source == "shopify" else None
    row.credentials_enc = crypto.encrypt(secret_key, plaintext)
    row.enabled = True
    row.last_error = None
    row.updated_at = now
    await session.flush()
    return row


def read_secrets(secret_key: str, row: ShopApiCredentials) -> dict[str, str]:
    """The decrypted secrets; ValueError when KOPPEL_SECRET_KEY is not the one that encrypted them."""
    value = json.loads(crypto.decrypt(secret_key, row.credentials_enc))
    if not isinstance(value, dict):
        raise ValueError("stored shop API credentials are not an object")
    return {str(k): str(v) for k, v in value.items()}
