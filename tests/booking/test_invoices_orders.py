"""Sales invoices and sales orders through the sandbox, end to end (API → arq worker → sandbox).

Runs on SQLite and, with KOPPEL_TEST_DATABASE_URL, on PostgreSQL (the `database_url` fixture).
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import delete, select

from app.booking.items import derived_code
from app.connections.models import ExactLink
from app.orders.models import Order, OrderEvent
from app.sandbox import SandboxState
from app.sandbox.seed import DEFAULT_DIVISION, SECOND_DIVISION, seed_guid
from tests.api_client import running_app
from tests.booking.harness import connect_sandbox, e2e_settings, running_worker, wait_for_states
from tests.booking.test_booking_e2e import EXCL, INCL, deliver
from tests.factories import order

INVOICE = "salesinvoice/SalesInvoices"
INVOICE_LINES = "salesinvoice/SalesInvoiceLines"
SALES_ORDER = "salesorder/SalesOrders"
SALES_ORDER_LINES = "salesorder/SalesOrderLines"
DUMMY_CODES = ("KOPPEL-VERZEND", "KOPPEL-BETAALKOSTEN", "KOPPEL-KORTING")
SHIPPED_ELSEWHERE = {"name": "Jane Doe", "line1": "Kantoorweg 9", "line2": "3e etage", "postcode": "3511 AB",
                     "city": "Utrecht", "country": "NL"}

# 3 × 10.00 incl. 21 %: net 24.79, which is no whole number of cents per piece (8.2633…).
SPLIT = order(
    source_order_id="S-1", order_number="WEB-3001",
    customer={"email": "theedoek@example.com", "name": "Thea Doek"},
    lines=[{"name": "Theedoek 'Delfts blauw'", "quantity": 3, "unit_price": "10.00", "vat_rate": 21}],
    shipping=[{"description": "Verzending", "amount": "4.95", "vat_rate": 21}],
    total="34.95", total_vat="6.07",
)


# --------------------------------------------------------------------------- helpers


def documents(sandbox: SandboxState, target: str, division: int = DEFAULT_DIVISION) -> dict[str, list[dict]]:
    """Created invoices or orders by YourRef, each with its lines under "lines"."""
    header, lines, key = ((INVOICE, INVOICE_LINES, "InvoiceID") if target == "sales_invoice"
                          else (SALES_ORDER, SALES_ORDER_LINES, "OrderID"))
    all_lines = sandbox.records(division, lines)
    found: dict[str, list[dict]] = {}
    for row in sandbox.records(division, header):
        mine = sorted((line for line in all_lines if line[key] == row[key]), key=lambda line: line["LineNumber"])
        found.setdefault(row["YourRef"], []).append({**row, "lines": mine})
    return found


def items_by_code(sandbox: SandboxState, division: int = DEFAULT_DIVISION) -> dict[str, list[dict]]:
    found: dict[str, list[dict]] = {}
    for item in sandbox.records(division, "logistics/Items"):
        found.setdefault(item["Code"], []).append(item)
    return found


def vat_field(target: str) -> str:
    return "VATAmountFC" if target == "sales_invoice" else "VATAmount"


def assert_lines_exact(document: dict) -> None:
    """Every line's amount is Quantity × NetPrice to the cent, prices in whole cents."""
    for line in document["lines"]:
        assert line["NetPrice"] == line["NetPrice"].quantize(Decimal("0.01")), line
        assert line["AmountFC"] == (line["Quantity"] * line["NetPrice"]).quantize(Decimal("0.01")), line


def document_totals(document: dict, target: str) -> tuple[Decimal, Decimal, Decimal]:
    """(incl. VAT, excl. VAT, VAT) as Exact stored them."""
    vat = sum((line[vat_field(target)] for line in document["lines"]), Decimal(0))
    net = sum((line["AmountFC"] for line in document["lines"]), Decimal(0))
    if target == "sales_invoice":
        assert document["VATAmountFC"] == vat
        return document["AmountFC"], document["AmountFC"] - document["VATAmountFC"], document["VATAmountFC"]
    assert document["AmountFCExclVat"] == net
    return document["AmountFC"], document["AmountFCExclVat"], vat


