"""The `woocommerce` source: `order.*` webhooks carrying the REST (v2/v3) order JSON.

Signature: `X-WC-Webhook-Signature` is the base64 HMAC-SHA256 of the raw body, keyed with the
webhook's secret; there is no timestamp. The delivery id is `X-WC-Webhook-Delivery-ID`, else a
hash of the body. When a webhook is created WooCommerce posts an unsigned, form-encoded
`webhook_id=<number>` ping that must be answered 200: `is_ping()` recognises exactly that body,
and `verify()` lets it through without a signature (nothing else gets through unsigned).
WooCommerce often sends `order.created` and `order.updated` for the same order with the same
data and different delivery ids; both map to the same canonical order (same
`source_order_id`), so the intake dedupes on the order, not on the delivery.

Status: the canonical status is the order's `status` (`pending` = awaiting payment,
`on-hold` = awaiting confirmation such as a bank transfer, `processing` = paid and awaiting
fulfilment, `completed`, `cancelled`, `refunded`, `failed`, `checkout-draft`). `processing`
and `completed` mean "paid", so `DEFAULT_PROCESSABLE_STATUSES` is `["processing", "completed"]`.

VAT number: from `meta_data`, the first non-empty string value among the keys in
`VAT_META_KEYS` (compared case-insensitively, in that order of preference), then from
`billing.vat_number` / `billing.vat_id` which some plugins add to the REST billing object.
Spaces, dots and hyphens are removed and letters upper-cased.

Amounts may arrive as strings with 2, 4 or 6 decimals, as JSON numbers, or as PHP floats
such as 2.6000000000000001; all are read as decimals, and money is rounded to cents.
WooCommerce quotes line, shipping, fee and discount amounts excl. VAT with the tax beside them
(`subtotal`/`subtotal_tax`, `total`/`total_tax`, `discount_total`/`discount_tax`); they are
converted to the order's convention (`prices_include_tax`; the integration's default when the
payload lacks it): incl. VAT amounts are amount + tax.

Mapping decisions:
* `order_date` is `date_created_gmt` (UTC), else `date_created` (the site's local time, read
  as UTC, which can be an hour or two off). A malformed value such as "2021-1008T14:54:36" is
  skipped; when neither is a valid date the order is refused naming `date_created_gmt`. There
  is deliberately no fallback to `date_modified`/`date_paid`: they can be weeks later and the
  order date decides the VAT period.
* A line's amount is its `subtotal` (+ `subtotal_tax`), i.e. before coupons; the float
  `price` is never used. The unit price is that amount divided by the quantity, with as few
  decimals as give back the amount to the cent.
* Discounts are the per-line differences `subtotal - total` (+ the tax difference), one
  discount per VAT rate, labelled with the `coupon_lines` codes. This also catches discounts
  that have no coupon line (subscriptions, dynamic pricing). Only when no line shows a
  difference is `discount_total` (+ `discount_tax`) used, spread over the lines' VAT rates in
  proportion to their amounts.
* A line's, shipping line's or fee's VAT rate is the sum of the `rate_percent` of the
  `tax_lines` its `taxes[]` point to (by `rate_id`). Where a rate has no `rate_percent`
  (older WooCommerce) it is computed from the tax and net amounts and rounded to the nearest
  known VAT rate within the cent-rounding margin; if none fits the order is refused naming the
  field. No `taxes` and no tax → 0 %.
* `fee_lines` become payment costs; negative fees become discounts. Zero-valued shipping
  lines and fees are left out. HTML entities in names (`&#8482;`, `&times;`) are decoded.
* An empty address (the usual `shipping` of a digital or pickup order) is None; an address
  with a street, postcode or city but no country refuses the order naming the field.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import re
from collections.abc import Mapping
from datetime import datetime
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal
from typing import Any

from pydantic import ValidationError

from app.integrations.settings import IntegrationSettings
from app.orders.canonical import CENT, CanonicalOrder, normalise_country, to_decimal
from app.sources.base import MappingError, SignatureError, SourceAdapter

DEFAULT_PROCESSABLE_STATUSES = ["processing", "completed"]

SIGNATURE_HEADER = "x-wc-webhook-signature"
DELIVERY_ID_HEADER = "x-wc-webhook-delivery-id"

# meta_data keys that VAT-number plugins use, in order of preference: Aelia EU VAT Assistant
# and others (vat_number), WooCommerce EU VAT Number (_vat_number, _billing_vat_number),
# EU/UK VAT for WooCommerce (_billing_eu_vat_number), YITH (yweu_billing_vat),
# Germanized (_billing_vat_id), Dutch checkout fields (btw_nummer).
VAT_META_KEYS = (
    "vat_number", "_vat_number",
    "_billing_vat_number", "billing_vat_number",
    "_billing_eu_vat_number", "billing_eu_vat_number",
    "yweu_billing_vat",
    "_billing_vat_id", "billing_vat_id", "_vat_id", "vat_id",
    "_billing_vat", "billing_vat",
    "btw_nummer", "_btw_nummer", "_billing_btw_nummer", "billing_btw_nummer",
)
VAT_BILLING_KEYS = ("vat_number", "vat_id")

# Rates a computed rate may be rounded to: every EU standard and reduced rate, and a few
# common others (CH 2.6/3.8/8.1, NO 15/25, GB 5/20, …).
KNOWN_RATES = tuple(Decimal(r) for r in (
    "0", "2.1", "2.5", "2.6", "3", "3.7", "3.8", "4", "5", "5.5", "6", "7", "7.7", "8", "8.1",
    "9", "9.5", "10", "12", "13", "13.5", "14", "15", "16", "17", "18", "19", "20", "21", "22",
    "23", "24", "25", "25.5", "27",
))

PING_BODY = re.compile(rb"\s*webhook_id=\d+\s*")
ZERO = Decimal(0)


def sign(secret: str, body: bytes) -> str:
    """The `X-WC-Webhook-Signature` value WooCommerce sends for `body` (used by demo and tests)."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def _header(headers: Mapping[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None


