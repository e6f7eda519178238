"""The `lightspeed` source: Lightspeed eCom (C-Series) `orders/*` webhooks.

Signature: `X-Signature` is the hex MD5 of the raw payload followed by the app's secret
(`md5(body + secret)`), compared in constant time. It is computed over the exact bytes:
re-serialised JSON (PHP floats such as 61.299999999999997 come back as 61.3) never matches. Lightspeed sends
no delivery id that we know of, so the delivery id is a hash of the body.

Body: `{"order": {...}}` (a bare order object is accepted too). `false` stands where null is
meant (`referralId`, `birthDate`, `addressShippingCompany`, …) and is read as absent.
The order lines are the `products` resource: either a list, or `{"resource": {"embedded":
[...]}}`. A body whose products are only a link (not embedded) cannot be booked from the
webhook alone and is refused with a MappingError on `lines`.

Status: Lightspeed has an order `status` (`processing_awaiting_payment`,
`processing_awaiting_shipment`, `completed_shipped`, `cancelled`, …) and a `paymentStatus`
(`not_paid`, `paid`: the only two values in the material we have). Bookkeeping cares about
payment, so the canonical status is the `paymentStatus`, and `paid` means paid:
`DEFAULT_PROCESSABLE_STATUSES` is `["paid"]`. A cancelled order (`status` starting with
"cancel") gets the status `cancelled` whatever its payment status. Without a
`paymentStatus`, the order `status` is used.

VAT number: `companyVatNumber` (spaces, dots and hyphens removed, upper-cased); the company
is `companyName`, taken when `isCompany` is true or the name is filled in.

Amounts: every amount comes both excl. and incl. VAT (`priceExcl`/`priceIncl`, often with 4
decimals). The payload does not say which the shop works in, so the integration's
`prices_include_vat` picks the convention; money is rounded to cents. `total` is
`priceIncl` and `total_vat` is `priceIncl - priceExcl`. There is no currency on the order;
`currency` (a code or `{"code": …}`) is used when present, else EUR.

Mapping decisions:
* Lines: product `priceIncl`/`priceExcl` (the line total; `basePrice* × quantityOrdered`
  when absent) with VAT rate `taxRate` (a fraction, 0.21 → 21), else the sum of
  `taxRates[].rate`, else computed from the incl./excl. prices and rounded to a known rate.
  The name is `productTitle`, plus ` - variantTitle` when that says more; the SKU is `sku`,
  else `articleCode`, else `ean`.
* Shipping: `shipmentPriceIncl`/`Excl` at `shipmentTaxRate`, named `shipmentTitle`; payment
  costs: `paymentPriceIncl`/`Excl` at `paymentTaxRate`, named `paymentTitle`. Zero amounts
  are left out. These prices are taken as charged (after any shipment discount).
* Discounts: the vendor docs do not say whether product prices are before or after the
  order discount, so the discount is what the parts exceed the order price by
  (`Σ lines + shipping + payment − priceIncl/Excl`), and only when the order says it is
  discounted (`isDiscounted`, `discountAmount`, `discountCouponCode`, or product/shipment
  discounts). When the products' `discountIncl`/`discountExcl` add up to that excess (to the
  cent per product) they give one discount per VAT rate, the largest absorbing the rounding
  cents; otherwise the excess is spread over the lines' VAT rates in proportion to their
  amounts. An undiscounted order whose parts do not add up keeps the difference, for the
  totals check to catch.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from app.integrations.settings import IntegrationSettings
from app.orders.canonical import CENT, CanonicalOrder, normalise_country
from app.sources._common import ZERO, canonical_order, known_rate, unit_price
from app.sources._common import amount as _read_amount
from app.sources._common import as_list as _list
from app.sources._common import cents as _cents
from app.sources._common import clean_vat as _clean_vat
from app.sources._common import header as _header
from app.sources._common import join as _join
from app.sources._common import percent as _percent
from app.sources._common import spread as _spread
from app.sources._common import text as _text
from app.sources.base import MappingError, SignatureError, SourceAdapter

DEFAULT_PROCESSABLE_STATUSES = ["paid"]

SIGNATURE_HEADER = "x-signature"
DEFAULT_CURRENCY = "EUR"
# Why a rate cannot be computed for an amount incl. VAT whose amount excl. VAT is zero.
ZERO_EXCL = "an amount incl. VAT on a zero amount excl. VAT"


def sign(secret: str, body: bytes) -> str:
    """The `X-Signature` value Lightspeed sends for `body` (used by demo and tests)."""
    return hashlib.md5(body + secret.encode()).hexdigest()


def _absent(value: Any) -> bool:
    """None, `false` (Lightspeed's null) or an empty string; 0 is a value."""
    return value is None or value is False or (isinstance(value, str) and not value.strip())


def _amount(value: Any, field: str, *, required: bool = False) -> Decimal:
    """An amount, reading Lightspeed's `false` as absent like null."""
    return _read_amount(None if value is False else value, field, required=required)


def embedded_products(order: dict[str, Any]) -> list[Any] | None:
    """The order's product lines when the body carries them, else None."""
    products = order.get("products")
    if isinstance(products, list):
        return products
    if isinstance(products, dict):
        resource = products.get("resource")
        if isinstance(resource, dict) and isinstance(resource.get("embedded"), list):
            return resource["embedded"]
        if isinstance(resource, dict) and isinstance(resource.get("embedded"), dict):
            return list(resource["embedded"].values())
    return None


class LightspeedAdapter(SourceAdapter):
    name = "lightspeed"
    # Read by integration creation (app.integrations.service.default_settings_for).
    DEFAULT_PROCESSABLE_STATUSES = DEFAULT_PROCESSABLE_STATUSES

    def verify(self, secret: str, body: bytes, headers: Mapping[str, str], now: float) -> None:
        sent = _header(headers, SIGNATURE_HEADER)
        if not sent:
            raise SignatureError("missing X-Signature header")
        if not hmac.compare_digest(sent.strip().lower().encode(), sign(secret, body).encode()):
            raise SignatureError("X-Signature does not match the body")

    def to_order(self, payload: Any, settings: IntegrationSettings) -> CanonicalOrder:
        if isinstance(payload, dict) and isinstance(payload.get("order"), dict):
            payload = payload["order"]
        if not isinstance(payload, dict):
            raise MappingError("body", "expected a JSON object with a Lightspeed order")
        return canonical_order(_text(payload.get("id")), lambda: _OrderMapping(payload, settings).build())


class _OrderMapping:
    """One Lightspeed order → the canonical order's fields (a dict for `CanonicalOrder`)."""

    def __init__(self, order: dict[str, Any], settings: IntegrationSettings) -> None:
        self.order = order
        self.incl = settings.prices_include_vat

    def _pick(self, item: dict[str, Any], stem: str, field: str) -> tuple[Decimal, Decimal]:
        """(excl, incl) of `<stem>Excl`/`<stem>Incl`, rounded to cents."""
        return (_cents(_amount(item.get(f"{stem}Excl"), f"{field}{stem}Excl")),
                _cents(_amount(item.get(f"{stem}Incl"), f"{field}{stem}Incl")))

    def _conv(self, pair: tuple[Decimal, Decimal]) -> Decimal:
        return pair[1] if self.incl else pair[0]

    def build(self) -> dict[str, Any]:
        order = self.order
        lines, weights, product_discounts, products_discounted = self._lines()
        shipping, shipping_discounted = self._charge("shipment")
        payment, _ = self._charge("payment")
        order_price = (_cents(_amount(order.get("priceExcl"), "priceExcl", required=True)),
                       _cents(_amount(order.get("priceIncl"), "priceIncl", required=True)))
        parts = sum((self._conv(pair) for pair in weights), ZERO)
        parts += sum((c["amount"] for c in shipping + payment), ZERO)
        excess = parts - self._conv(order_price)
        discounted = (order.get("isDiscounted") is True or products_discounted or shipping_discounted
                      or _amount(order.get("discountAmount"), "discountAmount") > 0
                      or _text(order.get("discountCouponCode")) is not None)
        code = _text(order.get("discountCouponCode"))
        discounts: list[dict[str, Any]] = []
        if discounted and excess > 0:
            from_products = sum(product_discounts.values(), ZERO)
            if product_discounts and abs(from_products - excess) <= CENT * max(1, len(lines)):
                # Rounding each product's discount to cents can leave a cent or so; the
                # largest share absorbs it so that the order adds up to its own price.
                adjusted = dict(product_discounts)
                largest = max(adjusted, key=lambda rate: adjusted[rate])
                adjusted[largest] += excess - from_products
                shares = list(adjusted.items())
            else:
                shares = _spread(excess, [(rate, self._conv(pair)) for rate, pair in
                                          zip((line["vat_rate"] for line in lines), weights, strict=True)])
            discounts = [{"description": code or "Discount", "code": code, "amount": amount, "vat_rate": rate}
                         for rate, amount in shares if amount]
        return {
            "source_order_id": _text(order.get("id")),
            "order_number": _text(order.get("number")) or _text(order.get("id")),
            "order_date": self._date(),
            "currency": self._currency(),
            "prices_include_vat": self.incl,
            "customer": self._customer(),
            "billing_address": self._address("addressBilling"),
            "shipping_address": self._address("addressShipping"),
            "lines": lines,
            "shipping": shipping,
            "payment_costs": payment,
            "discounts": discounts,
            "total": order_price[1],
            "total_vat": order_price[1] - order_price[0],
            "payment_method": _text(order.get("paymentId")) or _text(order.get("paymentTitle")),
            "status": self._status(),
        }

    # -- parts -------------------------------------------------------------------------

    def _status(self) -> str:
        status = _text(self.order.get("status"))
        if status and status.lower().startswith("cancel"):
            return "cancelled"
        payment_status = _text(self.order.get("paymentStatus")) or status
        if not payment_status:
            raise MappingError("paymentStatus", "the order has no payment status")
        return payment_status

    def _currency(self) -> str:
        value = self.order.get("currency")
        if isinstance(value, dict):
            value = value.get("code")
        return (_text(value) or DEFAULT_CURRENCY).upper()

    def _date(self) -> datetime:
        value = self.order.get("createdAt")
        if isinstance(value, str) and value.strip():
            try:
                return datetime.fromisoformat(value.strip())
            except ValueError as exc:
                raise MappingError("createdAt", f"{value!r} is not an ISO 8601 date") from exc
        raise MappingError("createdAt", "the order has no date")

    def _customer(self) -> dict[str, Any]:
        order = self.order
        company = _text(order.get("companyName"))
        return {
            "email": _text(order.get("email")),
            "name": _join(order.get("firstname"), order.get("middlename"), order.get("lastname"))
            or _text(order.get("addressBillingName")),
            "company": company if (order.get("isCompany") is True or company) else None,
            "vat_number": _clean_vat(_text(order.get("companyVatNumber"))),
            "phone": _text(order.get("phone")) or _text(order.get("mobile")),
        }

    def _address(self, prefix: str) -> dict[str, Any] | None:
        order = self.order
        address = {
            "name": _text(order.get(f"{prefix}Name")),
            "company": _text(order.get(f"{prefix}Company")),
            "line1": _join(order.get(f"{prefix}Street"), order.get(f"{prefix}Number"),
                           order.get(f"{prefix}Extension")),
            "line2": _text(order.get(f"{prefix}Street2")),
            "postcode": _text(order.get(f"{prefix}Zipcode")),
            "city": _text(order.get(f"{prefix}City")),
        }
        if prefix == "addressBilling" and address["company"] is None:
            address["company"] = self._customer()["company"]
        country = order.get(f"{prefix}Country")
        code = _text(country.get("code")) if isinstance(country, dict) else _text(country)
        if code is None:
            if any(address[key] for key in ("line1", "line2", "postcode", "city")):
                raise MappingError(f"{prefix}Country", "the address has no country")
            return None
        try:
            address["country"] = normalise_country(code)
        except ValueError as exc:
            raise MappingError(f"{prefix}Country", str(exc)) from exc
        return address

    def _rate(self, item: dict[str, Any], key: str, field: str, pair: tuple[Decimal, Decimal]) -> Decimal:
        if not _absent(item.get(key)):
            return _percent(_amount(item.get(key), f"{field}{key}") * 100)
        rates = [r for r in _list(item.get(f"{key}s")) if isinstance(r, dict)]
        if rates:
            return _percent(sum((_amount(r.get("rate"), f"{field}{key}s.rate") for r in rates), ZERO) * 100)
        return known_rate(pair[0], pair[1] - pair[0], f"{field}{key}", zero_net=ZERO_EXCL)

    def _lines(self) -> tuple[list[dict[str, Any]], list[tuple[Decimal, Decimal]],
                              dict[Decimal, Decimal], bool]:
        products = embedded_products(self.order)
        if not products:
            raise MappingError("lines", "the order's products are not embedded in the body")
        lines: list[dict[str, Any]] = []
        weights: list[tuple[Decimal, Decimal]] = []
        discounts: dict[Decimal, Decimal] = {}
        any_discount = False
        for i, product in enumerate(products):
            field = f"products[{i}]."
            if not isinstance(product, dict):
                raise MappingError(f"products[{i}]", "expected an object")
            quantity = _amount(product.get("quantityOrdered"), f"{field}quantityOrdered", required=True)
            pair = self._pick(product, "price", field)
            if _absent(product.get("priceIncl")) and _absent(product.get("priceExcl")):
                base = self._pick(product, "basePrice", field)
                pair = (_cents(base[0] * quantity), _cents(base[1] * quantity))
            rate = self._rate(product, "taxRate", field, pair)
            discount = self._conv(self._pick(product, "discount", field))
            if discount:
                any_discount = True
                discounts[rate] = discounts.get(rate, ZERO) + discount
            title = _text(product.get("productTitle"))
            variant = _text(product.get("variantTitle"))
            name = _join(title, variant, sep=" - ") if variant and variant != title else title
            name = name or variant or _text(product.get("sku")) or _text(product.get("articleCode"))
            if not name:
                raise MappingError(f"{field}productTitle", "the product has no title")
            sku = _text(product.get("sku")) or _text(product.get("articleCode")) or _text(product.get("ean"))
            amount = self._conv(pair)
            lines.append({"sku": sku, "name": name, "quantity": quantity,
                          "unit_price": unit_price(amount, quantity, f"products[{i}].quantityOrdered"),
                          "vat_rate": rate})
            weights.append(pair)
        return lines, weights, discounts, any_discount

    def _charge(self, stem: str) -> tuple[list[dict[str, Any]], bool]:
        """Shipping (`shipment…`) or payment costs (`payment…`) as a charge list."""
        pair = self._pick(self.order, f"{stem}Price", "")
        discounted = self._conv(self._pick(self.order, f"{stem}Discount", "")) != 0
        amount = self._conv(pair)
        if amount == 0:
            return [], discounted
        rate = self._rate(self.order, f"{stem}TaxRate", "", pair)
        return [{"description": _text(self.order.get(f"{stem}Title")), "amount": amount,
                 "vat_rate": rate}], discounted

