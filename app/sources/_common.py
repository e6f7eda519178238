"""Small helpers the shop adapters share: reading values, amounts, VAT rates and unit prices.

Nothing here knows a shop. Each adapter keeps its own policy (which amounts are required,
what stands for null, which field a failure is reported on) and passes it in.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable, Mapping
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal
from typing import Any

from pydantic import ValidationError

from app.orders.canonical import CENT, CanonicalOrder, to_decimal
from app.sources.base import MappingError

ZERO = Decimal(0)

# Rates a rate computed from amounts may be rounded to: every EU standard and reduced rate,
# and a few common others (CH 2.6/3.8/8.1, NO 15/25, GB 5/20, …).
KNOWN_RATES = tuple(Decimal(r) for r in (
    "0", "2.1", "2.5", "2.6", "3", "3.7", "3.8", "4", "5", "5.5", "6", "7", "7.7", "8", "8.1",
    "9", "9.5", "10", "12", "13", "13.5", "14", "15", "16", "17", "18", "19", "20", "21", "22",
    "23", "24", "25", "25.5", "27",
))


# -- headers and signatures --------------------------------------------------------------

def header(headers: Mapping[str, str], name: str) -> str | None:
    """The value of header `name` (given in lower case), whatever case the sender used."""
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None


def hmac_sha256_base64(secret: str, body: bytes) -> str:
    """Base64 of the HMAC-SHA256 of `body` keyed with `secret` (Shopify's and WooCommerce's scheme)."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


# -- plain values ------------------------------------------------------------------------

def text(value: Any) -> str | None:
    """A stripped string (numbers become their text); None for null, "" and anything else."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        return None
    return value.strip() or None


def join(*parts: Any, sep: str = " ") -> str | None:
    """The non-empty parts joined by `sep`; None when there are none."""
    return sep.join(p for p in (text(part) for part in parts) if p) or None


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def clean_vat(value: str | None) -> str | None:
    """A VAT number without spaces, dots and hyphens, in upper case."""
    return "".join(ch for ch in value if ch not in " .-").upper() if value else None


# -- money and rates ---------------------------------------------------------------------

def amount(value: Any, field: str, *, required: bool = False) -> Decimal:
    """`value` as an exact decimal. Null or blank is a MappingError on `field` when
    `required`, else zero; anything that is not a number is a MappingError on `field`."""
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise MappingError(field, "amount is missing")
        return ZERO
    try:
        return to_decimal(value)
    except ValueError as exc:
        raise MappingError(field, str(exc)) from exc


def cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, ROUND_HALF_UP)


def percent(value: Decimal) -> Decimal:
    """A VAT rate to at most 4 decimals, without trailing zeros (21.00 → 21, 5.50 → 5.5)."""
    value = value.quantize(Decimal("0.0001"), ROUND_HALF_UP)
    return value.quantize(Decimal(1)) if value == value.to_integral_value() else value.normalize()


def known_rate(net: Decimal, tax: Decimal, field: str, *,
               zero_net: str = "tax on a zero amount: cannot tell the VAT rate") -> Decimal:
    """The known VAT rate that `tax` on `net` (both rounded to cents) is, within what rounding
    to cents can explain; else a MappingError on `field`. `zero_net` is the reason given for
    tax on a zero net amount."""
    if net == 0:
        if tax == 0:
            return ZERO
        raise MappingError(field, zero_net)
    computed = tax / net * 100
    margin = Decimal(1) / abs(net) + Decimal("0.01")
    best = min(KNOWN_RATES, key=lambda rate: abs(rate - computed))
    if abs(best - computed) > margin:
        raise MappingError(field, f"VAT rate {computed:.2f}% is not a known rate")
    return percent(best)


def unit_price(total: Decimal, quantity: Decimal, quantity_field: str) -> Decimal:
    """A unit price that, times `quantity`, gives `total` back to the cent, with as few
    decimals as possible. A zero quantity with a non-zero total is a MappingError on
    `quantity_field`."""
    if quantity == 0:
        if total == 0:
            return ZERO
        raise MappingError(quantity_field, "quantity 0 with a non-zero amount")
    exact = total / quantity
    candidates = [exact.quantize(Decimal(1).scaleb(-places), ROUND_HALF_UP) for places in range(2, 11)]
    for unit in candidates:  # the fewest decimals that give the total exactly
        if quantity * unit == total:
            return unit
    for unit in candidates:  # else the fewest that round back to it, half up and half even alike
        product = quantity * unit
        if product.quantize(CENT, ROUND_HALF_UP) == total == product.quantize(CENT, ROUND_HALF_EVEN):
            return unit
    return exact


def spread(total: Decimal, weights: list[tuple[Decimal, Decimal]]) -> list[tuple[Decimal, Decimal]]:
    """Split `total` over the VAT rates of (rate, weight) pairs in proportion to the weights,
    to the cent: the last rate takes what rounding leaves. Zero shares are left out."""
    by_rate: dict[Decimal, Decimal] = {}
    for rate, weight in weights:
        by_rate[rate] = by_rate.get(rate, ZERO) + weight
    weight_total = sum(by_rate.values(), ZERO)
    if not by_rate or weight_total == 0:
        return [(weights[0][0] if weights else ZERO, total)]
    shares: list[tuple[Decimal, Decimal]] = []
    left = total
    rates = list(by_rate)
    for rate in rates[:-1]:
        share = cents(total * by_rate[rate] / weight_total)
        shares.append((rate, share))
        left -= share
    shares.append((rates[-1], left))
    return [(rate, share) for rate, share in shares if share != 0]


# -- the canonical order -------------------------------------------------------------------

def canonical_order(source_order_id: str | None, build: Callable[[], dict[str, Any]]) -> CanonicalOrder:
    """Validate what `build()` maps as the canonical order. Every failure is a MappingError
    that carries `source_order_id`, so a rejected delivery still finds its order."""
    try:
        if source_order_id is None:
            raise MappingError("id", "the order has no id")
        data = build()
        try:
            return CanonicalOrder.model_validate(data)
        except ValidationError as exc:
            raise MappingError.from_validation(exc) from exc
    except MappingError as exc:
        if exc.source_order_id is None:
            exc.source_order_id = source_order_id
        raise
