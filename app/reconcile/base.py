"""What every shop API client gives reconciliation: the orders changed since a moment, by page."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar, Protocol

import httpx

# Pages one listing may have: a guard against a shop that keeps answering "next".
MAX_PAGES = 1000


class ShopApiError(Exception):
    """The shop's API could not be read (refused, unreachable, or an answer we cannot use).

    The message names the request and the status, never a credential."""


@dataclass(frozen=True)
class ListedOrder:
    """One order as the shop's API listed it."""

    source_order_id: str
    # The shop's own modification time, as the shop wrote it (part of the delivery id).
    modified: str
    payload: dict[str, Any]


class ShopOrders(Protocol):
    source: ClassVar[str]

    async def page(self, since: datetime, token: str | None) -> tuple[list[ListedOrder], str | None]:
        """One page of the orders changed at or after `since`: the first for `token` None, else
        the page `token` names. Returns the orders and the next page's token (None: done).
        A token stays valid for the same `since`, so a listing can go on in a later run."""
        ...

    def modified_at(self, payload: Any) -> datetime | None:
        """The modification time in a stored order body (webhook or API), if it has one."""
        ...


def parse_time(value: Any) -> datetime | None:
    """An ISO 8601 time as an aware datetime; a time without a zone is taken as UTC."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed


def order_id(order: Any) -> str | None:
    value = order.get("id") if isinstance(order, dict) else None
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        return None
    return str(value).strip() or None


async def get_json(http: httpx.AsyncClient, url: str, *, params: Mapping[str, Any] | None = None,
                   headers: Mapping[str, str] | None = None,
                   auth: tuple[str, str] | None = None) -> tuple[Any, httpx.Response]:
    """GET `url` and decode its JSON; every failure is a ShopApiError without credentials."""
    where = str(httpx.URL(url).copy_with(query=None))
    try:
        response = await http.get(url, params=params, headers=headers, auth=auth)
    except httpx.HTTPError as exc:
        raise ShopApiError(f"GET {where} failed: {type(exc).__name__}") from exc
    if response.status_code != 200:
        hint = {401: " (credentials refused)", 403: " (credentials lack the right to read orders)",
                404: " (wrong shop address or API path)", 429: " (rate limited; the next run retries)"}
        raise ShopApiError(f"GET {where} answered {response.status_code}{hint.get(response.status_code, '')}")
    try:
        return response.json(), response
    except ValueError as exc:
        raise ShopApiError(f"GET {where} did not answer JSON") from exc
