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

import hmac
import html
import re
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from app.integrations.settings import IntegrationSettings
from app.orders.canonical import CanonicalOrder, normalise_country
from app.sources._common import ZERO, canonical_order, hmac_sha256_base64, known_rate, unit_price
from app.sources._common import amount as _amount
from app.sources._common import as_list as _list
from app.sources._common import cents as _cents
from app.sources._common import clean_vat as _clean_vat
from app.sources._common import header as _header
from app.sources._common import join as _join
from app.sources._common import percent as _percent
from app.sources._common import spread as _spread
from app.sources._common import text as _text
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

PING_BODY = re.compile(rb"\s*webhook_id=\d+\s*")


def sign(secret: str, body: bytes) -> str:
    """The `X-WC-Webhook-Signature` value WooCommerce sends for `body` (used by demo and tests)."""
    return hmac_sha256_base64(secret, body)


def _name(value: Any) -> str | None:
    text = _text(value)
    return _text(html.unescape(text)) if text else None


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
        return canonical_order(_text(payload.get("id")), lambda: _OrderMapping(payload, settings).build())


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
                          "unit_price": unit_price(amount, quantity, f"{field}.quantity"), "vat_rate": rate})
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
