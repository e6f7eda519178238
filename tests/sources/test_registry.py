"""The three shop adapters are registered and give integration creation its status defaults."""

from __future__ import annotations

from app.integrations.service import default_settings_for
from app.sources.lightspeed import LightspeedAdapter
from app.sources.registry import ADAPTERS, get_adapter
from app.sources.shopify import ShopifyAdapter
from app.sources.woocommerce import WooCommerceAdapter


def test_shop_adapters_are_registered_under_their_names() -> None:
    assert isinstance(get_adapter("shopify"), ShopifyAdapter)
    assert isinstance(get_adapter("woocommerce"), WooCommerceAdapter)
    assert isinstance(get_adapter("lightspeed"), LightspeedAdapter)
    assert {"generic", "shopify", "woocommerce", "lightspeed"} <= set(ADAPTERS)
    assert all(adapter.name == name for name, adapter in ADAPTERS.items())


def test_new_integrations_default_to_each_shops_paid_statuses() -> None:
    assert default_settings_for("shopify").processable_statuses == ["paid"]
    assert default_settings_for("woocommerce").processable_statuses == ["processing", "completed"]
    assert default_settings_for("lightspeed").processable_statuses == ["paid"]
