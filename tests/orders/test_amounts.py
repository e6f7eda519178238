"""Money arithmetic: splits, the breakdown of an order, and the parts booked into Exact."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from app.orders.amounts import (
    Part,
    PartKind,
    booking_parts,
    breakdown,
    line_amount,
    money,
    split,
    to_cents,
)
from app.orders.canonical import CanonicalOrder

D = Decimal


def make_order(*, incl: bool, lines: list[tuple[Any, Any, Any]], total: Any, total_vat: Any = None,
               shipping: list[tuple[Any, Any]] = (), payment_costs: list[tuple[Any, Any]] = (),
               discounts: list[tuple[Any, Any]] = ()) -> CanonicalOrder:
    """lines as (quantity, unit price, rate); charges and discounts as (amount, rate)."""
    return CanonicalOrder.model_validate({
        "source_order_id": "5001",
        "order_number": "1001",
        "order_date": "2026-11-20T10:15:00+01:00",
        "prices_include_vat": incl,
        "lines": [
            {"name": f"Item {i}", "sku": f"SKU-{i}", "quantity": q, "unit_price": p, "vat_rate": r}
            for i, (q, p, r) in enumerate(lines, 1)
        ],
        "shipping": [{"amount": a, "vat_rate": r} for a, r in shipping],
        "payment_costs": [{"amount": a, "vat_rate": r} for a, r in payment_costs],
        "discounts": [{"amount": a, "vat_rate": r, "code": "WELCOME"} for a, r in discounts],
        "total": total,
        "total_vat": total_vat,
        "status": "paid",
        "shipping_address": {"country": "NL"},
    })


def sum_of(parts: list[Part], field: str) -> Decimal:
    return sum((getattr(part, field) for part in parts), D("0"))


# --- money and split --------------------------------------------------------------------


def test_money_rounds_half_up_away_from_zero() -> None:
    assert money(D("2.345")) == D("2.35")
    assert money(D("2.3449999")) == D("2.34")
    assert money(D("0.005")) == D("0.01")
    assert money(D("-0.005")) == D("-0.01")
    assert money(7) == D("7.00")
    assert str(money(D("1.1"))) == "1.10"
    assert to_cents(D("-7.325")) == -733


def test_split_including_vat() -> None:
    assert split(D("121.00"), D("21"), True) == (D("100.00"), D("21.00"))
    # 6.05 × 21 / 121 = 1.05 exactly
    assert split(D("6.05"), D("21"), True) == (D("5.00"), D("1.05"))
    # 10.00 × 9 / 109 = 0.8256… → 0.83, net takes the rest so that net + vat = 10.00
    assert split(D("10.00"), D("9"), True) == (D("9.17"), D("0.83"))
    assert split(D("10.55"), D("5.5"), True) == (D("10.00"), D("0.55"))


def test_split_excluding_vat() -> None:
    assert split(D("100.00"), D("21"), False) == (D("100.00"), D("21.00"))
    # 106.05 × 0.21 = 22.2705 → 22.27
    assert split(D("106.05"), D("21"), False) == (D("106.05"), D("22.27"))
    # 0.50 × 0.09 = 0.045 → 0.05 (half up, not half even)
    assert split(D("0.50"), D("9"), False) == (D("0.50"), D("0.05"))


def test_split_zero_rate_and_negative_amounts() -> None:
    assert split(D("50.00"), D("0"), True) == (D("50.00"), D("0.00"))
    assert split(D("-6.05"), D("21"), True) == (D("-5.00"), D("-1.05"))
    # a negative amount rounds like its positive twin
    assert split(D("-0.50"), D("9"), False) == (D("-0.50"), D("-0.05"))


def test_split_quantizes_an_unrounded_amount_first() -> None:
    net, vat = split(D("12.104999"), D("21"), True)
    assert net + vat == D("12.10")
    assert vat == D("2.10")


# --- breakdown ----------------------------------------------------------------------------


def test_breakdown_including_vat_with_every_kind_of_part() -> None:
    order = make_order(
        incl=True,
        lines=[(2, "24.95", 21), (1, "10.00", 9)],
        shipping=[("6.95", 21)],
        payment_costs=[("0.35", 21)],
        discounts=[("5.00", 21)],
        total="62.20",
    )
    b = breakdown(order)
    assert (b.lines, b.shipping, b.payment_costs, b.discounts) == (D("59.90"), D("6.95"), D("0.35"), D("5.00"))
    assert b.expected_total == D("62.20")
    assert b.difference == D("0.00")
    assert b.subtotal == D("62.20")
    assert b.vat_used is None
    # 49.90→8.66, 10.00@9→0.83, 6.95→1.21, 0.35→0.06, −5.00→−0.87
    assert b.vat == D("8.66") + D("0.83") + D("1.21") + D("0.06") - D("0.87")


def test_breakdown_excluding_vat_uses_computed_vat_when_none_given() -> None:
    order = make_order(
        incl=False,
        lines=[(1, "100.00", 21)],
        shipping=[("6.05", 21)],
        payment_costs=[("1.00", 21)],
        discounts=[("10.00", 21)],
        total="117.70",
    )
    b = breakdown(order)
    # VAT: 21.00 + 1.27 + 0.21 − 2.10 = 20.38 → expected 97.05 + 20.38 = 117.43
    assert b.vat == D("20.38")
    assert b.vat_given is None
    assert b.vat_used == D("20.38")
    assert b.expected_total == D("117.43")
    assert b.difference == D("0.27")
    assert b.difference_cents == 27


def test_breakdown_excluding_vat_prefers_the_shops_vat() -> None:
    order = make_order(incl=False, lines=[(3, "0.10", 21)], total="0.37", total_vat="0.07")
    b = breakdown(order)
    assert b.vat == D("0.06")  # 0.30 × 0.21 = 0.063
    assert b.vat_given == D("0.07")
    assert b.expected_total == D("0.37")
    assert b.difference == D("0.00")


def test_breakdown_of_php_float_prices() -> None:
    # The shop sends JSON floats; the canonical model reads 5.0682260000000001 as 5.068226.
    order = CanonicalOrder.model_validate({
        "source_order_id": 7, "order_number": 7, "order_date": "2026-11-20T10:15:00",
        "prices_include_vat": False, "status": "paid",
        "lines": [{"name": "Tea", "quantity": 3.0, "unit_price": 5.0682260000000001, "vat_rate": 9.0}],
        "shipping": [{"amount": 4.1322314049586776, "vat_rate": 21.0}],
        "total": 21.61,
    })
    assert order.lines[0].unit_price == D("5.068226")
    b = breakdown(order)
    assert b.lines == D("15.20")  # 15.204678
    assert b.shipping == D("4.13")
    assert b.vat == D("1.37") + D("0.87")  # 1.368 and 0.8673
    assert b.expected_total == D("21.57")
    assert b.difference == D("0.04")


def test_line_amount_rounds_half_up() -> None:
    order = make_order(incl=True, lines=[(1, "2.345", 21), (3, "0.335", 21)], total="3.36")
    assert [line_amount(line) for line in order.lines] == [D("2.35"), D("1.01")]
    assert breakdown(order).lines == D("3.36")


# --- booking parts ------------------------------------------------------------------------


def test_booking_parts_including_vat_add_up_to_the_shop_amounts_exactly() -> None:
    order = make_order(
        incl=True,
        lines=[(3, "3.33", 21), (1, "0.99", 9), (7, "1.19", 21)],
        shipping=[("4.95", 21)],
        payment_costs=[("0.29", 21)],
        discounts=[("2.50", 21), ("0.10", 9)],
        total="21.95",
    )
    parts = booking_parts(order)
    assert [part.kind for part in parts] == [
        PartKind.LINE, PartKind.LINE, PartKind.LINE, PartKind.SHIPPING, PartKind.PAYMENT_COSTS,
        PartKind.DISCOUNT, PartKind.DISCOUNT,
    ]
    assert all(part.net + part.vat == part.gross for part in parts)
    assert sum_of(parts, "gross") == breakdown(order).subtotal == D("21.95")
    assert [part.gross for part in parts] == [
        D("9.99"), D("0.99"), D("8.33"), D("4.95"), D("0.29"), D("-2.50"), D("-0.10")
    ]
    discount = parts[5]
    assert (discount.net, discount.vat, discount.description) == (D("-2.07"), D("-0.43"), "Discount WELCOME")
    assert parts[0].sku == "SKU-1" and parts[0].quantity == D("3")
    assert parts[3].description == "Shipping" and parts[4].description == "Payment costs"


def test_booking_parts_excluding_vat_keep_the_shop_nets() -> None:
    order = make_order(
        incl=False,
        lines=[(2, "10.00", 21)],
        shipping=[("5.00", 21)],
        discounts=[("1.00", 9)],
        total="28.16",
    )
    parts = booking_parts(order)
    assert [(p.net, p.vat, p.gross) for p in parts] == [
        (D("20.00"), D("4.20"), D("24.20")),
        (D("5.00"), D("1.05"), D("6.05")),
        (D("-1.00"), D("-0.09"), D("-1.09")),
    ]


# Three excl. lines whose VAT rounds differently: 2.1063 → 2.11 (rounded up by 0.0037),
# 2.1042 → 2.10 (down by 0.0042), 2.1021 → 2.10 (down by 0.0021). Σ per part = 6.31.
UNEVEN = [(1, "10.03", 21), (1, "10.02", 21), (1, "10.01", 21)]


def test_shop_vat_one_cent_higher_goes_to_the_part_rounded_down_most() -> None:
    order = make_order(incl=False, lines=UNEVEN, total="36.38", total_vat="6.32")
    parts = booking_parts(order)
    assert [p.vat for p in parts] == [D("2.11"), D("2.11"), D("2.10")]
    assert sum_of(parts, "vat") == D("6.32")
    assert [p.net for p in parts] == [D("10.03"), D("10.02"), D("10.01")]
    assert all(p.net + p.vat == p.gross for p in parts)


def test_shop_vat_one_cent_lower_is_taken_from_the_part_rounded_up_most() -> None:
    order = make_order(incl=False, lines=UNEVEN, total="36.36", total_vat="6.30")
    parts = booking_parts(order)
    assert [p.vat for p in parts] == [D("2.10"), D("2.10"), D("2.10")]
    assert sum_of(parts, "vat") == D("6.30")


def test_shop_vat_differing_by_as_many_cents_as_parts_is_spread_one_cent_each() -> None:
    order = make_order(incl=False, lines=UNEVEN, total="36.40", total_vat="6.34")
    parts = booking_parts(order)
    assert [p.vat for p in parts] == [D("2.12"), D("2.11"), D("2.11")]
    assert sum_of(parts, "vat") == D("6.34")


def test_shop_vat_differing_by_more_cents_than_parts_is_left_for_the_rounding_line() -> None:
    order = make_order(incl=False, lines=UNEVEN, total="36.41", total_vat="6.35")
    parts = booking_parts(order)
    assert [p.vat for p in parts] == [D("2.11"), D("2.10"), D("2.10")]
    assert sum_of(parts, "vat") == D("6.31")


def test_zero_rate_parts_never_receive_a_vat_cent() -> None:
    lines = [(1, "10.00", 21), (1, "20.00", 21), (1, "50.00", 0)]
    # two cents over two taxed parts: both get one, the 0 % line none
    parts = booking_parts(make_order(incl=False, lines=lines, total="86.32", total_vat="6.32"))
    assert [p.vat for p in parts] == [D("2.11"), D("4.21"), D("0.00")]
    # three cents: more than the taxed parts can take, so nothing moves
    parts = booking_parts(make_order(incl=False, lines=lines, total="86.33", total_vat="6.33"))
    assert [p.vat for p in parts] == [D("2.10"), D("4.20"), D("0.00")]


def test_free_parts_never_receive_a_vat_cent() -> None:
    lines = [(1, "10.00", 21), (1, "0.00", 21)]
    parts = booking_parts(make_order(incl=False, lines=lines, total="12.12", total_vat="2.12"))
    assert [p.vat for p in parts] == [D("2.10"), D("0.00")]
    parts = booking_parts(make_order(incl=False, lines=lines, total="12.11", total_vat="2.11"))
    assert [p.vat for p in parts] == [D("2.11"), D("0.00")]


def test_equal_remainders_give_the_cent_to_the_largest_part() -> None:
    order = make_order(incl=False, lines=[(1, "10.00", 21), (1, "20.00", 21)], total="36.31", total_vat="6.31")
    parts = booking_parts(order)
    assert [p.vat for p in parts] == [D("2.10"), D("4.21")]


def test_matching_vat_including_vat_keeps_the_gross() -> None:
    # 3 × 0.99 incl. 21 %: per part 0.1718… → 0.17 each, Σ 0.51; the shop says 0.52.
    order = make_order(incl=True, lines=[(1, "0.99", 21)] * 3, total="2.97", total_vat="0.52")
    parts = booking_parts(order)
    assert sum_of(parts, "vat") == D("0.52")
    assert [p.gross for p in parts] == [D("0.99")] * 3
    assert sum_of(parts, "gross") == D("2.97")
    assert sorted(p.net for p in parts) == [D("0.81"), D("0.82"), D("0.82")]


def test_matching_vat_with_a_discount_part() -> None:
    # line 100.00 → 21.00 exactly; discount −0.07 → −0.0147 → −0.01, so Σ 20.99 is 0.0047
    # too high. The shop says 20.98: the cent comes off the discount, not the exact line.
    order = make_order(incl=False, lines=[(1, "100.00", 21)], discounts=[("0.07", 21)],
                       total="120.91", total_vat="20.98")
    parts = booking_parts(order)
    assert [p.vat for p in parts] == [D("21.00"), D("-0.02")]
    assert sum_of(parts, "vat") == D("20.98")
    assert (parts[1].net, parts[1].gross) == (D("-0.07"), D("-0.09"))


def test_no_total_vat_means_no_adjustment() -> None:
    parts = booking_parts(make_order(incl=False, lines=UNEVEN, total="36.37"))
    assert [p.vat for p in parts] == [D("2.11"), D("2.10"), D("2.10")]
