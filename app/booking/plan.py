"""What to book for an order, worked out before any call to Exact (pure, testable).

Lines are net amounts with an explicit VAT amount each (`VATAmountFC`), so that the VAT in
Exact is the shop's VAT and the booked total is the shop's total to the cent. A difference
that the totals check accepted (within its tolerance) is booked as its own line on the
rounding account — never folded silently into another line.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from app.integrations.settings import IntegrationSettings
from app.orders.amounts import PartKind, booking_parts, money
from app.orders.canonical import CanonicalOrder
from app.orders.checks import OrderKind, classify, vat_destination


class BookingConfigError(Exception):
    """The integration's mapping or the division's reference data cannot book this order.

    Not retried: an operator fixes the mapping (or refreshes reference data) and reprocesses.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class PlannedLine:
    description: str
    gl_code: str
    vat_code: str
    net: Decimal
    vat: Decimal
    quantity: Decimal
    sku: str | None
    kind: str  # a PartKind value, or "rounding"


@dataclass(frozen=True)
class EntryPlan:
    kind: OrderKind
    lines: list[PlannedLine]
    total: Decimal  # what the lines add up to, VAT included: the shop's total

    @property
    def vat_total(self) -> Decimal:
        return sum((line.vat for line in self.lines), Decimal("0"))


def _gl_for(kind: PartKind, rule_gl: str | None, settings: IntegrationSettings) -> str:
    specific = {
        PartKind.SHIPPING: settings.shipping_gl,
        PartKind.PAYMENT_COSTS: settings.payment_costs_gl,
        PartKind.DISCOUNT: settings.discount_gl,
    }.get(kind)
    return specific or rule_gl or settings.revenue_gl


def check_target(settings: IntegrationSettings) -> None:
    """Refuse a target set-up that Exact would refuse, before any call to Exact is made."""
    if settings.target_document == "sales_invoice" and settings.invoice_type == 8023 and not settings.warehouse:
        raise BookingConfigError(
            "warehouse_required",
            "a direct sales invoice (type 8023) takes the goods out of a warehouse, but the integration "
            "has no warehouse: set its warehouse (an Exact warehouse code) or book as type 8020; not booked")


def plan_entry(order: CanonicalOrder, settings: IntegrationSettings) -> EntryPlan:
    check_target(settings)
    kind = classify(order, settings)
    destination = vat_destination(order, settings)
    lines: list[PlannedLine] = []
    for part in booking_parts(order):
        rule = settings.vat_rule(destination, part.rate)
        if rule is None:
            raise BookingConfigError(
                "vat_code_not_mapped", f"no VAT code mapped for {destination} {part.rate.normalize()} %")
        lines.append(PlannedLine(
            description=(part.description or part.kind.value)[:100],
            gl_code=_gl_for(part.kind, rule.revenue_gl, settings),
            vat_code=rule.vat_code, net=part.net, vat=part.vat, quantity=part.quantity,
            sku=part.sku, kind=part.kind.value,
        ))
    booked = sum((line.net + line.vat for line in lines), Decimal("0"))
    difference = money(order.total - booked)
    if difference:
        tolerance = Decimal(settings.totals_tolerance_cents) / 100
        if abs(difference) > tolerance:
            raise BookingConfigError(
                "booked_total_mismatch",
                f"the lines add up to {booked} incl. VAT but the shop total is {order.total} "
                f"(difference {difference}, tolerance {tolerance}); not booked")
        lines.append(PlannedLine(
            description="Afrondingsverschil", gl_code=settings.rounding_gl, vat_code=settings.rounding_vat_code,
            net=difference, vat=Decimal("0.00"), quantity=Decimal(1), sku=None, kind="rounding",
        ))
    return EntryPlan(kind=kind, lines=lines, total=order.total)