def _text(value: Any) -> str | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        return None
    return value.strip() or None


def _name(value: Any) -> str | None:
    text = _text(value)
    return _text(html.unescape(text)) if text else None


def _join(*parts: Any) -> str | None:
    return " ".join(p for p in (_text(part) for part in parts) if p) or None


def _amount(value: Any, field: str, *, required: bool = False) -> Decimal:
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise MappingError(field, "amount is missing")
        return ZERO
    try:
        return to_decimal(value)
    except ValueError as exc:
        raise MappingError(field, str(exc)) from exc


def _cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, ROUND_HALF_UP)


def _percent(value: Decimal) -> Decimal:
    value = value.quantize(Decimal("0.0001"), ROUND_HALF_UP)
    return value.quantize(Decimal(1)) if value == value.to_integral_value() else value.normalize()


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def known_rate(net: Decimal, tax: Decimal, field: str) -> Decimal:
    """The known VAT rate that `tax` on `net` (both rounded to cents) is, or MappingError."""
    if net == 0:
        if tax == 0:
            return ZERO
        raise MappingError(field, "tax on a zero amount: cannot tell the VAT rate")
    computed = tax / net * 100
    margin = Decimal(1) / abs(net) + Decimal("0.01")
    best = min(KNOWN_RATES, key=lambda rate: abs(rate - computed))
    if abs(best - computed) > margin:
        raise MappingError(field, f"VAT rate {computed:.2f}% is not a known rate")
    return _percent(best)


def unit_price(amount: Decimal, quantity: Decimal, field: str) -> Decimal:
    """A unit price that, times the quantity, gives `amount` back to the cent."""
    if quantity == 0:
        if amount == 0:
            return ZERO
        raise MappingError(f"{field}.quantity", "quantity 0 with a non-zero amount")
    exact = amount / quantity
    candidates = [exact.quantize(Decimal(1).scaleb(-places), ROUND_HALF_UP) for places in range(2, 11)]
    for unit in candidates:  # fewest decimals that give the amount exactly
        if quantity * unit == amount:
            return unit
    for unit in candidates:  # else fewest that round back to it (half up and half even alike)
        product = quantity * unit
        if product.quantize(CENT, ROUND_HALF_UP) == amount == product.quantize(CENT, ROUND_HALF_EVEN):
            return unit
    return exact


