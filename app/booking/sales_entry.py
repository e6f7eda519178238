"""Sales entries in Exact: the payload, and finding one again by YourRef.

Exact has no idempotency key, so the order number goes into YourRef (and the description
and payment reference) and an interrupted create is looked up by it before being re-sent.
"""

from __future__ import annotations

from typing import Any

from app.booking import references
from app.booking.plan import BookingConfigError, EntryPlan
from app.connections.models import ReferenceItem
from app.exact.client import ExactSession
from app.integrations.settings import IntegrationSettings
from app.orders.canonical import CanonicalOrder

PATH = "salesentry/SalesEntries"
SELECT = "EntryID,EntryNumber,YourRef,AmountDC,AmountFC,Journal"


def payload(order: CanonicalOrder, settings: IntegrationSettings, plan: EntryPlan, customer_id: str,
            gl_accounts: dict[str, ReferenceItem]) -> dict[str, Any]:
    lines = []
    for line in plan.lines:
        gl = gl_accounts.get(line.gl_code)
        if gl is None or not gl.exact_id:
            raise BookingConfigError("gl_account_unknown",
                                     f"GL account {line.gl_code} does not exist in the division "
                                     "(fix the mapping or refresh reference data)")
        lines.append({
            "GLAccount": gl.exact_id,
            "Description": line.description,
            "AmountFC": line.net,
            "VATCode": line.vat_code,
            "VATAmountFC": line.vat,
            "Quantity": line.quantity,
        })
    entry: dict[str, Any] = {
        "Journal": settings.journal_code,
        "Customer": customer_id,
        "EntryDate": order.order_date.date().isoformat(),
        "Description": references.description(order),
        "YourRef": references.your_ref(order),
        "PaymentReference": order.order_number[:32],
        "Currency": order.currency,
        "SalesEntryLines": lines,
    }
    if settings.payment_condition:
        entry["PaymentCondition"] = settings.payment_condition
    return entry


async def find(exact: ExactSession, settings: IntegrationSettings, order: CanonicalOrder) -> dict[str, Any] | None:
    return await references.find_by_your_ref(exact, PATH, SELECT, order, journal=settings.journal_code)


async def create(exact: ExactSession, body: dict[str, Any]) -> dict[str, Any]:
    return await exact.post(PATH, body)
