"""Booking targets: the Exact document an order becomes (sales entry, invoice, order).

A target knows how to find its document again by YourRef and how to create it. It calls
`ctx.mark_sent()` right before the create request, which commits `create_sent_at`, so an
attempt whose outcome is unknown is always followed by a look-up, never by a blind re-send.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.booking import sales_entry, sales_invoice, sales_order
from app.booking.plan import BookingConfigError, EntryPlan
from app.connections.models import ReferenceItem
from app.exact.client import ExactSession
from app.integrations.settings import IntegrationSettings
from app.orders.canonical import CanonicalOrder


@dataclass
class BookingContext:
    exact: ExactSession
    sessionmaker: async_sessionmaker[AsyncSession]
    connection_id: int
    division: int
    order: CanonicalOrder
    settings: IntegrationSettings
    plan: EntryPlan
    debtor_id: str
    gl_accounts: Callable[[], Awaitable[dict[str, ReferenceItem]]]
    mark_sent: Callable[[], Awaitable[None]]
    extra: dict[str, Any] = field(default_factory=dict)


class Target(Protocol):
    document_type: str

    async def find(self, exact: ExactSession, settings: IntegrationSettings,
                   order: CanonicalOrder) -> dict[str, Any] | None: ...

    async def create(self, ctx: BookingContext) -> dict[str, Any]: ...

    def identify(self, document: dict[str, Any]) -> tuple[str, str]:
        """(Exact id, human number) of a created or found document."""
        ...


class SalesEntryTarget:
    document_type = "sales_entry"

    async def find(self, exact: ExactSession, settings: IntegrationSettings,
                   order: CanonicalOrder) -> dict[str, Any] | None:
        return await sales_entry.find(exact, settings, order)

    async def create(self, ctx: BookingContext) -> dict[str, Any]:
        body = sales_entry.payload(ctx.order, ctx.settings, ctx.plan, ctx.debtor_id, await ctx.gl_accounts())
        await ctx.mark_sent()
        return await sales_entry.create(ctx.exact, body)

    def identify(self, document: dict[str, Any]) -> tuple[str, str]:
        return str(document.get("EntryID")), str(document.get("EntryNumber") or "")


class SalesInvoiceTarget:
    """`salesinvoice/SalesInvoices`, type 8020 or 8023, left open (never printed or sent)."""

    document_type = "sales_invoice"

    async def find(self, exact: ExactSession, settings: IntegrationSettings,
                   order: CanonicalOrder) -> dict[str, Any] | None:
        return await sales_invoice.find(exact, settings, order)

    async def create(self, ctx: BookingContext) -> dict[str, Any]:
        return await sales_invoice.create(ctx)

    def identify(self, document: dict[str, Any]) -> tuple[str, str]:
        return sales_invoice.identify(document)


class SalesOrderTarget:
    """`salesorder/SalesOrders`, with the integration's warehouse and the delivery address."""

    document_type = "sales_order"

    async def find(self, exact: ExactSession, settings: IntegrationSettings,
                   order: CanonicalOrder) -> dict[str, Any] | None:
        return await sales_order.find(exact, settings, order)

    async def create(self, ctx: BookingContext) -> dict[str, Any]:
        return await sales_order.create(ctx)

    def identify(self, document: dict[str, Any]) -> tuple[str, str]:
        return sales_order.identify(document)


# `IntegrationSettings.target_document` → target. A bench or test books each kind of
# document by setting only `target_document` (8023 invoices also need `warehouse`).
TARGETS: dict[str, Target] = {
    "sales_entry": SalesEntryTarget(),
    "sales_invoice": SalesInvoiceTarget(),
    "sales_order": SalesOrderTarget(),
}


def target_for(settings: IntegrationSettings) -> Target:
    target = TARGETS.get(settings.target_document)
    if target is None:
        raise BookingConfigError("target_not_supported", f"booking as {settings.target_document} is not available")
    return target