async def book(database_url: str, sessionmaker: Any, redis_client: Any, redis_url: str, sandbox: SandboxState,
               sandbox_client: Any, payloads: Sequence[dict[str, Any]], settings: dict[str, Any],
               *, one_by_one: bool = False, timeout: float = 30.0,
               shop: Any = None) -> tuple[list[int], dict[int, Order], Any]:
    """Deliver `payloads` to a new shop (or `shop`) and run a worker until they are settled."""
    config = e2e_settings(database_url, redis_url)
    if shop is None:
        shop = await connect_sandbox(sessionmaker, sandbox, sandbox_client, redis_client, config,
                                     integration_settings=settings)
    ids: list[int] = []
    async with running_app(database_url, redis_url) as api:
        async with running_worker(config, sandbox_client):
            if one_by_one:
                for payload in payloads:
                    ids.append(await deliver(api, shop, payload))
                    await wait_for_states(sessionmaker, ids, timeout=timeout)
            else:
                ids = [await deliver(api, shop, payload) for payload in payloads]
            done = await wait_for_states(sessionmaker, ids, timeout=timeout)
    return ids, done, shop


TARGETS = ["sales_invoice", "sales_order"]


# ----------------------------------------------------------------------------- totals


@pytest.mark.parametrize("target", TARGETS)
async def test_totals_equal_shop_totals_to_the_cent(target, database_url, sessionmaker, redis_client, redis_url,
                                                    sandbox, sandbox_client) -> None:
    payloads = [INCL, EXCL, SPLIT]
    ids, done, _ = await book(database_url, sessionmaker, redis_client, redis_url, sandbox, sandbox_client,
                              payloads, {"target_document": target})
    booked = documents(sandbox, target)
    for order_id, payload in zip(ids, payloads, strict=True):
        row = done[order_id]
        assert row.state == "booked", row.error_message
        assert row.exact_document_type == target
        [document] = booked[payload["order_number"]]
        incl, excl, vat = document_totals(document, target)
        assert incl == Decimal(payload["total"])
        assert vat == Decimal(payload["total_vat"])
        assert excl == Decimal(payload["total"]) - Decimal(payload["total_vat"])
        assert_lines_exact(document)
        assert document["OrderedBy"] == row.exact_debtor_id
        assert document["Description"] == f"Order {payload['order_number']}"
        assert document["Remarks"] == "ideal"
        if target == "sales_invoice":
            assert row.exact_document_id == document["InvoiceID"]
            assert row.exact_document_number == str(document["InvoiceNumber"])
            assert document["InvoiceTo"] == row.exact_debtor_id
            assert document["PaymentReference"] == payload["order_number"]
            # An ordinary invoice in the sales journal, open: not processed, printed or sent.
            assert (document["Type"], document["Status"], document["Journal"]) == (8020, 20, "70")
        else:
            assert row.exact_document_id == document["OrderID"]
            assert row.exact_document_number == str(document["OrderNumber"])
            assert document["Status"] == 12
            # No warehouse configured: Exact's main warehouse.
            assert document["WarehouseID"] == seed_guid(DEFAULT_DIVISION, "Warehouse", "1")

    # Shipping, payment costs and discounts are lines on their own dummy items.
    codes = [(line["ItemCode"], line["Description"]) for line in booked["WEB-1001"][0]["lines"]]
    assert codes == [("MUG-01", "Mok"), ("BOOK-7", "Kookboek"), ("KOPPEL-VERZEND", "Verzending"),
                     ("KOPPEL-BETAALKOSTEN", "iDEAL"), ("KOPPEL-KORTING", "Korting")]
    discount = booked["WEB-1001"][0]["lines"][-1]
    assert discount["AmountFC"] == Decimal("-2.00") and discount[vat_field(target)] == Decimal("-0.42")

    # 3 pieces whose net price is not a whole number of cents: two lines, 3 pieces, exact net.
    split = [line for line in booked["WEB-3001"][0]["lines"] if line["ItemCode"] != "KOPPEL-VERZEND"]
    assert [(line["Quantity"], line["NetPrice"], line[vat_field(target)]) for line in split] == [
        (Decimal(2), Decimal("8.26"), Decimal("3.47")), (Decimal(1), Decimal("8.27"), Decimal("1.74"))]
    assert sum(line["AmountFC"] for line in split) == Decimal("24.79")
    assert {line["ItemCode"] for line in split} == {derived_code("Theedoek 'Delfts blauw'")}


