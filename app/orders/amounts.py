"""Money arithmetic for orders, shared by the pre-checks and the booking into Exact.

Every amount that leaves this module is a `Decimal` with exactly two decimals, rounded
half up (0.005 → 0.01, −0.005 → −0.01: away from zero, so a negative part rounds like its
positive twin). Floats never appear: the canonical order already holds `Decimal`s.

Two conventions exist, chosen per order by `prices_include_vat`:

* incl. VAT: every amount the shop shows already contains VAT; the VAT inside an amount is
  ``amount × rate / (100 + rate)`` and the net is what remains;
* excl. VAT: every amount is net; VAT is ``amount × rate / 100`` on top.

VAT is rounded per part (per line, per charge, per discount), because that is what Exact
does with a booked line and what most shops print.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum

from app.orders.canonical import CanonicalOrder, Line

CENT = Decimal("0.01")
ZERO = Decimal("0.00")
HUNDRED = Decimal(100)


def money(amount: Decimal | int) -> Decimal:
    """`amount` rounded to whole cents, half up."""
    return Decimal(amount).quantize(CENT, rounding=ROUND_HALF_UP)


def to_cents(amount: Decimal) -> int:
    """`amount` as a whole number of cents (rounded half up first)."""
    return int(money(amount) * 100)


def from_cents(cents: int) -> Decimal:
    return money(Decimal(cents) / 100)


def line_amount(line: Line) -> Decimal:
    """Quantity × unit price in cents, half up (as shops print a line total).

    `Line.amount` in the canonical model rounds with the decimal context's default
    (half even); the money code uses this helper so that every rounding here is half up.
    """
    return money(line.quantity * line.unit_price)


def _exact_vat(amount: Decimal, rate: Decimal, prices_include_vat: bool) -> Decimal:
    """The unrounded VAT in (incl.) or on (excl.) `amount`."""
    if prices_include_vat:
        return amount * rate / (HUNDRED + rate)
    return amount * rate / HUNDRED


def split(amount: Decimal, rate: Decimal, prices_include_vat: bool) -> tuple[Decimal, Decimal]:
    """Split one shop amount into (net, vat), both in cents.

    incl. VAT: vat = round(amount × rate / (100 + rate)), net = amount − vat, so that
    net + vat is the shop's amount to the cent.
    excl. VAT: net = amount, vat = round(amount × rate / 100).
    """
    amount = money(amount)
    vat = money(_exact_vat(amount, rate, prices_include_vat))
    if prices_include_vat:
        return amount - vat, vat
    return amount, vat


@dataclass(frozen=True)
class Breakdown:
    """The amounts of an order as the shop shows them, and what its total should be.

    `lines`, `shipping`, `payment_costs` and `discounts` are in the shop's convention
    (incl. or excl. VAT); `discounts` is positive and subtracted. `vat` is computed from
    the rates, rounded per part; `vat_given` is the shop's own `total_vat`, if it sent one.
    """

    prices_include_vat: bool
    lines: Decimal
    shipping: Decimal
    payment_costs: Decimal
    discounts: Decimal
    vat: Decimal
    vat_given: Decimal | None
    total: Decimal
    expected_total: Decimal
    difference: Decimal  # total − expected_total

    @property
    def subtotal(self) -> Decimal:
        """lines + shipping + payment costs − discounts, in the shop's convention."""
        return self.lines + self.shipping + self.payment_costs - self.discounts

    @property
    def vat_used(self) -> Decimal | None:
        """The VAT term added to the subtotal (excl. shops only): the shop's if given."""
        if self.prices_include_vat:
            return None
        return self.vat_given if self.vat_given is not None else self.vat

    @property
    def difference_cents(self) -> int:
        return to_cents(self.difference)


def breakdown(order: CanonicalOrder) -> Breakdown:
    incl = order.prices_include_vat
    lines = sum((line_amount(line) for line in order.lines), ZERO)
    shipping = sum((money(charge.amount) for charge in order.shipping), ZERO)
    payment_costs = sum((money(charge.amount) for charge in order.payment_costs), ZERO)
    discounts = sum((money(discount.amount) for discount in order.discounts), ZERO)

    vat = ZERO
    for line in order.lines:
        vat += split(line_amount(line), line.vat_rate, incl)[1]
    for charge in (*order.shipping, *order.payment_costs):
        vat += split(charge.amount, charge.vat_rate, incl)[1]
    for discount in order.discounts:
        vat -= split(discount.amount, discount.vat_rate, incl)[1]

    vat_given = money(order.total_vat) if order.total_vat is not None else None
    expected = lines + shipping + payment_costs - discounts
    if not incl:
        expected += vat_given if vat_given is not None else vat
    total = money(order.total)
    return Breakdown(
        prices_include_vat=incl,
        lines=lines,
        shipping=shipping,
        payment_costs=payment_costs,
        discounts=discounts,
        vat=vat,
        vat_given=vat_given,
        total=total,
        expected_total=expected,
        difference=total - expected,
    )


