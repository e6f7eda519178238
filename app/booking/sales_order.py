"""Sales orders in Exact (`salesorder/SalesOrders`): one per order, for delivery and invoicing in Exact.

Header: the debtor as ordered-by, the order date, the order number as YourRef, "Order
<number>" as description, the payment method as remarks, the integration's warehouse
(`WarehouseID`) when it has one — otherwise Exact uses the main warehouse — and the delivery
address when the shop ships somewhere else than the billing address.

Lines: item, quantity, net price (= unit price), VAT code and explicit VAT amount
(`VATAmount`). Sales order lines take no amount and no GL account: Exact computes the amount
as quantity × net price, which is why item_lines.py makes that product exact to the cent, and
the revenue account comes from the item when the order is invoiced in Exact.

Exactly once: found again by YourRef (see app/booking/targets.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from app.booking import item_documents, references
from app.booking.item_documents import Prepared
from app.exact.client import ExactSession

from app.integrations.settings import IntegrationSettings
from app.orders.canonical import CanonicalOrder

if TYPE_CHECKING:
    from app.booking.targets import BookingContext

PATH = "salesorder/SalesOrders"
SELECT = "OrderID,OrderNumber,YourRef,Status,AmountFC,AmountFCExclVat"


def payload(order: CanonicalOrder, settings: IntegrationSettings, debtor_id: str,
            prepared: Prepared) -> dict[str, Any]:
    lines = [{
        "Item": prepared.item_id(line),
        "Description": line.description,
        "Quantity": line.quantity,
        "UnitPrice": line.net_price,
        "NetPrice": line.net_price,
        "VATCode": line.vat_code,
        "VATAmount": line.vat,
    } for line in prepared.lines]
    sales_order: dict[str, Any] = {
        "OrderedBy": debtor_id,
        "OrderDate": order.order_date.date().isoformat(),
        "YourRef": references.your_ref(order),
        "Description": references.description(order),
        "Currency": order.currency,
        "SalesOrderLines": lines,
    }
    if order.payment_method:
        sales_order["Remarks"] = order.payment_method
    if settings.payment_condition:
        sales_order["PaymentCondition"] = settings.payment_condition
    if prepared.warehouse_id:
        sales_order["WarehouseID"] = prepared.warehouse_id
    if prepared.delivery_address_id:
        sales_order["DeliveryAddress"] = prepared.delivery_address_id
    return sales_order


async def find(exact: ExactSession, settings: IntegrationSettings, order: CanonicalOrder) -> dict[str, Any] | None:
    return await references.find_by_your_ref(exact, PATH, SELECT, order)


async def create(ctx: BookingContext) -> dict[str, Any]:
    prepared = await item_documents.prepare(ctx, with_gl=False, with_warehouse=bool(ctx.settings.warehouse))
    body = payload(ctx.order, ctx.settings, ctx.debtor_id, prepared)
    return await item_documents.send(ctx, PATH, body, prepared)


def identify(document: dict[str, Any]) -> tuple[str, str]:
    return str(document.get("OrderID")), str(document.get("OrderNumber") or "")