async def test_invoice_ledger_mapping_or_item_decides_the_revenue_account(database_url, sessionmaker, redis_client,
                                                                         redis_url, sandbox, sandbox_client) -> None:
    seeded = order(source_order_id="L-1", order_number="WEB-4001", shipping=[],
                   lines=[{"sku": "ARTIKEL-002", "name": "Kookboek", "quantity": 1, "unit_price": "19.62",
                           "vat_rate": 9}], total="19.62", total_vat="1.62")
    mapped = order(**{**seeded, "source_order_id": "L-2", "order_number": "WEB-4002"})
    await book(database_url, sessionmaker, redis_client, redis_url, sandbox, sandbox_client, [seeded],
               {"target_document": "sales_invoice", "ledger_mapping": False})
    await book(database_url, sessionmaker, redis_client, redis_url, sandbox, sandbox_client, [mapped],
               {"target_document": "sales_invoice", "revenue_gl": "8020"})
    booked = documents(sandbox, "sales_invoice")
    # Ledger mapping off: no GL sent, the seeded item's own revenue account (8010) applies.
    assert booked["WEB-4001"][0]["lines"][0]["GLAccount"] == seed_guid(DEFAULT_DIVISION, "GLAccount", "8010")
    # Ledger mapping on: the mapping's revenue account, whatever the item says.
    assert booked["WEB-4002"][0]["lines"][0]["GLAccount"] == seed_guid(DEFAULT_DIVISION, "GLAccount", "8020")


# ------------------------------------------------------------------------------ items


@pytest.mark.parametrize("target", TARGETS)
async def test_items_existing_found_new_created_once(target, database_url, sessionmaker, redis_client, redis_url,
                                                     sandbox, sandbox_client) -> None:
    lines = [{"sku": "ARTIKEL-001", "name": "Shirt uit de shop", "quantity": 1, "unit_price": "24.20", "vat_rate": 21},
             {"sku": "NIEUW-42", "name": "Nieuw product", "quantity": 1, "unit_price": "10.90", "vat_rate": 9},
             {"name": "Handgemaakte zeep", "quantity": 2, "unit_price": "3.63", "vat_rate": 21}]
    first = order(source_order_id="I-1", order_number="WEB-5001", lines=lines, total="48.41", total_vat="7.41")
    second = order(source_order_id="I-2", order_number="WEB-5002", customer={"email": "ander@example.com"},
                   lines=lines[1:], total="24.21", total_vat="3.21")
    seeded_before = dict(items_by_code(sandbox)["ARTIKEL-001"][0])
    ids, done, shop = await book(database_url, sessionmaker, redis_client, redis_url, sandbox, sandbox_client,
                                 [first, second], {"target_document": target}, one_by_one=True)
    assert {row.state for row in done.values()} == {"booked"}

    items = items_by_code(sandbox)
    soap = derived_code("Handgemaakte zeep")
    # The seeded item is found, not created, and left exactly as it was.
    assert items["ARTIKEL-001"] == [seeded_before]
    # New codes are created once, even though both orders use them.
    assert len(items["NIEUW-42"]) == 1 and len(items[soap]) == 1
    assert items["NIEUW-42"][0]["Description"] == "Nieuw product"
    assert items["NIEUW-42"][0]["IsSalesItem"] is True and items["NIEUW-42"][0]["SalesVatCode"] == "2"
    assert items[soap][0]["SalesVatCode"] == "1"
    # Dummy items: once each (the second order has shipping too).
    assert len(items["KOPPEL-VERZEND"]) == 1
    booked = documents(sandbox, target)
    first_lines = booked["WEB-5001"][0]["lines"]
    assert first_lines[0]["Item"] == seed_guid(DEFAULT_DIVISION, "Item", "ARTIKEL-001")
    assert first_lines[0]["Description"] == "Shirt uit de shop"  # the shop's text on the line
    assert booked["WEB-5002"][0]["lines"][0]["Item"] == first_lines[1]["Item"]

    async with sessionmaker() as session:
        links = {link.code: link for link in (await session.execute(
            select(ExactLink).where(ExactLink.kind == "item"))).scalars()}
    assert links["ARTIKEL-001"].created_by_koppel is False
    assert links["NIEUW-42"].created_by_koppel is True and links[soap].created_by_koppel is True
    # The second order looked up nothing: the new customer (2 calls) and the document.
    assert done[ids[1]].exact_calls == 3


