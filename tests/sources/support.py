"""Helpers shared by the source-adapter tests: fixtures on disk and the balance of an order."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

from app.orders.canonical import CanonicalOrder

FIXTURES = Path(__file__).parent / "fixtures"


def raw(source: str, name: str) -> bytes:
    """A fixture's bytes exactly as the shop would send them."""
    return (FIXTURES / source / name).read_bytes()


def payload(source: str, name: str) -> Any:
    return json.loads(raw(source, name))


def balance(order: CanonicalOrder) -> Decimal:
    """lines + shipping + payment costs − discounts (+ VAT when prices are excl. VAT)."""
    amount = sum((line.amount for line in order.lines), Decimal(0))
    amount += sum((charge.amount for charge in (*order.shipping, *order.payment_costs)), Decimal(0))
    amount -= sum((discount.amount for discount in order.discounts), Decimal(0))
    if not order.prices_include_vat:
        assert order.total_vat is not None
        amount += order.total_vat
    return amount


def change_one_byte(body: bytes, old: bytes, new: bytes) -> bytes:
    """`body` with the first occurrence of `old` replaced by the equally long `new`."""
    assert len(old) == len(new) and old in body
    changed = body.replace(old, new, 1)
    assert len(changed) == len(body) and sum(a != b for a, b in zip(body, changed, strict=True)) == 1
    return changed


def walk_amounts(value: Any, keys: set[str], convert: Any) -> Any:
    """A copy of `value` with every value under one of `keys` passed through `convert`."""
    if isinstance(value, dict):
        return {k: (convert(v) if k in keys and not isinstance(v, (dict, list)) else walk_amounts(v, keys, convert))
                for k, v in value.items()}
    if isinstance(value, list):
        return [walk_amounts(item, keys, convert) for item in value]
    return value
