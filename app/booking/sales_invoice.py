"""Sales invoices in Exact (`salesinvoice/SalesInvoices`): one per order, left unprocessed.

The invoice is created with status open (20) and nothing else happens to it: Koppel never
calls `PrintedSalesInvoices`, so it is neither processed into the ledger nor e-mailed; the
bookkeeper reviews and processes it in Exact.

Header: the journal, the debtor as ordered-by and invoice-to, the order date, the order
number as YourRef and payment reference, "Order <number>" as description, the payment
method as remarks, the type (8020, or 8023 with the integration's warehouse — refused before
any call without one), and the delivery address when the shop ships elsewhere.

Lines: item, quantity, net price (= unit price, no discount percentage), the net amount
(`AmountFC`), VAT code and explicit VAT amount, and the revenue GL of the mapping unless the
integration turns ledger mapping off (then no GL is sent and the item decides). How amounts
are turned into quantity × price exactly: app/booking/item_lines.py.

Exactly once: found again by YourRef within the journal (see app/booking/targets.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from app.booking import item_documents, references
from app.booking.item_documents import Prepared
from app.booking.plan import check_target
from app.exact.client import ExactSession

from app.integrations.settings import IntegrationSettings
from app.orders.canonical import CanonicalOrder

if TYPE_CHECKING:
    from app.booking.targets import BookingContext

PATH = "salesinvoice/SalesInvoices"
SELECT = "InvoiceID,InvoiceNumber,YourRef,Journal,Type,Status,AmountFC,VATAmountFC"
DIRECT = 8023


def payload(order: CanonicalOrder, settings: IntegrationSettings, debtor_id: str,
            prepared: Prepared) -> dict[str, Any]:
    lines = []
    for line in prepared.lines:
        body: dict[str, Any] = {
            "Item": prepared.item_id(line),
            "Description": line.description,
            "Quantity": line.quantity,
            "UnitPrice": line.net_price,
            "NetPrice": line.net_price,
            "AmountFC": line.amount,
            "VATCode": line.vat_code,
            "VATAmountFC": line.vat,
        }
        if prepared.gl_ids is not None:
            body["GLAccount"] = prepared.gl_ids[line.gl_code]
        lines.append(body)
    invoice: dict[str, Any] = {
        "Journal": settings.journal_code,
        "Type": settings.invoice_type,
        "OrderedBy": debtor_id,
        "InvoiceTo": debtor_id,
        "OrderDate": order.order_date.date().isoformat(),
        "YourRef": references.your_ref(order),
        "PaymentReference": order.order_number[:32],
        "Description": references.description(order),
        "Currency": order.currency,
        "SalesInvoiceLines": lines,
    }
    if order.payment_method:
        invoice["Remarks"] = order.payment_method
    if settings.payment_condition:
        invoice["PaymentCondition"] = settings.payment_condition
    if settings.invoice_type == DIRECT:
        invoice["Warehouse"] = prepared.warehouse_id
    if prepared.delivery_address_id:
        invoice["DeliverToAddress"] = prepared.delivery_address_id
    return invoice


async def find(exact: ExactSession, settings: IntegrationSettings, order: CanonicalOrder) -> dict[str, Any] | None:
    return await references.find_by_your_ref(exact, PATH, SELECT, order, journal=settings.journal_code)


async def create(ctx: BookingContext) -> dict[str, Any]:
    check_target(ctx.settings)
    prepared = await item_documents.prepare(ctx, with_gl=ctx.settings.ledger_mapping,
                                            with_warehouse=ctx.settings.invoice_type == DIRECT)
    body = payload(ctx.order, ctx.settings, ctx.debtor_id, prepared)
    return await item_documents.send(ctx, PATH, body, prepared)


def identify(document: dict[str, Any]) -> tuple[str, str]:
    return str(document.get("InvoiceID")), str(document.get("InvoiceNumber") or "")