async def test_dummy_items_created_once_per_division(database_url, sessionmaker, redis_client, redis_url, sandbox,
                                                    sandbox_client) -> None:
    config = e2e_settings(database_url, redis_url)
    first = await connect_sandbox(sessionmaker, sandbox, sandbox_client, redis_client, config,
                                  integration_settings={"target_document": "sales_invoice"})
    second = await connect_sandbox(sessionmaker, sandbox, sandbox_client, redis_client, config, name="Retail",
                                   division=SECOND_DIVISION, tenant_id=first.tenant_id,
                                   connection_id=first.connection_id,
                                   integration_settings={"target_document": "sales_order"})
    async with running_app(database_url, redis_url) as api:
        async with running_worker(config, sandbox_client):
            ids = [await deliver(api, first, order(**{**INCL, "source_order_id": f"D-{n}",
                                                      "order_number": f"DIV1-{n}"})) for n in range(3)]
            ids += [await deliver(api, second, order(**{**INCL, "source_order_id": f"E-{n}",
                                                       "order_number": f"DIV2-{n}"})) for n in range(2)]
            done = await wait_for_states(sessionmaker, ids)
    assert {row.state for row in done.values()} == {"booked"}, [row.error_message for row in done.values()]
    for division in (DEFAULT_DIVISION, SECOND_DIVISION):
        items = items_by_code(sandbox, division)
        assert {code: len(items.get(code, [])) for code in DUMMY_CODES} == dict.fromkeys(DUMMY_CODES, 1)
    assert len(documents(sandbox, "sales_invoice")) == 3
    assert len(documents(sandbox, "sales_order", SECOND_DIVISION)) == 2


# -------------------------------------------------------------------------- addresses


def delivery_addresses(sandbox: SandboxState, account: str) -> list[dict]:
    return [row for row in sandbox.records(DEFAULT_DIVISION, "crm/Addresses")
            if row["Account"] == account and row["Type"] == 4]


@pytest.mark.parametrize("target", TARGETS)
async def test_delivery_address_created_and_reused(target, database_url, sessionmaker, redis_client, redis_url,
                                                   sandbox, sandbox_client) -> None:
    elsewhere = [order(**{**INCL, "source_order_id": f"A-{n}", "order_number": f"SHIP-{n}",
                          "shipping_address": SHIPPED_ELSEWHERE}) for n in range(2)]
    # The same address in other letter case is the same address, for Koppel and for Exact.
    same_place = {**SHIPPED_ELSEWHERE, "line1": "KANTOORWEG 9", "city": "utrecht"}
    home = order(**{**INCL, "source_order_id": "A-3", "order_number": "SHIP-3",
                    "shipping_address": {**INCL["billing_address"], "name": "Someone else"}})
    ids, done, shop = await book(database_url, sessionmaker, redis_client, redis_url, sandbox, sandbox_client,
                                 elsewhere, {"target_document": target}, one_by_one=True)
    debtor = done[ids[0]].exact_debtor_id
    [address] = delivery_addresses(sandbox, debtor)
    assert (address["AddressLine1"], address["AddressLine2"], address["Postcode"], address["City"],
            address["Country"]) == ("Kantoorweg 9", "3e etage", "3511 AB", "Utrecht", "NL")
    field = "DeliverToAddress" if target == "sales_invoice" else "DeliveryAddress"
    booked = documents(sandbox, target)
    assert booked["SHIP-0"][0][field] == address["ID"] == booked["SHIP-1"][0][field]
    assert done[ids[1]].exact_calls == 1  # address cached with the debtor and the items

    # Without the cache Exact hands back the identical address instead of a duplicate.
    async with sessionmaker() as session, session.begin():
        await session.execute(delete(ExactLink).where(ExactLink.kind == "delivery_address"))
    again = order(**{**INCL, "source_order_id": "A-4", "order_number": "SHIP-4", "shipping_address": same_place})
    ids2, done2, _ = await book(database_url, sessionmaker, redis_client, redis_url, sandbox, sandbox_client,
                                [again, home], {}, one_by_one=True, shop=shop)
    assert delivery_addresses(sandbox, debtor) == [address]
    booked = documents(sandbox, target)
    assert booked["SHIP-4"][0][field] == address["ID"]
    assert done2[ids2[0]].exact_calls == 2  # the address POST and the document
    # Shipped to the billing address: no delivery address at all.
    assert booked["SHIP-3"][0][field] is None


# ------------------------------------------------------------------- invoice types


async def test_direct_invoice_without_warehouse_is_refused_before_any_call(
        database_url, sessionmaker, redis_client, redis_url, sandbox, sandbox_client) -> None:
    ids, done, _ = await book(database_url, sessionmaker, redis_client, redis_url, sandbox, sandbox_client, [INCL],
                              {"target_document": "sales_invoice", "invoice_type": 8023})
    row = done[ids[0]]
    assert row.state == "failed" and row.retryable is False
    assert row.error_code == "warehouse_required"
    assert "8023" in row.error_message and "warehouse" in row.error_message
    assert row.exact_calls == 0 and row.create_sent_at is None
    assert documents(sandbox, "sales_invoice") == {}
    assert not any(code.startswith("KOPPEL-") for code in items_by_code(sandbox))


