"""How Koppel finds its own documents again in Exact: the order number as YourRef.

Exact has no idempotency key, so every document Koppel creates carries the order number in
YourRef (and its description), and an interrupted create is looked up by it before any
re-send. One place for that rule, shared by every booking target.
"""

from __future__ import annotations

from typing import Any

from app.exact.client import ExactSession
from app.exact.odata import odata_string
from app.orders.canonical import CanonicalOrder


def your_ref(order: CanonicalOrder) -> str:
    return order.order_number[:30]


def description(order: CanonicalOrder) -> str:
    return f"Order {order.order_number}"[:60]


async def find_by_your_ref(exact: ExactSession, path: str, select: str, order: CanonicalOrder, *,
                           journal: str | None = None) -> dict[str, Any] | None:
    """The document of `path` with this order's YourRef (in `journal`, for journal documents)."""
    condition = f"YourRef eq {odata_string(your_ref(order))}"
    if journal is not None:
        condition += f" and Journal eq {odata_string(journal)}"
    found = await exact.get(path, {"$filter": condition, "$select": select})
    return found[0] if found else None
