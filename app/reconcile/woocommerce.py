"""WooCommerce REST API v3: the orders changed since a moment.

`GET {site}/wp-json/wc/v3/orders?modified_after=…&dates_are_gmt=true&per_page=100&page=N`
(WooCommerce 5.8 or later) with HTTP Basic auth: a REST API key's consumer key and secret
with Read permission, over HTTPS (WooCommerce refuses Basic auth over plain HTTP).
`dates_are_gmt` makes `modified_after` a UTC time rather than the site's local time. The page
number is the page token. Orders come by id, ascending: while we page, the set of orders
changed since a fixed moment only grows, so an order can be seen twice but never skipped,
also when a later run goes on where an earlier one stopped. Paging stops at
`X-WP-TotalPages`, or at a short or empty page when that header is absent.
Each order is the same JSON an `order.*` webhook carries.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

import httpx

from app.reconcile.base import ListedOrder, ShopApiError, get_json, order_id, parse_time

PAGE_SIZE = 100


class WooCommerceOrders:
    source: ClassVar[str] = "woocommerce"

    def __init__(self, http: httpx.AsyncClient, shop_url: str, consumer_key: str, consumer_secret: str) -> None:
        self.http = http
        self.shop_url = shop_url.rstrip("/")
        self._auth = (consumer_key, consumer_secret)

    async def page(self, since: datetime, token: str | None) -> tuple[list[ListedOrder], str | None]:
        url = f"{self.shop_url}/wp-json/wc/v3/orders"
        number = int(token) if token else 1
        params = {"modified_after": since.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="seconds"),
                  "dates_are_gmt": "true", "per_page": PAGE_SIZE, "page": number, "orderby": "id", "order": "asc"}
        orders, response = await get_json(self.http, url, params=params, auth=self._auth,
                                          headers={"Accept": "application/json"})
        if not isinstance(orders, list):
            raise ShopApiError(f"GET {url} did not answer a list of orders")
        listed = [ListedOrder(source_id, str(order.get("date_modified_gmt") or order.get("date_modified") or ""),
                              order)
                  for order in orders if (source_id := order_id(order)) is not None]
        total = response.headers.get("x-wp-totalpages", "")
        done = not orders or (number >= int(total) if total.isdigit() else len(orders) < PAGE_SIZE)
        return listed, None if done else str(number + 1)

    def modified_at(self, payload: Any) -> datetime | None:
        if not isinstance(payload, dict):
            return None
        # date_modified_gmt is UTC without a zone; date_modified is the site's local time.
        return parse_time(payload.get("date_modified_gmt")) or parse_time(payload.get("date_modified"))
