"""The lines of an item-based document (sales invoice, sales order), from the booking plan.

Money rules — the booked document must be the shop's order to the cent:

* Each planned part (product line, shipping charge, payment costs, discount, a rounding
  difference) becomes one document line, or two (below), on its item. The line carries the
  part's net amount and its VAT amount explicitly (`VATAmountFC` on invoices, `VATAmount` on
  orders), as sales entries do, so Exact's VAT is the shop's VAT.
* A line's net must be reproduced by Quantity × NetPrice: Exact computes the line amount
  from them (on sales orders the amount cannot even be sent). When the part's net divided by
  its quantity is a whole number of cents, that is the net price. When it is not (3 mugs for
  €20.00 net: €6.6667 each), the part is split into two lines with cent prices that add up
  exactly: 1 × €6.66 and 2 × €6.67. Why not a price with more decimals: Exact rounds unit
  prices to the division's price decimals (often 2), and then 3 × €6.67 = €20.01 — a cent
  off the shop's total; why not quantity 1 with the line total: the order would then say
  one mug where three must be delivered. The split keeps the total quantity, every price is
  a cent amount and every line amount is exact. The part's VAT is divided over the two
  lines in proportion to their amounts (rounded half up, the rest on the second line), so
  the VAT still adds up to the part's.
* A fractional quantity (1.5 kg) cannot be split that way. Then the price gets as many
  decimals as needed (up to 6) for Quantity × NetPrice to round to the net; if none does,
  the line is booked as quantity 1 at the line's net with the quantity in its description.
  Invoice lines also send the net as `AmountFC`, so an invoice is exact even if Exact were to
  round the price.
* The plan's rounding line (a difference the totals check accepted) becomes a line of its
  own on the rounding item — never hidden in another line — so the document's total is the
  shop's total.
* Discounts are negative lines (quantity 1, negative net price) on the discount item.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from app.booking.items import DUMMY_DESCRIPTIONS, ItemNeed, dummy_code, is_fractional, product_code
from app.booking.plan import EntryPlan, PlannedLine
from app.integrations.settings import IntegrationSettings
from app.orders.amounts import CENT, ZERO, from_cents, money, to_cents

MAX_PRICE_PLACES = 6


@dataclass(frozen=True)
class ItemLine:
    item_code: str
    item_description: str  # for creating the item if it is unknown
    description: str  # the document line's own text
    quantity: Decimal
    net_price: Decimal
    amount: Decimal  # net, exactly what Quantity × NetPrice gives in cents
    vat_code: str
    vat: Decimal
    gl_code: str
    kind: str

    def need(self) -> ItemNeed:
        return ItemNeed(self.item_code, self.item_description, self.vat_code, is_fractional(self.quantity))


def price_lines(net: Decimal, quantity: Decimal) -> list[tuple[Decimal, Decimal]]:
    """(quantity, net price) pairs whose Quantity × NetPrice add up to `net` exactly, in cents."""
    net = money(net)
    if quantity == 0:
        return [(Decimal(0), ZERO)] if net == 0 else [(Decimal(1), net)]
    unit = net / quantity
    if unit == unit.quantize(CENT):
        return [(quantity, unit.quantize(CENT))]
    if not is_fractional(quantity):
        count = int(quantity)
        sign = 1 if count > 0 else -1
        units, cents = abs(count), to_cents(net) * sign
        base, extra = divmod(cents, units)  # `extra` units get one cent more than the others
        pairs = [(Decimal(sign * (units - extra)), from_cents(base))]
        if extra:
            pairs.append((Decimal(sign * extra), from_cents(base + 1)))
        return pairs
    for places in range(3, MAX_PRICE_PLACES + 1):
        price = unit.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
        if money(quantity * price) == net:
            return [(quantity, price)]
    return [(Decimal(1), net)]


def _split_vat(vat: Decimal, amounts: list[Decimal]) -> list[Decimal]:
    total = sum(amounts, ZERO)
    if len(amounts) == 1 or total == 0:
        return [vat] + [ZERO] * (len(amounts) - 1)
    first = money(vat * amounts[0] / total)
    return [first, vat - first]


def _item(line: PlannedLine, settings: IntegrationSettings) -> tuple[str, str]:
    if line.kind == "line":
        return product_code(line.sku, line.description), line.description
    return dummy_code(line.kind, settings), DUMMY_DESCRIPTIONS[line.kind]


def item_lines(plan: EntryPlan, settings: IntegrationSettings) -> list[ItemLine]:
    result: list[ItemLine] = []
    for line in plan.lines:
        code, item_description = _item(line, settings)
        pairs = price_lines(line.net, line.quantity)
        description = line.description
        if len(pairs) == 1 and pairs[0][0] != line.quantity:
            description = f"{line.quantity.normalize():f} × {line.description}"[:100]
        amounts = [money(quantity * price) for quantity, price in pairs]
        for (quantity, price), amount, vat in zip(pairs, amounts, _split_vat(line.vat, amounts), strict=True):
            result.append(ItemLine(
                item_code=code, item_description=item_description, description=description,
                quantity=quantity, net_price=price, amount=amount, vat_code=line.vat_code, vat=vat,
                gl_code=line.gl_code, kind=line.kind))
    return result