class PartKind(StrEnum):
    LINE = "line"
    SHIPPING = "shipping"
    PAYMENT_COSTS = "payment_costs"
    DISCOUNT = "discount"


@dataclass(frozen=True)
class Part:
    """One bookable part of an order, signed (discounts are negative), in cents.

    net + vat == gross always holds. `quantity` and `sku` are there for documents that
    book items (invoices, orders); `net` and `gross` are totals for the whole part.
    """

    kind: PartKind
    description: str
    rate: Decimal
    net: Decimal
    vat: Decimal
    gross: Decimal
    sku: str | None = None
    quantity: Decimal = Decimal(1)


def booking_parts(order: CanonicalOrder) -> list[Part]:
    """Every line, shipping charge, payment cost and discount of `order`, split into net + VAT.

    incl. VAT shops: each part's gross is the shop's amount, so Σ gross is exactly the
    shop's lines + shipping + payment costs − discounts.

    excl. VAT shops: each part's net is the shop's amount and its VAT is rounded per part.

    In both conventions, when the shop sent `total_vat` and it differs from Σ per-part VAT
    by a few cents (at most one cent per part that carries VAT), the difference is spread
    one cent at a time over the parts whose rounding moved them furthest the other way
    (largest remainder; ties go to the largest part). Why: Exact books the VAT we send per
    line (`VATAmountFC`), and the VAT in Exact must be the VAT on the shop's invoice —
    otherwise the booked total drifts from the shop's total by a cent (Exact GH#662:
    €5,900.00 booked as €5,900.01). For incl. shops the cent moves between net and VAT and
    the gross stays the shop's; for excl. shops the net stays the shop's and the gross
    moves with the VAT. A larger gap is left alone: spreading it would put visibly wrong
    VAT on a line, so the booking books what is left on the rounding account instead.
    Parts at 0 % and free parts (amount 0.00) never take a cent and no part takes more
    than one, so a gap is closed only when it is at most the number of the remaining parts.
    """
    incl = order.prices_include_vat
    parts: list[Part] = []
    exact: list[Decimal] = []

    def add(
        kind: PartKind,
        description: str,
        rate: Decimal,
        amount: Decimal,
        sku: str | None = None,
        quantity: Decimal = Decimal(1),
    ) -> None:
        amount = money(amount)
        net, vat = split(amount, rate, incl)
        parts.append(Part(kind, description, rate, net, vat, net + vat, sku, quantity))
        exact.append(_exact_vat(amount, rate, incl))

    for line in order.lines:
        add(PartKind.LINE, line.name, line.vat_rate, line_amount(line), sku=line.sku, quantity=line.quantity)
    for charge in order.shipping:
        add(PartKind.SHIPPING, charge.description or "Shipping", charge.vat_rate, charge.amount)
    for charge in order.payment_costs:
        add(PartKind.PAYMENT_COSTS, charge.description or "Payment costs", charge.vat_rate, charge.amount)
    for discount in order.discounts:
        description = discount.description or (f"Discount {discount.code}" if discount.code else "Discount")
        add(PartKind.DISCOUNT, description, discount.vat_rate, -money(discount.amount))

    if order.total_vat is not None:
        parts = _match_vat(parts, exact, money(order.total_vat), incl)
    return parts


def _match_vat(parts: list[Part], exact: Sequence[Decimal], target: Decimal, incl: bool) -> list[Part]:
    """Move single cents of VAT so that Σ vat == target, if the gap is small enough."""
    gap = to_cents(target - sum((part.vat for part in parts), ZERO))
    # A 0 % part, or a free one, never carries VAT, not even a rounding cent.
    eligible = [i for i, part in enumerate(parts) if part.rate != 0 and part.gross != 0]
    if gap == 0 or abs(gap) > len(eligible):
        return parts

    step = CENT if gap > 0 else -CENT

    def priority(i: int) -> tuple[Decimal, Decimal, int]:
        remainder = exact[i] - parts[i].vat  # > 0: rounded down, < 0: rounded up
        pull = remainder if gap > 0 else -remainder
        return (-pull, -abs(parts[i].net), i)

    adjusted = list(parts)
    for i in sorted(eligible, key=priority)[: abs(gap)]:
        part = adjusted[i]
        vat = part.vat + step
        if incl:
            adjusted[i] = replace(part, vat=vat, net=part.gross - vat)
        else:
            adjusted[i] = replace(part, vat=vat, gross=part.net + vat)
    return adjusted
