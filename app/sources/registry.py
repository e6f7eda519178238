"""Source name → adapter. A source missing here answers 404 at the webhook URL."""

from __future__ import annotations

from app.sources.base import SourceAdapter
from app.sources.generic import GenericAdapter
from app.sources.lightspeed import LightspeedAdapter
from app.sources.shopify import ShopifyAdapter
from app.sources.woocommerce import WooCommerceAdapter

ADAPTERS: dict[str, SourceAdapter] = {
    adapter.name: adapter
    for adapter in (GenericAdapter(), ShopifyAdapter(), WooCommerceAdapter(), LightspeedAdapter())
}


def get_adapter(name: str) -> SourceAdapter | None:
    return ADAPTERS.get(name)
