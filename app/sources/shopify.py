"""The `shopify` source: `orders/*` webhooks carrying the REST Admin order resource.

Signature: `X-Shopify-Hmac-Sha256` is the base64 HMAC-SHA256 of the raw body, keyed with the
app's client secret. There is no signed timestamp. The delivery id is `X-Shopify-Event-Id`
(the same id on every retry of one event), else `X-Shopify-Webhook-Id`, else a hash of the body.
The body is the order itself; a body wrapped as `{"order": {...}}` (as the REST API returns
it and as some relays forward it) is accepted too.

Status: the canonical status is the order's `financial_status` (`pending`, `authorized`,
`partially_paid`, `paid`, `partially_refunded`, `refunded`, `voided`, `expired`). Only
`paid` means "paid in full", so `DEFAULT_PROCESSABLE_STATUSES` is `["paid"]`. An order that
has `cancelled_at` set gets the status `cancelled` whatever its financial status, so a
cancelled but not (yet) refunded order is never booked as a sale.

VAT number: Shopify has no field for it. It is read from the order's `note_attributes`
(cart attributes that checkout apps fill in) whose `name`, compared case-insensitively with
spaces and hyphens read as underscores, is one of `vat_number`, `btw_nummer` or `vat_id`
(so "VAT number", "VAT-number", "Vat_Id" and "BTW nummer" all match). The first non-empty
value wins; spaces, dots and hyphens are removed and letters upper-cased. A VAT number typed
into free text (`note`, `customer.note`) is not parsed.

Amounts are the shop-currency amounts (`currency`, `price`, `total_price`, …); the
`*_set.presentment_money` amounts are ignored. `taxes_included` says whether they include VAT
(the integration's `prices_include_vat` when a payload lacks it).

Mapping decisions:
* `order_date` is `processed_at` (the date Shopify shows on the order and uses in its
  reports, also for imported orders), else `created_at`.
* A line's name is `name` (title plus variant), else `title`; its unit price is `price`.
* A line's VAT rate is the sum of its `tax_lines[].rate` (fractions, 0.21 → 21), counting only
  tax lines that carry tax: a rate with a 0.00 tax on a line that still costs something means
  the tax was not charged (exempt customer, export), so the line is booked at 0 %. A line
  with `taxable: false` or without tax lines is at 0 %.
* Discounts: per line, the sum of `discount_allocations` (one discount per discount
  application and VAT rate), else the line's `total_discount`; per shipping line its
  `discount_allocations`, else `price - discounted_price`. Only when no line and no
  shipping line carries a discount is the order-level `total_discounts` (else the sum of
  `discount_codes`) used: codes of type `shipping` at the shipping rate, the rest spread over
  the lines' VAT rates in proportion to their amounts.
* Shopify has no payment costs; fees that shops sell as products ("Payment fee",
  "Delivery Fee") stay lines. Shipping lines with `is_removed: true` and zero-priced
  shipping lines are left out.
* An address without `country_code` is dropped when it holds no street, postcode or city
  (a name only); otherwise the order is refused naming the field.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from app.integrations.settings import IntegrationSettings
from app.orders.canonical import CanonicalOrder, normalise_country
from app.sources._common import ZERO, canonical_order, clean_vat, hmac_sha256_base64
from app.sources._common import amount as _amount
from app.sources._common import as_list as _list
from app.sources._common import cents as _cents
from app.sources._common import header as _header
from app.sources._common import join as _join
from app.sources._common import percent as _percent
from app.sources._common import spread as _spread
from app.sources._common import text as _text
from app.sources.base import MappingError, SignatureError, SourceAdapter

DEFAULT_PROCESSABLE_STATUSES = ["paid"]

SIGNATURE_HEADER = "x-shopify-hmac-sha256"
EVENT_ID_HEADER = "x-shopify-event-id"
WEBHOOK_ID_HEADER = "x-shopify-webhook-id"

# note_attributes names (after normalisation) that carry the customer's VAT number.
VAT_ATTRIBUTE_NAMES = ("vat_number", "btw_nummer", "vat_id")


def sign(secret: str, body: bytes) -> str:
    """The `X-Shopify-Hmac-Sha256` value Shopify sends for `body` (used by demo and tests)."""
    return hmac_sha256_base64(secret, body)


def vat_number_from_attributes(attributes: Any) -> str | None:
    """The VAT number among `note_attributes`, by the names listed in the module docstring."""
    for attribute in _list(attributes):
        if not isinstance(attribute, dict):
            continue
        name = _text(attribute.get("name"))
        if not name:
            continue
        key = name.lower().replace(" ", "_").replace("-", "_")
        value = _text(attribute.get("value"))
        if key in VAT_ATTRIBUTE_NAMES and value:
            return clean_vat(value)
    return None


class ShopifyAdapter(SourceAdapter):
    name = "shopify"
    # Read by integration creation (app.integrations.service.default_settings_for).
    DEFAULT_PROCESSABLE_STATUSES = DEFAULT_PROCESSABLE_STATUSES

    def verify(self, secret: str, body: bytes, headers: Mapping[str, str], now: float) -> None:
        sent = _header(headers, SIGNATURE_HEADER)
        if not sent:
            raise SignatureError("missing X-Shopify-Hmac-Sha256 header")
        if not hmac.compare_digest(sent.strip().encode(), sign(secret, body).encode()):
            raise SignatureError("X-Shopify-Hmac-Sha256 does not match the body")

    def delivery_id(self, body: bytes, headers: Mapping[str, str]) -> str:
        for name in (EVENT_ID_HEADER, WEBHOOK_ID_HEADER):
            value = _header(headers, name)
            if value and value.strip():
                return value.strip()
        return super().delivery_id(body, headers)

    def to_order(self, payload: Any, settings: IntegrationSettings) -> CanonicalOrder:
        if isinstance(payload, dict) and isinstance(payload.get("order"), dict) and "id" not in payload:
            payload = payload["order"]
        if not isinstance(payload, dict):
            raise MappingError("body", "expected a JSON object with a Shopify order")
        return canonical_order(_text(payload.get("id")), lambda: _OrderMapping(payload, settings).build())


class _OrderMapping:
    """One Shopify order → the canonical order's fields (a dict for `CanonicalOrder`)."""

    def __init__(self, order: dict[str, Any], settings: IntegrationSettings) -> None:
        self.order = order
        include = order.get("taxes_included")
        self.incl = include if isinstance(include, bool) else settings.prices_include_vat
        self.discounts: dict[tuple[str, str | None, Decimal], Decimal] = {}
        self.shipping_rates: list[Decimal] = []

    def build(self) -> dict[str, Any]:
        order = self.order
        currency = _text(order.get("currency"))
        if not currency:
            raise MappingError("currency", "the order has no currency")
        lines, line_weights = self._lines()
        shipping = self._shipping()
        if not self.discounts:
            self._order_level_discounts(line_weights)
        status = _text(order.get("financial_status"))
        if not status:
            raise MappingError("financial_status", "the order has no financial status")
        if order.get("cancelled_at"):
            status = "cancelled"
        total_tax = order.get("total_tax")
        return {
            "source_order_id": _text(order.get("id")),
            "order_number": _text(order.get("name")) or _text(order.get("order_number")),
            "order_date": self._date(),
            "currency": currency,
            "prices_include_vat": self.incl,
            "customer": self._customer(),
            "billing_address": self._address(order.get("billing_address"), "billing_address"),
            "shipping_address": self._address(order.get("shipping_address"), "shipping_address"),
            "lines": lines,
            "shipping": shipping,
            "payment_costs": [],
            "discounts": [
                {"description": description, "code": code, "amount": amount, "vat_rate": rate}
                for (description, code, rate), amount in self.discounts.items()
                if amount != 0
            ],
            "total": _cents(_amount(order.get("total_price"), "total_price", required=True)),
            "total_vat": None if total_tax in (None, "") else _cents(_amount(total_tax, "total_tax", required=True)),
            "payment_method": self._payment_method(),
            "status": status,
        }

    # -- parts -------------------------------------------------------------------------

    def _date(self) -> datetime:
        for field in ("processed_at", "created_at"):
            value = self.order.get(field)
            if isinstance(value, str) and value.strip():
                try:
                    return datetime.fromisoformat(value.strip())
                except ValueError as exc:
                    raise MappingError(field, f"{value!r} is not an ISO 8601 date") from exc
        raise MappingError("created_at", "the order has no date")

    def _customer(self) -> dict[str, Any]:
        order = self.order
        customer = order.get("customer") if isinstance(order.get("customer"), dict) else {}
        billing = order.get("billing_address") if isinstance(order.get("billing_address"), dict) else {}
        shipping = order.get("shipping_address") if isinstance(order.get("shipping_address"), dict) else {}
        return {
            "email": _text(order.get("email")) or _text(customer.get("email")) or _text(order.get("contact_email")),
            "name": _join(customer.get("first_name"), customer.get("last_name"))
            or _text(billing.get("name")) or _join(billing.get("first_name"), billing.get("last_name"))
            or _text(shipping.get("name")),
            "company": _text(billing.get("company")),
            "vat_number": vat_number_from_attributes(order.get("note_attributes")),
            "phone": _text(customer.get("phone")) or _text(billing.get("phone")) or _text(order.get("phone")),
        }

    @staticmethod
    def _address(raw: Any, field: str) -> dict[str, Any] | None:
        if not isinstance(raw, dict):
            return None
        address = {
            "name": _text(raw.get("name")) or _join(raw.get("first_name"), raw.get("last_name")),
            "company": _text(raw.get("company")),
            "line1": _text(raw.get("address1")),
            "line2": _text(raw.get("address2")),
            "postcode": _text(raw.get("zip")),
            "city": _text(raw.get("city")),
        }
        code = _text(raw.get("country_code"))
        if code is None:
            if any(address[key] for key in ("line1", "line2", "postcode", "city")):
                raise MappingError(f"{field}.country_code", "the address has no country code")
            return None
        try:
            address["country"] = normalise_country(code)
        except ValueError as exc:
            raise MappingError(f"{field}.country_code", str(exc)) from exc
        return address

    def _payment_method(self) -> str | None:
        names = [name for name in (_text(n) for n in _list(self.order.get("payment_gateway_names"))) if name]
        return names[0] if names else _text(self.order.get("gateway"))

    def _rate(self, item: dict[str, Any], field: str, net: Decimal) -> Decimal:
        """The VAT rate (percent) of a line or shipping line; see the module docstring."""
        if item.get("taxable") is False:
            return ZERO
        charged: list[Decimal] = []
        nominal: list[Decimal] = []
        for k, tax in enumerate(_list(item.get("tax_lines"))):
            if not isinstance(tax, dict):
                continue
            rate = _amount(tax.get("rate"), f"{field}.tax_lines[{k}].rate", required=True)
            nominal.append(rate)
            if _amount(tax.get("price"), f"{field}.tax_lines[{k}].price", required=False) != 0:
                charged.append(rate)
        if charged:
            return _percent(sum(charged, ZERO) * 100)
        if nominal and net == 0:
            return _percent(sum(nominal, ZERO) * 100)
        return ZERO

    def _application(self, index: Any) -> tuple[str, str | None]:
        applications = _list(self.order.get("discount_applications"))
        if isinstance(index, int) and 0 <= index < len(applications) and isinstance(applications[index], dict):
            app = applications[index]
            code = _text(app.get("code"))
            return (_text(app.get("title")) or _text(app.get("description")) or code or "Discount", code)
        return ("Discount", None)

    def _codes(self) -> tuple[str, str | None]:
        codes = [c for c in (_text(d.get("code")) for d in _list(self.order.get("discount_codes"))
                             if isinstance(d, dict)) if c]
        joined = ", ".join(codes) or None
        return (joined or "Discount", joined)

    def _add_discount(self, description: str, code: str | None, rate: Decimal, amount: Decimal) -> None:
        key = (description, code, rate)
        self.discounts[key] = self.discounts.get(key, ZERO) + amount

    def _allocations(self, item: dict[str, Any], field: str) -> list[tuple[Any, Decimal]]:
        found = []
        for k, allocation in enumerate(_list(item.get("discount_allocations"))):
            if isinstance(allocation, dict):
                amount = _amount(allocation.get("amount"), f"{field}.discount_allocations[{k}].amount", required=True)
                found.append((allocation.get("discount_application_index"), amount))
        return found

    def _lines(self) -> tuple[list[dict[str, Any]], list[tuple[Decimal, Decimal]]]:
        items = self.order.get("line_items")
        if not isinstance(items, list) or not items:
            raise MappingError("line_items", "the order has no line items")
        lines: list[dict[str, Any]] = []
        weights: list[tuple[Decimal, Decimal]] = []
        for i, item in enumerate(items):
            field = f"line_items[{i}]"
            if not isinstance(item, dict):
                raise MappingError(field, "expected an object")
            quantity = _amount(item.get("quantity"), f"{field}.quantity", required=True)
            price = _amount(item.get("price"), f"{field}.price", required=True)
            amount = _cents(quantity * price)
            allocations = self._allocations(item, field)
            discount = (sum((a for _, a in allocations), ZERO) if allocations
                        else _amount(item.get("total_discount"), f"{field}.total_discount", required=False))
            rate = self._rate(item, field, amount - discount)
            if allocations:
                for index, allocated in allocations:
                    description, code = self._application(index)
                    self._add_discount(description, code, rate, allocated)
            elif discount:
                self._add_discount(*self._codes(), rate, discount)
            name = _text(item.get("name")) or _text(item.get("title")) or _text(item.get("sku"))
            if not name:
                raise MappingError(f"{field}.title", "the line has no name")
            lines.append({"sku": _text(item.get("sku")), "name": name, "quantity": quantity,
                          "unit_price": price, "vat_rate": rate})
            weights.append((rate, amount))
        return lines, weights

    def _shipping(self) -> list[dict[str, Any]]:
        charges = []
        for j, item in enumerate(_list(self.order.get("shipping_lines"))):
            field = f"shipping_lines[{j}]"
            if not isinstance(item, dict) or item.get("is_removed") is True:
                continue
            price = _amount(item.get("price"), f"{field}.price", required=True)
            allocations = self._allocations(item, field)
            if allocations:
                discount = sum((a for _, a in allocations), ZERO)
            elif item.get("discounted_price") not in (None, ""):
                discounted = _amount(item.get("discounted_price"), f"{field}.discounted_price", required=True)
                discount = max(price - discounted, ZERO)
            else:
                discount = ZERO
            rate = self._rate(item, field, price - discount)
            self.shipping_rates.append(rate)
            if price != 0:
                charges.append({"description": _text(item.get("title")) or _text(item.get("code")),
                                "amount": _cents(price), "vat_rate": rate})
            if allocations:
                for index, allocated in allocations:
                    description, code = self._application(index)
                    self._add_discount(description, code, rate, allocated)
            elif discount:
                self._add_discount("Shipping discount", None, rate, discount)
        return charges

    def _order_level_discounts(self, line_weights: list[tuple[Decimal, Decimal]]) -> None:
        codes = [d for d in _list(self.order.get("discount_codes")) if isinstance(d, dict)]
        code_total = sum((_amount(d.get("amount"), f"discount_codes[{k}].amount", required=False)
                          for k, d in enumerate(codes)), ZERO)
        total = _amount(self.order.get("total_discounts"), "total_discounts", required=False) or code_total
        if total <= 0:
            return
        description, code = self._codes()
        shipping_part = min(total, sum((_amount(d.get("amount"), f"discount_codes[{k}].amount", required=False)
                                        for k, d in enumerate(codes) if d.get("type") == "shipping"), ZERO))
        if shipping_part and self.shipping_rates:
            self._add_discount(description, code, self.shipping_rates[0], _cents(shipping_part))
        else:
            shipping_part = ZERO
        for rate, share in _spread(_cents(total - shipping_part), line_weights):
            self._add_discount(description, code, rate, share)