def _spread(amount: Decimal, weights: list[tuple[Decimal, Decimal]]) -> list[tuple[Decimal, Decimal]]:
    """Split `amount` over (rate, weight) pairs in proportion to the weights, to the cent."""
    by_rate: dict[Decimal, Decimal] = {}
    for rate, weight in weights:
        by_rate[rate] = by_rate.get(rate, ZERO) + weight
    total = sum(by_rate.values(), ZERO)
    if not by_rate or total == 0:
        return [(weights[0][0] if weights else ZERO, amount)]
    parts: list[tuple[Decimal, Decimal]] = []
    left = amount
    rates = list(by_rate)
    for rate in rates[:-1]:
        share = _cents(amount * by_rate[rate] / total)
        parts.append((rate, share))
        left -= share
    parts.append((rates[-1], left))
    return [(rate, share) for rate, share in parts if share != 0]


def _clean_vat(value: str) -> str:
    return "".join(ch for ch in value if ch not in " .-").upper()


def vat_number_from(order: dict[str, Any]) -> str | None:
    """The customer's VAT number from `meta_data` (then `billing`), per `VAT_META_KEYS`."""
    found: dict[str, str] = {}
    for meta in _list(order.get("meta_data")):
        if isinstance(meta, dict) and isinstance(meta.get("key"), str):
            value = _text(meta.get("value")) if isinstance(meta.get("value"), str) else None
            key = meta["key"].strip().lower()
            if value and key not in found:
                found[key] = value
    for key in VAT_META_KEYS:
        if key in found:
            return _clean_vat(found[key])
    billing = order.get("billing") if isinstance(order.get("billing"), dict) else {}
    for key in VAT_BILLING_KEYS:
        value = billing.get(key)
        if isinstance(value, str) and value.strip():
            return _clean_vat(value)
    return None


class WooCommerceAdapter(SourceAdapter):
    name = "woocommerce"
    # Read by integration creation (app.integrations.service.default_settings_for).
    DEFAULT_PROCESSABLE_STATUSES = DEFAULT_PROCESSABLE_STATUSES

    def is_ping(self, body: bytes, headers: Mapping[str, str]) -> bool:
        return PING_BODY.fullmatch(body) is not None

    def verify(self, secret: str, body: bytes, headers: Mapping[str, str], now: float) -> None:
        if self.is_ping(body, headers):
            return  # WooCommerce does not sign its subscription ping; it is never stored.
        sent = _header(headers, SIGNATURE_HEADER)
        if not sent:
            raise SignatureError("missing X-WC-Webhook-Signature header")
        if not hmac.compare_digest(sent.strip().encode(), sign(secret, body).encode()):
            raise SignatureError("X-WC-Webhook-Signature does not match the body")

    def delivery_id(self, body: bytes, headers: Mapping[str, str]) -> str:
        value = _header(headers, DELIVERY_ID_HEADER)
        if value and value.strip():
            return value.strip()
        return super().delivery_id(body, headers)

    def to_order(self, payload: Any, settings: IntegrationSettings) -> CanonicalOrder:
        if not isinstance(payload, dict):
            raise MappingError("body", "expected a JSON object with a WooCommerce order")
        source_id = _text(payload.get("id"))
        try:
            if source_id is None:
                raise MappingError("id", "the order has no id")
            data = _OrderMapping(payload, settings).build()
            try:
                return CanonicalOrder.model_validate(data)
            except ValidationError as exc:
                raise MappingError.from_validation(exc) from exc
        except MappingError as exc:
            if exc.source_order_id is None:
                exc.source_order_id = source_id
            raise


