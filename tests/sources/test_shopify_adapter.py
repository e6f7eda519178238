"""Shopify: signature, delivery id, and order JSON → canonical order (to the cent)."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from app.integrations.settings import IntegrationSettings
from app.orders.canonical import CanonicalOrder
from app.sources.base import MappingError, SignatureError
from app.sources.shopify import DEFAULT_PROCESSABLE_STATUSES, ShopifyAdapter, sign
from tests.sources.support import balance, change_one_byte, payload, raw, walk_amounts

SECRET = "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"
NOW = 1_742_000_000.0
adapter = ShopifyAdapter()
settings = IntegrationSettings(processable_statuses=DEFAULT_PROCESSABLE_STATUSES)

COMPANY_ORDER = CanonicalOrder.model_validate({
    "source_order_id": "5820194451234",
    "order_number": "#1042",
    "order_date": datetime(2025, 3, 14, 9, 22, 5, tzinfo=UTC),
    "currency": "EUR",
    "prices_include_vat": True,
    "customer": {"email": "inkoop@example.com", "name": "Jan de Vries", "company": "Koffiebar De Boon B.V.",
                 "vat_number": "NL852871234B01", "phone": "+31000000000"},
    "billing_address": {"name": "Jan de Vries", "company": "Koffiebar De Boon B.V.", "line1": "Voorbeeldstraat 12",
                        "line2": "Unit 3", "postcode": "3500 AA", "city": "Utrecht", "country": "NL"},
    "shipping_address": {"name": "Jan de Vries", "company": "Koffiebar De Boon B.V.", "line1": "Achterom 4",
                         "postcode": "3500 AB", "city": "Utrecht", "country": "NL"},
    "lines": [
        {"sku": "KB-ESP-1000", "name": "Koffiebonen Espresso - 1kg", "quantity": "2", "unit_price": "24.95",
         "vat_rate": "9"},
        {"sku": "EM-CL-01", "name": "Espressomachine Classic", "quantity": "1", "unit_price": "349.00",
         "vat_rate": "21"},
        {"sku": "FEE-IDEAL", "name": "Betaalkosten iDEAL", "quantity": "1", "unit_price": "0.29", "vat_rate": "21"},
    ],
    "shipping": [{"description": "PostNL Standaard", "amount": "6.95", "vat_rate": "21"}],
    "payment_costs": [],
    "discounts": [{"description": "KOFFIE5", "code": "KOFFIE5", "amount": "5.00", "vat_rate": "9"}],
    "total": "401.14",
    "total_vat": "65.54",
    "payment_method": "mollie_ideal",
    "status": "paid",
})


def company() -> dict:
    return payload("shopify", "order_company_nl.json")


def guest() -> dict:
    return payload("shopify", "order_guest_excl.json")


def headers_for(body: bytes, secret: str = SECRET) -> dict[str, str]:
    return {
        "x-shopify-hmac-sha256": sign(secret, body),
        "x-shopify-topic": "orders/paid",
        "x-shopify-shop-domain": "koffie-example.myshopify.com",
        "x-shopify-api-version": "2025-01",
        "x-shopify-webhook-id": "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
        "x-shopify-event-id": "98880550-7158-44d4-b7cd-2c97c8a091b5",
        "x-shopify-triggered-at": "2025-03-14T09:22:07.123Z",
    }


# --- mapping ---------------------------------------------------------------------------


def test_company_order_maps_to_the_canonical_order_to_the_cent() -> None:
    order = adapter.to_order(company(), settings)
    assert order == COMPANY_ORDER
    # Σ lines (49.90 + 349.00 + 0.29) + shipping 6.95 − discount 5.00 = total_price
    assert balance(order) == order.total == Decimal("401.14")


def test_wrapped_and_unwrapped_bodies_give_the_same_order() -> None:
    bare = adapter.to_order(company(), settings)
    wrapped = adapter.to_order({"order": company()}, settings)
    assert bare == wrapped == COMPANY_ORDER


def test_a_signed_delivery_goes_through_verify_decode_and_to_order() -> None:
    body = raw("shopify", "order_company_nl.json")
    headers = headers_for(body)
    adapter.verify(SECRET, body, headers, NOW)
    assert not adapter.is_ping(body, headers)
    assert adapter.to_order(adapter.decode(body, headers), settings) == COMPANY_ORDER


def test_guest_order_without_customer_or_addresses_still_maps() -> None:
    order = adapter.to_order(guest(), settings)
    assert order.customer.email is None  # "" and a null contact_email
    assert order.customer.name is None and order.customer.company is None and order.customer.vat_number is None
    assert order.billing_address is None and order.shipping_address is None
    assert order.prices_include_vat is False
    assert order.status == "pending"
    assert order.payment_method == "Bank Deposit"  # payment_gateway_names is empty: `gateway`
    assert [(line.sku, line.unit_price, line.vat_rate) for line in order.lines] == [
        ("NB-A5-LIN", Decimal("12.50"), Decimal("21")), (None, Decimal("27.50"), Decimal("9"))]
    assert [(c.description, c.amount, c.vat_rate) for c in order.shipping] == [
        ("Brievenbuspakje", Decimal("4.50"), Decimal("21"))]


def test_order_level_discount_code_is_spread_over_the_vat_rates() -> None:
    # No discount_allocations at all (older API): total_discounts 6.50 over lines of 37.50 (21 %)
    # and 27.50 (9 %) → 3.75 and 2.75.
    order = adapter.to_order(guest(), settings)
    assert [(d.code, d.amount, d.vat_rate) for d in order.discounts] == [
        ("VOORJAAR10", Decimal("3.75"), Decimal("21")), ("VOORJAAR10", Decimal("2.75"), Decimal("9"))]
    # excl. VAT: 65.00 + 4.50 − 6.50 + VAT 10.27 = 73.27
    assert balance(order) == order.total == Decimal("73.27")


def test_shop_money_is_used_not_presentment_money() -> None:
    order = adapter.to_order(guest(), settings)
    assert order.currency == "EUR" and order.total == Decimal("73.27")  # presentment: 62.91 GBP


def test_line_total_discount_is_used_when_there_are_no_allocations() -> None:
    body = company()
    first = body["line_items"][0]
    del first["discount_allocations"]
    first["total_discount"] = "5.00"
    order = adapter.to_order(body, settings)
    assert [(d.amount, d.vat_rate, d.code) for d in order.discounts] == [(Decimal("5.00"), Decimal("9"), "KOFFIE5")]
    assert balance(order) == order.total


def test_allocations_of_two_applications_on_one_line_stay_apart() -> None:
    body = company()
    body["discount_applications"].append({"target_type": "line_item", "type": "automatic", "value": "1.0",
                                          "value_type": "fixed_amount", "allocation_method": "across",
                                          "target_selection": "all", "title": "Vaste klant"})
    body["line_items"][1]["discount_allocations"] = [{"amount": "1.00", "discount_application_index": 1}]
    body["total_price"] = "400.14"
    order = adapter.to_order(body, settings)
    assert [(d.description, d.code, d.amount, d.vat_rate) for d in order.discounts] == [
        ("KOFFIE5", "KOFFIE5", Decimal("5.00"), Decimal("9")),
        ("Vaste klant", None, Decimal("1.00"), Decimal("21")),
    ]
    assert balance(order) == order.total == Decimal("400.14")


def test_shipping_discount_is_a_discount_at_the_shipping_rate() -> None:
    body = company()
    body["shipping_lines"][0]["discounted_price"] = "0.00"
    body["shipping_lines"][0]["discount_allocations"] = [{"amount": "6.95", "discount_application_index": 1}]
    body["discount_applications"].append({"target_type": "shipping_line", "type": "discount_code",
                                          "value": "100.0", "value_type": "percentage", "code": "GRATISVERZENDEN",
                                          "allocation_method": "each", "target_selection": "all"})
    body["total_price"] = "394.19"
    order = adapter.to_order(body, settings)
    assert [(c.amount, c.vat_rate) for c in order.shipping] == [(Decimal("6.95"), Decimal("21"))]
    assert (order.discounts[-1].code, order.discounts[-1].amount, order.discounts[-1].vat_rate) == (
        "GRATISVERZENDEN", Decimal("6.95"), Decimal("21"))
    assert balance(order) == order.total == Decimal("394.19")


def test_shipping_discount_without_allocations_comes_from_discounted_price() -> None:
    body = company()
    body["shipping_lines"][0]["discounted_price"] = "2.95"
    body["total_price"] = "397.14"
    order = adapter.to_order(body, settings)
    assert (order.discounts[-1].description, order.discounts[-1].amount, order.discounts[-1].vat_rate) == (
        "Shipping discount", Decimal("4.00"), Decimal("21"))
    assert balance(order) == order.total


@pytest.mark.parametrize(
    ("change", "rate"),
    [
        ({"taxable": False}, Decimal("0")),
        ({"tax_lines": []}, Decimal("0")),
        # A 21 % tax line that carries no tax on a line that costs money: no VAT was charged.
        ({"tax_lines": [{"price": "0.00", "rate": 0.21, "title": "NL btw"}]}, Decimal("0")),
        # Two taxes on one line (US state + county): their rates add up.
        ({"tax_lines": [{"price": "25.30", "rate": 0.0725, "title": "State"},
                        {"price": "4.80", "rate": 0.01375, "title": "County"}]}, Decimal("8.625")),
        # Rates as strings work as well as JSON numbers.
        ({"tax_lines": [{"price": "60.57", "rate": "0.21", "title": "NL btw"}]}, Decimal("21")),
    ],
)
def test_line_vat_rate(change: dict, rate: Decimal) -> None:
    body = company()
    body["line_items"][1].update(change)
    assert adapter.to_order(body, settings).lines[1].vat_rate == rate


def test_amounts_as_json_numbers_or_with_four_decimals_map_the_same() -> None:
    keys = {"price", "total_price", "total_tax", "amount", "total_discount", "discounted_price", "total_discounts"}
    as_numbers = walk_amounts(company(), keys, lambda v: float(v) if isinstance(v, str) else v)
    four_decimals = walk_amounts(company(), keys, lambda v: f"{Decimal(str(v)):.4f}")
    assert as_numbers["total_price"] == 401.14 and four_decimals["total_price"] == "401.1400"
    assert adapter.to_order(as_numbers, settings) == COMPANY_ORDER
    assert adapter.to_order(four_decimals, settings) == COMPANY_ORDER


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("vat_number", "NL852871234B01", "NL852871234B01"),
        ("VAT number", "nl 8528.71.234 B01", "NL852871234B01"),
        ("VAT-Number", "BE0123.456.749", "BE0123456749"),
        ("BTW nummer", "NL852871234B01", "NL852871234B01"),
        ("btw_nummer", "NL852871234B01", "NL852871234B01"),
        ("Vat_Id", "DE123456789", "DE123456789"),
        ("Tax number", "NL852871234B01", None),  # not a documented name
        ("vat_number", "   ", None),
    ],
)
def test_vat_number_from_note_attributes(name: str, value: str, expected: str | None) -> None:
    body = company()
    body["note_attributes"] = [{"name": "Referentie", "value": "PO-2291"}, {"name": name, "value": value}]
    assert adapter.to_order(body, settings).customer.vat_number == expected


def test_vat_number_in_free_text_note_is_not_guessed() -> None:
    body = company()
    body["note_attributes"] = []
    body["customer"]["note"] = "VAT registration number: NL852871234B01"
    assert adapter.to_order(body, settings).customer.vat_number is None


def test_status_is_the_financial_status_and_cancelled_wins() -> None:
    body = company()
    body["financial_status"] = "partially_refunded"
    assert adapter.to_order(body, settings).status == "partially_refunded"
    body["cancelled_at"] = "2025-03-15T08:00:00+01:00"
    body["financial_status"] = "paid"
    order = adapter.to_order(body, settings)
    assert order.status == "cancelled" and not settings.is_processable(order.status)


def test_processed_at_is_the_order_date_and_created_at_the_fallback() -> None:
    body = company()
    body["processed_at"] = "2025-03-01T12:00:00+01:00"  # an imported order keeps its own date
    assert adapter.to_order(body, settings).order_date == datetime(2025, 3, 1, 11, 0, tzinfo=UTC)
    body["processed_at"] = None
    assert adapter.to_order(body, settings).order_date == datetime(2025, 3, 14, 9, 22, 3, tzinfo=UTC)


def test_missing_taxes_included_uses_the_integration_default() -> None:
    body = guest()
    del body["taxes_included"]
    assert adapter.to_order(body, IntegrationSettings(prices_include_vat=False)).prices_include_vat is False
    assert adapter.to_order(body, IntegrationSettings(prices_include_vat=True)).prices_include_vat is True
    assert adapter.to_order(company(), IntegrationSettings(prices_include_vat=False)) == COMPANY_ORDER


def test_name_only_address_without_country_is_dropped() -> None:
    body = company()
    body["shipping_address"] = {"first_name": "Jan", "last_name": "de Vries", "name": "Jan de Vries",
                                "address1": "", "city": "", "zip": None, "country_code": None}
    assert adapter.to_order(body, settings).shipping_address is None


def test_removed_and_free_shipping_lines_are_left_out() -> None:
    body = company()
    body["shipping_lines"][0]["is_removed"] = True
    body["shipping_lines"].append({"title": "Gratis verzending", "price": "0.00", "discounted_price": "0.00",
                                   "tax_lines": [], "discount_allocations": []})
    assert adapter.to_order(body, settings).shipping == []


# --- refused payloads --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda b: b.update(line_items=[]), "line_items"),
        (lambda b: b.pop("line_items"), "line_items"),
        (lambda b: b["line_items"][1].update(price="349,00 EUR"), "line_items[1].price"),
        (lambda b: b["line_items"][0].update(quantity=None), "line_items[0].quantity"),
        (lambda b: b["line_items"][0]["tax_lines"][0].update(rate="negen"), "line_items[0].tax_lines[0].rate"),
        (lambda b: b.pop("total_price"), "total_price"),
        (lambda b: b.update(financial_status=None), "financial_status"),
        (lambda b: b.update(processed_at="14-03-2025"), "processed_at"),
        (lambda b: b["billing_address"].update(country_code=None), "billing_address.country_code"),
        (lambda b: b["billing_address"].update(country_code="Nederland"), "billing_address.country_code"),
        (lambda b: b.update(email="inkoop-at-example.com", customer=None, contact_email=None), "customer.email"),
    ],
)
def test_unmappable_order_names_the_field(mutate, field: str) -> None:
    body = company()
    mutate(body)
    with pytest.raises(MappingError) as error:
        adapter.to_order(body, settings)
    assert error.value.field == field
    assert error.value.source_order_id == "5820194451234"


def test_body_that_is_not_an_order_is_refused() -> None:
    with pytest.raises(MappingError) as error:
        adapter.to_order([1, 2, 3], settings)
    assert error.value.field == "body"
    with pytest.raises(MappingError) as error:
        adapter.to_order({"order": {"name": "#1"}}, settings)
    assert error.value.field == "id" and error.value.source_order_id is None


# --- signature and delivery id ---------------------------------------------------------------


def test_signature_header_is_matched_case_insensitively() -> None:
    body = raw("shopify", "order_company_nl.json")
    adapter.verify(SECRET, body, {"X-Shopify-Hmac-SHA256": sign(SECRET, body)}, NOW)


def test_missing_signature_is_refused() -> None:
    body = raw("shopify", "order_company_nl.json")
    headers = headers_for(body)
    del headers["x-shopify-hmac-sha256"]
    with pytest.raises(SignatureError, match="missing"):
        adapter.verify(SECRET, body, headers, NOW)


def test_wrong_secret_is_refused() -> None:
    body = raw("shopify", "order_company_nl.json")
    with pytest.raises(SignatureError):
        adapter.verify(SECRET, body, headers_for(body, secret="shpss_someone_else"), NOW)


def test_body_changed_by_one_byte_is_refused() -> None:
    body = raw("shopify", "order_company_nl.json")
    headers = headers_for(body)
    tampered = change_one_byte(body, b'"total_price": "401.14"', b'"total_price": "101.14"')
    with pytest.raises(SignatureError):
        adapter.verify(SECRET, tampered, headers, NOW)


def test_reserialised_json_breaks_the_signature() -> None:
    body = raw("shopify", "order_company_nl.json")
    headers = headers_for(body)
    reserialised = json.dumps(json.loads(body)).encode()
    assert json.loads(reserialised) == json.loads(body)
    with pytest.raises(SignatureError):
        adapter.verify(SECRET, reserialised, headers, NOW)


def test_delivery_id_is_the_event_id_then_the_webhook_id_then_a_body_hash() -> None:
    body = raw("shopify", "order_company_nl.json")
    headers = headers_for(body)
    assert adapter.delivery_id(body, headers) == "98880550-7158-44d4-b7cd-2c97c8a091b5"
    del headers["x-shopify-event-id"]
    assert adapter.delivery_id(body, headers) == "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"
    del headers["x-shopify-webhook-id"]
    hashed = adapter.delivery_id(body, headers)
    assert hashed.startswith("sha256:") and hashed == adapter.delivery_id(body, {})
    assert hashed != adapter.delivery_id(body + b" ", {})


def test_default_processable_statuses() -> None:
    assert ShopifyAdapter.DEFAULT_PROCESSABLE_STATUSES == ["paid"]
    order = adapter.to_order(copy.deepcopy(company()), settings)
    assert settings.is_processable(order.status)
    assert not settings.is_processable(adapter.to_order(guest(), settings).status)