async def test_direct_invoice_with_warehouse_books(database_url, sessionmaker, redis_client, redis_url, sandbox,
                                                  sandbox_client) -> None:
    ids, done, _ = await book(database_url, sessionmaker, redis_client, redis_url, sandbox, sandbox_client,
                              [INCL, order(**{**INCL, "source_order_id": "W-2", "order_number": "WEB-1092"})],
                              {"target_document": "sales_invoice", "invoice_type": 8023, "warehouse": "2"},
                              one_by_one=True)
    assert done[ids[0]].state == "booked", done[ids[0]].error_message
    [invoice] = documents(sandbox, "sales_invoice")["WEB-1001"]
    assert invoice["Type"] == 8023 and invoice["Status"] == 20
    assert invoice["Warehouse"] == seed_guid(DEFAULT_DIVISION, "Warehouse", "2")
    assert invoice["AmountFC"] == Decimal(INCL["total"]) and invoice["VATAmountFC"] == Decimal(INCL["total_vat"])
    # Cold: customer look-up + create, item look-up, 5 item creates, the warehouse code, the invoice.
    assert done[ids[0]].exact_calls == 10
    assert done[ids[1]].exact_calls == 1  # the warehouse code is cached too


async def test_sales_order_uses_the_configured_warehouse(database_url, sessionmaker, redis_client, redis_url,
                                                        sandbox, sandbox_client) -> None:
    ids, done, _ = await book(database_url, sessionmaker, redis_client, redis_url, sandbox, sandbox_client, [INCL],
                              {"target_document": "sales_order", "warehouse": "2"})
    assert done[ids[0]].state == "booked", done[ids[0]].error_message
    [sales_order] = documents(sandbox, "sales_order")["WEB-1001"]
    assert sales_order["WarehouseID"] == seed_guid(DEFAULT_DIVISION, "Warehouse", "2")


async def test_unknown_warehouse_fails_plainly(database_url, sessionmaker, redis_client, redis_url, sandbox,
                                              sandbox_client) -> None:
    ids, done, _ = await book(database_url, sessionmaker, redis_client, redis_url, sandbox, sandbox_client, [INCL],
                              {"target_document": "sales_order", "warehouse": "99"})
    row = done[ids[0]]
    assert row.state == "failed" and row.error_code == "warehouse_unknown" and "99" in row.error_message
    assert documents(sandbox, "sales_order") == {}


# --------------------------------------------------------------------- exactly once


@pytest.mark.parametrize("target", TARGETS)
async def test_work_done_then_502_books_once(target, database_url, sessionmaker, redis_client, redis_url, sandbox,
                                            sandbox_client) -> None:
    path = INVOICE if target == "sales_invoice" else SALES_ORDER
    sandbox.add_fault(method="POST", path_regex=path, after_work=True, status=502, times=1)
    ids, done, _ = await book(database_url, sessionmaker, redis_client, redis_url, sandbox, sandbox_client, [INCL],
                              {"target_document": target})
    row = done[ids[0]]
    assert row.state == "booked", row.error_message
    [document] = documents(sandbox, target)["WEB-1001"]
    key = "InvoiceID" if target == "sales_invoice" else "OrderID"
    assert row.exact_document_id == document[key]
    async with sessionmaker() as session:
        events = (await session.execute(select(OrderEvent).where(OrderEvent.order_id == row.id)
                                        .order_by(OrderEvent.id))).scalars().all()
    kinds = [event.kind for event in events]
    assert "retry" in kinds and kinds[-1] == "booked"
    assert "found in Exact by YourRef" in events[-1].message


# ------------------------------------------------------------------ calls per order


@pytest.mark.parametrize("target", TARGETS)
async def test_repeat_customer_with_known_products_costs_one_call(target, database_url, sessionmaker, redis_client,
                                                                  redis_url, sandbox, sandbox_client) -> None:
    payloads = [order(**{**INCL, "source_order_id": f"R-{n}", "order_number": f"REPEAT-{n}",
                         "shipping_address": SHIPPED_ELSEWHERE}) for n in range(3)]
    ids, done, _ = await book(database_url, sessionmaker, redis_client, redis_url, sandbox, sandbox_client, payloads,
                              {"target_document": target}, one_by_one=True)
    calls = [done[order_id].exact_calls for order_id in ids]
    # Cold: customer look-up + create, one item look-up for all five codes, five item creates
    # (2 products, shipping, payment costs, discount), the delivery address, the document.
    assert calls == [10, 1, 1]
    assert all(len(found) == 1 for found in documents(sandbox, target).values())