class _OrderMapping:
    """One WooCommerce order → the canonical order's fields (a dict for `CanonicalOrder`)."""

    def __init__(self, order: dict[str, Any], settings: IntegrationSettings) -> None:
        self.order = order
        include = order.get("prices_include_tax")
        self.incl = include if isinstance(include, bool) else settings.prices_include_vat
        self.rates = self._rates_by_id()
        self.discounts: list[dict[str, Any]] = []

    def build(self) -> dict[str, Any]:
        order = self.order
        lines = self._lines()
        currency = _text(order.get("currency"))
        if not currency:
            raise MappingError("currency", "the order has no currency")
        status = _text(order.get("status"))
        if not status:
            raise MappingError("status", "the order has no status")
        shipping = self._charges("shipping_lines", "method_title")
        fees = self._charges("fee_lines", "name")
        payment_costs = [fee for fee in fees if fee["amount"] > 0]
        for fee in fees:
            if fee["amount"] < 0:
                self.discounts.append({**fee, "amount": -fee["amount"], "code": None})
        billing = order.get("billing") if isinstance(order.get("billing"), dict) else {}
        total_tax = order.get("total_tax")
        return {
            "source_order_id": _text(order.get("id")),
            "order_number": _text(order.get("number")) or _text(order.get("id")),
            "order_date": self._date(),
            "currency": currency,
            "prices_include_vat": self.incl,
            "customer": {
                "email": _text(billing.get("email")),
                "name": _join(billing.get("first_name"), billing.get("last_name")),
                "company": _text(billing.get("company")),
                "vat_number": vat_number_from(order),
                "phone": _text(billing.get("phone")),
            },
            "billing_address": self._address(order.get("billing"), "billing"),
            "shipping_address": self._address(order.get("shipping"), "shipping"),
            "lines": lines,
            "shipping": shipping,
            "payment_costs": payment_costs,
            "discounts": self.discounts,
            "total": _cents(_amount(order.get("total"), "total", required=True)),
            "total_vat": None if total_tax in (None, "") else _cents(_amount(total_tax, "total_tax")),
            "payment_method": _text(order.get("payment_method")) or _text(order.get("payment_method_title")),
            "status": status,
        }

    # -- parts -------------------------------------------------------------------------

    def _date(self) -> datetime:
        for field in ("date_created_gmt", "date_created"):
            value = self.order.get(field)
            if isinstance(value, str) and value.strip():
                try:
                    return datetime.fromisoformat(value.strip())
                except ValueError:
                    continue  # malformed (e.g. "2021-1008T14:54:36"): try the next one
        raise MappingError("date_created_gmt", "neither date_created_gmt nor date_created is a valid date")

    @staticmethod
    def _address(raw: Any, field: str) -> dict[str, Any] | None:
        if not isinstance(raw, dict):
            return None
        address = {
            "name": _join(raw.get("first_name"), raw.get("last_name")),
            "company": _text(raw.get("company")),
            "line1": _text(raw.get("address_1")),
            "line2": _text(raw.get("address_2")),
            "postcode": _text(raw.get("postcode")),
            "city": _text(raw.get("city")),
        }
        code = _text(raw.get("country"))
        if code is None:
            if any(address[key] for key in ("line1", "line2", "postcode", "city")):
                raise MappingError(f"{field}.country", "the address has no country")
            return None
        try:
            address["country"] = normalise_country(code)
        except ValueError as exc:
            raise MappingError(f"{field}.country", str(exc)) from exc
        return address

    def _rates_by_id(self) -> dict[str, Decimal]:
        rates: dict[str, Decimal] = {}
        for k, tax_line in enumerate(_list(self.order.get("tax_lines"))):
            if not isinstance(tax_line, dict):
                continue
            rate_id = _text(tax_line.get("rate_id"))
            percent = tax_line.get("rate_percent")
            if rate_id and percent not in (None, ""):
                rates[rate_id] = _amount(percent, f"tax_lines[{k}].rate_percent")
        return rates

    def _rate(self, item: dict[str, Any], field: str, net: Decimal, tax: Decimal) -> Decimal:
        taxes = [t for t in _list(item.get("taxes")) if isinstance(t, dict)]
        if not taxes and tax == 0:
            return ZERO
        percents = [self.rates.get(_text(t.get("id")) or "") for t in taxes]
        if taxes and all(p is not None for p in percents):
            return _percent(sum(percents, ZERO))  # type: ignore[arg-type]
        return known_rate(net, tax, f"{field}.taxes")

    def _lines(self) -> list[dict[str, Any]]:
        items = self.order.get("line_items")
        if not isinstance(items, list) or not items:
            raise MappingError("line_items", "the order has no line items")
        lines: list[dict[str, Any]] = []
        weights: list[tuple[Decimal, Decimal]] = []
        by_rate: dict[Decimal, Decimal] = {}
        for i, item in enumerate(items):
            field = f"line_items[{i}]"
            if not isinstance(item, dict):
                raise MappingError(field, "expected an object")
            quantity = _amount(item.get("quantity"), f"{field}.quantity", required=True)
            total = _amount(item.get("total"), f"{field}.total", required=True)
            total_tax = _amount(item.get("total_tax"), f"{field}.total_tax")
            if item.get("subtotal") in (None, ""):
                subtotal, subtotal_tax = total, total_tax
            else:
                subtotal = _amount(item.get("subtotal"), f"{field}.subtotal")
                subtotal_tax = _amount(item.get("subtotal_tax"), f"{field}.subtotal_tax")
                if subtotal < total:  # a price raised after the fact: no discount to show
                    subtotal, subtotal_tax = total, total_tax
            rate = (self._rate(item, field, subtotal, subtotal_tax) if subtotal
                    else self._rate(item, field, total, total_tax))
            amount = _cents(subtotal + subtotal_tax if self.incl else subtotal)
            # Rounded as a difference of rounded amounts, so that line − discount is the
            # line's own `total` (+ `total_tax`) to the cent.
            discount = amount - _cents(total + total_tax if self.incl else total)
            if discount:
                by_rate[rate] = by_rate.get(rate, ZERO) + discount
            name = _name(item.get("name")) or _text(item.get("sku"))
            if not name:
                raise MappingError(f"{field}.name", "the line has no name")
            lines.append({"sku": _text(item.get("sku")), "name": name, "quantity": quantity,
                          "unit_price": unit_price(amount, quantity, field), "vat_rate": rate})
            weights.append((rate, amount))
        description, code = self._coupon_label()
        if by_rate:
            for rate, amount in by_rate.items():
                self.discounts.append({"description": description, "code": code, "amount": amount, "vat_rate": rate})
        else:
            order_discount = _amount(self.order.get("discount_total"), "discount_total")
            if self.incl:
                order_discount += _amount(self.order.get("discount_tax"), "discount_tax")
            if order_discount > 0:
                for rate, share in _spread(_cents(order_discount), weights):
                    self.discounts.append({"description": description, "code": code,
                                           "amount": share, "vat_rate": rate})
        return lines

    def _coupon_label(self) -> tuple[str, str | None]:
        codes = [c for c in (_text(line.get("code")) for line in _list(self.order.get("coupon_lines"))
                             if isinstance(line, dict)) if c]
        joined = ", ".join(codes) or None
        return (joined or "Discount", joined)

    def _charges(self, key: str, label: str) -> list[dict[str, Any]]:
        charges = []
        for j, item in enumerate(_list(self.order.get(key))):
            field = f"{key}[{j}]"
            if not isinstance(item, dict):
                continue
            net = _amount(item.get("total"), f"{field}.total")
            if item.get("total") in (None, "") and "amount" in item:
                net = _amount(item.get("amount"), f"{field}.amount")
            tax = _amount(item.get("total_tax"), f"{field}.total_tax")
            amount = _cents(net + tax if self.incl else net)
            if amount == 0:
                continue
            charges.append({"description": _name(item.get(label)), "amount": amount,
                            "vat_rate": self._rate(item, field, net, tax)})
        return charges
