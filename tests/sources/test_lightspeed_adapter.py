"""Lightspeed eCom: md5 signature, and `{"order": …}` → canonical order (to the cent)."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from app.integrations.settings import IntegrationSettings
from app.orders.canonical import CanonicalOrder
from app.sources.base import MappingError, SignatureError
from app.sources.lightspeed import DEFAULT_PROCESSABLE_STATUSES, LightspeedAdapter, sign
from tests.sources.support import balance, change_one_byte, payload, raw

SECRET = "b1c4e7f0a3d6c9e2f5a8b1c4d7e0f3a6"
NOW = 1_742_000_000.0
adapter = LightspeedAdapter()
incl = IntegrationSettings(processable_statuses=DEFAULT_PROCESSABLE_STATUSES, prices_include_vat=True)
excl = IntegrationSettings(processable_statuses=DEFAULT_PROCESSABLE_STATUSES, prices_include_vat=False)

COMMON = {
    "source_order_id": "402918331",
    "order_number": "ORD01042",
    "order_date": datetime(2025, 3, 14, 9, 22, 5, tzinfo=UTC),
    "currency": "EUR",
    "customer": {"email": "administratie@example.com", "name": "Kees van Dijk",
                 "company": "Van Dijk Installatietechniek", "vat_number": "NL001234567B02", "phone": "+31000000000"},
    "billing_address": {"name": "Kees van Dijk", "company": "Van Dijk Installatietechniek",
                        "line1": "Voorbeeldstraat 7 A", "postcode": "5600 AA", "city": "Eindhoven", "country": "NL"},
    "shipping_address": {"name": "Kees van Dijk", "line1": "Werkplaatsweg 21", "line2": "Hal 2",
                         "postcode": "5600 AB", "city": "Eindhoven", "country": "NL"},
    "total": "124.35",
    "total_vat": "19.13",
    "payment_method": "ideal",
    "status": "paid",
}

COMPANY_INCL = CanonicalOrder.model_validate({
    **COMMON,
    "prices_include_vat": True,
    "lines": [
        {"sku": "RK-CHR-12", "name": 'Radiatorkraan - Chroom 1/2"', "quantity": "4", "unit_price": "25.00",
         "vat_rate": "21"},
        {"sku": "BOEK-INST", "name": "Installatiehandboek", "quantity": "1", "unit_price": "30.00", "vat_rate": "9"},
    ],
    "shipping": [{"description": "PostNL - Standaard", "amount": "7.00", "vat_rate": "21"}],
    "payment_costs": [{"description": "iDEAL", "amount": "0.35", "vat_rate": "21"}],
    "discounts": [
        {"description": "VOORJAAR10", "code": "VOORJAAR10", "amount": "10.00", "vat_rate": "21"},
        {"description": "VOORJAAR10", "code": "VOORJAAR10", "amount": "3.00", "vat_rate": "9"},
    ],
})

COMPANY_EXCL = CanonicalOrder.model_validate({
    **COMMON,
    "prices_include_vat": False,
    "lines": [
        # priceExcl 82.6446 → 82.64 for 4
        {"sku": "RK-CHR-12", "name": 'Radiatorkraan - Chroom 1/2"', "quantity": "4", "unit_price": "20.66",
         "vat_rate": "21"},
        {"sku": "BOEK-INST", "name": "Installatiehandboek", "quantity": "1", "unit_price": "27.52", "vat_rate": "9"},
    ],
    "shipping": [{"description": "PostNL - Standaard", "amount": "5.79", "vat_rate": "21"}],
    "payment_costs": [{"description": "iDEAL", "amount": "0.29", "vat_rate": "21"}],
    "discounts": [
        # discountExcl 8.2645 → 8.26 and 2.7523 → 2.75 leave 1 cent against priceExcl 105.22;
        # the largest discount takes it.
        {"description": "VOORJAAR10", "code": "VOORJAAR10", "amount": "8.27", "vat_rate": "21"},
        {"description": "VOORJAAR10", "code": "VOORJAAR10", "amount": "2.75", "vat_rate": "9"},
    ],
})


def company() -> dict:
    return payload("lightspeed", "order_company.json")


def consumer() -> dict:
    return payload("lightspeed", "order_consumer.json")


def headers_for(body: bytes, secret: str = SECRET) -> dict[str, str]:
    return {"x-signature": sign(secret, body), "content-type": "application/json",
            "user-agent": "Lightspeed eCom webhooks"}


# --- mapping ---------------------------------------------------------------------------


def test_company_order_incl_vat_maps_to_the_cent() -> None:
    order = adapter.to_order(company(), incl)
    assert order == COMPANY_INCL
    # 100.00 + 30.00 + 7.00 + 0.35 − 13.00 = priceIncl
    assert balance(order) == order.total == Decimal("124.35")


def test_company_order_excl_vat_maps_to_the_cent() -> None:
    order = adapter.to_order(company(), excl)
    assert order == COMPANY_EXCL
    # 82.64 + 27.52 + 5.79 + 0.29 − 11.02 + VAT 19.13 = priceIncl
    assert balance(order) == order.total == Decimal("124.35")


def test_a_signed_delivery_goes_through_verify_decode_and_to_order() -> None:
    body = raw("lightspeed", "order_company.json")
    headers = headers_for(body)
    adapter.verify(SECRET, body, headers, NOW)
    assert not adapter.is_ping(body, headers)
    assert adapter.to_order(adapter.decode(body, headers), incl) == COMPANY_INCL


def test_consumer_order_with_false_for_null_maps() -> None:
    order = adapter.to_order(consumer(), incl)
    assert order.customer.email is None  # ""
    assert order.customer.company is None and order.customer.vat_number is None  # "" and isCompany false
    assert order.customer.name == "Lotte Peeters" and order.customer.phone == "+32000000000"
    assert order.billing_address is not None and order.billing_address.country == "BE"
    assert order.shipping_address is None  # fields false / "" and addressShippingCountry false
    assert order.shipping == [] and order.payment_costs == [] and order.discounts == []  # pickup, 0.00
    assert [(line.name, line.sku, line.quantity, line.unit_price, line.vat_rate) for line in order.lines] == [
        ("Vaatwastabletten - 60 stuks", "VWT-60", Decimal(2), Decimal("9.95"), Decimal("21"))]  # rate computed
    assert order.status == "not_paid" and not incl.is_processable(order.status)
    assert balance(order) == order.total == Decimal("19.90")
    assert order.total_vat == Decimal("3.45")


def test_consumer_order_excl_vat_unit_price_keeps_the_line_to_the_cent() -> None:
    order = adapter.to_order(consumer(), excl)
    assert order.lines[0].unit_price == Decimal("8.225") and order.lines[0].amount == Decimal("16.45")
    assert balance(order) == order.total


def test_order_discount_without_product_discounts_is_spread_over_the_rates() -> None:
    body = company()
    for product in body["order"]["products"]["resource"]["embedded"]:
        product["discountExcl"] = product["discountIncl"] = 0
    order = adapter.to_order(body, incl)
    # excess 13.00 over 100.00 at 21 % and 30.00 at 9 %
    assert [(d.amount, d.vat_rate, d.code) for d in order.discounts] == [
        (Decimal("10.00"), Decimal("21"), "VOORJAAR10"), (Decimal("3.00"), Decimal("9"), "VOORJAAR10")]
    assert balance(order) == order.total


def test_product_prices_already_net_of_the_discount_give_no_discount() -> None:
    body = company()
    products = body["order"]["products"]["resource"]["embedded"]
    products[0].update(priceIncl=90, priceExcl=74.3802)
    products[1].update(priceIncl=27, priceExcl=24.7706)
    order = adapter.to_order(body, incl)
    assert order.discounts == []
    assert balance(order) == order.total


def test_undiscounted_order_keeps_its_difference_for_the_totals_check() -> None:
    body = company()
    body["order"].update(isDiscounted=False, discountAmount=0, discountCouponCode="")
    for product in body["order"]["products"]["resource"]["embedded"]:
        product["discountExcl"] = product["discountIncl"] = 0
    order = adapter.to_order(body, incl)
    assert order.discounts == []
    assert order.total - balance(order) == Decimal("-13.00")


def test_products_as_a_plain_list_and_a_bare_order_are_accepted() -> None:
    body = company()["order"]
    body["products"] = body["products"]["resource"]["embedded"]
    assert adapter.to_order(body, incl) == COMPANY_INCL


def test_tax_rate_from_tax_rates_when_tax_rate_is_absent() -> None:
    body = company()
    product = body["order"]["products"]["resource"]["embedded"][1]
    del product["taxRate"]
    assert adapter.to_order(body, incl).lines[1].vat_rate == Decimal("9")
    del product["taxRates"]
    assert adapter.to_order(body, incl).lines[1].vat_rate == Decimal("9")  # from 30.00 / 27.52


def test_zero_tax_rate_is_a_rate_not_a_missing_value() -> None:
    body = company()
    product = body["order"]["products"]["resource"]["embedded"][1]
    product.update(taxRate=0, priceExcl=30, basePriceExcl=30, discountExcl=3)
    assert adapter.to_order(body, incl).lines[1].vat_rate == Decimal("0")


def test_cancelled_order_is_not_paid_whatever_its_payment_status() -> None:
    body = company()
    body["order"]["status"] = "cancelled"
    order = adapter.to_order(body, incl)
    assert order.status == "cancelled" and not incl.is_processable(order.status)


def test_order_status_is_used_without_a_payment_status() -> None:
    body = company()
    del body["order"]["paymentStatus"]
    assert adapter.to_order(body, incl).status == "processing_awaiting_shipment"


@pytest.mark.parametrize(("currency", "expected"), [({"code": "chf"}, "CHF"), ("gbp", "GBP"), (False, "EUR")])
def test_currency_when_the_payload_carries_one(currency, expected: str) -> None:
    body = company()
    body["order"]["currency"] = currency
    assert adapter.to_order(body, incl).currency == expected


@pytest.mark.parametrize(
    "products",
    [
        {"resource": {"id": False, "url": "orders/402918331/products",
                      "link": "https://api.webshopapp.com/nl/orders/402918331/products.json"}},
        None,
        False,
        [],
    ],
)
def test_order_without_embedded_products_is_refused_on_lines(products) -> None:
    body = company()
    body["order"]["products"] = products
    with pytest.raises(MappingError) as error:
        adapter.to_order(body, incl)
    assert error.value.field == "lines" and error.value.source_order_id == "402918331"


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda o: o.pop("priceIncl"), "priceIncl"),
        (lambda o: o.update(createdAt="gisteren"), "createdAt"),
        (lambda o: o.update(paymentStatus=False, status=False), "paymentStatus"),
        (lambda o: o["products"]["resource"]["embedded"][0].update(quantityOrdered=None),
         "products[0].quantityOrdered"),
        (lambda o: o["products"]["resource"]["embedded"][1].update(priceIncl="dertig"), "products[1].priceIncl"),
        (lambda o: o.update(addressBillingCountry=False), "addressBillingCountry"),
        (lambda o: o.update(addressShippingCountry={"code": "nederland"}), "addressShippingCountry"),
    ],
)
def test_unmappable_order_names_the_field(mutate, field: str) -> None:
    body = company()
    mutate(body["order"])
    with pytest.raises(MappingError) as error:
        adapter.to_order(body, incl)
    assert error.value.field == field and error.value.source_order_id == "402918331"


# --- signature and delivery id ---------------------------------------------------------------


def test_signature_is_md5_of_payload_then_secret() -> None:
    body = raw("lightspeed", "order_company.json")
    assert sign(SECRET, body) == hashlib.md5(body + SECRET.encode()).hexdigest()
    adapter.verify(SECRET, body, {"X-Signature": sign(SECRET, body).upper()}, NOW)


def test_missing_signature_is_refused() -> None:
    body = raw("lightspeed", "order_company.json")
    with pytest.raises(SignatureError, match="missing"):
        adapter.verify(SECRET, body, {"content-type": "application/json"}, NOW)


def test_wrong_secret_is_refused() -> None:
    body = raw("lightspeed", "order_company.json")
    with pytest.raises(SignatureError):
        adapter.verify(SECRET, body, headers_for(body, secret="0" * 32), NOW)


def test_body_changed_by_one_byte_is_refused() -> None:
    body = raw("lightspeed", "order_company.json")
    headers = headers_for(body)
    tampered = change_one_byte(body, b'"priceIncl": 124.35', b'"priceIncl": 124.36')
    with pytest.raises(SignatureError):
        adapter.verify(SECRET, tampered, headers, NOW)


def test_reserialised_json_with_php_floats_breaks_the_signature() -> None:
    body = raw("lightspeed", "order_company.json")
    headers = headers_for(body)
    reserialised = json.dumps(json.loads(body), indent=2, ensure_ascii=False).encode()
    assert b"61.299999999999997" in body and b"61.299999999999997" not in reserialised
    with pytest.raises(SignatureError):
        adapter.verify(SECRET, reserialised, headers, NOW)


def test_delivery_id_is_a_hash_of_the_body() -> None:
    body = raw("lightspeed", "order_company.json")
    first = adapter.delivery_id(body, headers_for(body))
    assert first.startswith("sha256:") and first == adapter.delivery_id(body, {})
    assert first != adapter.delivery_id(raw("lightspeed", "order_consumer.json"), {})


def test_default_processable_statuses() -> None:
    assert LightspeedAdapter.DEFAULT_PROCESSABLE_STATUSES == ["paid"]
    assert incl.is_processable(adapter.to_order(company(), incl).status)
