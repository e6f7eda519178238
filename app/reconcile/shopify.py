"""Shopify Admin REST API: the orders changed since a moment.

`GET {shop}/admin/api/{version}/orders.json?updated_at_min=…&status=any&limit=250` with the
`X-Shopify-Access-Token` header (an Admin API access token with the `read_orders` scope).
Further pages come from the `Link` header's `rel="next"` URL, followed as given (Shopify
refuses filters beside its `page_info`): that URL is the page token. A next URL on another
host is not followed, so the token never leaves the shop. Each order is the same resource an
`orders/*` webhook carries. Without the `read_all_orders` scope Shopify lists only the last
60 days, which is plenty here. An unsupported (too old) `version` is served by Shopify as its
oldest supported one.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

import httpx

from app.reconcile.base import ListedOrder, ShopApiError, get_json, order_id, parse_time

DEFAULT_API_VERSION = "2026-10"
PAGE_SIZE = 250


class ShopifyOrders:
    source: ClassVar[str] = "shopify"

    def __init__(self, http: httpx.AsyncClient, shop_url: str, access_token: str,
                 api_version: str | None = None) -> None:
        self.http = http
        self.shop_url = shop_url.rstrip("/")
        self.api_version = api_version or DEFAULT_API_VERSION
        self._headers = {"X-Shopify-Access-Token": access_token, "Accept": "application/json"}

    @property
    def orders_url(self) -> str:
        return f"{self.shop_url}/admin/api/{self.api_version}/orders.json"

    async def page(self, since: datetime, token: str | None) -> tuple[list[ListedOrder], str | None]:
        params: dict[str, Any] | None = None
        if token is None:
            url = self.orders_url
            params = {
                "updated_at_min": since.astimezone(UTC).isoformat(timespec="seconds"),
                "status": "any",  # the default, "open", would leave out closed and cancelled orders
                "limit": PAGE_SIZE,
            }
        else:
            url = self._same_shop(token)
        body, response = await get_json(self.http, url, params=params, headers=self._headers)
        orders = body.get("orders") if isinstance(body, dict) else None
        if not isinstance(orders, list):
            raise ShopApiError(f"GET {self.orders_url} did not answer {{\"orders\": [...]}}")
        listed = [ListedOrder(source_id, str(order.get("updated_at") or ""), order)
                  for order in orders if (source_id := order_id(order)) is not None]
        following = response.links.get("next", {}).get("url")
        return listed, self._same_shop(following) if following else None

    def _same_shop(self, url: str) -> str:
        host = httpx.URL(url).host
        if host != httpx.URL(self.shop_url).host:
            raise ShopApiError(f"the next page is on another host ({host}); not followed")
        return url

    def modified_at(self, payload: Any) -> datetime | None:
        if isinstance(payload, dict) and isinstance(payload.get("order"), dict) and "id" not in payload:
            payload = payload["order"]  # a webhook body wrapped the way the adapter accepts
        return parse_time(payload.get("updated_at")) if isinstance(payload, dict) else None
