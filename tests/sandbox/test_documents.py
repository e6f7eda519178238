"""Sales invoices and sales orders: item lines, prices, VAT, warehouses, numbering."""

from __future__ import annotations

from app.sandbox import seed_guid
from tests.sandbox.support import DIV, account_id, item_id, url, validation_error

INVOICES = "salesinvoice/SalesInvoices"
ORDERS = "salesorder/SalesOrders"


def invoice(**overrides) -> dict:
    body = {
        "Journal": "70",
        "OrderedBy": account_id(1),
        "OrderDate": "2025-03-11",
        "YourRef": "WEB-2001",
        "Description": "Webshop order 2001",
        "Remarks": "Bedankt!",
        "PaymentReference": "2001",
        "SalesInvoiceLines": [
            {"Item": item_id("ARTIKEL-001"), "Quantity": 2, "NetPrice": "24.95"},
            {"Item": item_id("ARTIKEL-002"), "Quantity": 1, "UnitPrice": "19.50", "VATCode": "2"},
            {"Item": item_id("VERZEND"), "Quantity": 1, "NetPrice": "4.95", "VATAmountFC": "1.04"},
        ],
    }
    body.update(overrides)
    return body


async def test_sales_invoice_create(client, auth, state):
    response = await client.post(url(INVOICES), headers=auth, json=invoice())
    assert response.status_code == 201
    d = response.json()["d"]
    assert (d["Type"], d["Status"]) == (8020, 20)
    assert d["InvoiceNumber"] == 25700001
    assert d["InvoiceTo"] == d["OrderedBy"] == account_id(1)
    # net 49.90 + 19.50 + 4.95 = 74.35; VAT 10.48 + 1.76 (1.755 half-up) + 1.04 (explicit) = 13.28
    assert d["VATAmountFC"] == 13.28
    assert d["AmountFC"] == 87.63
    assert (d["YourRef"], d["Remarks"]) == ("WEB-2001", "Bedankt!")
    lines = state.records(DIV, "salesinvoice/SalesInvoiceLines")
    assert [line["VATCode"] for line in lines] == ["1", "2", "1"]
    assert lines[0]["GLAccount"] == seed_guid(DIV, "GLAccount", "8000")  # from the item
    assert lines[0]["Description"] == "T-shirt katoen"

    found = await client.get(url(INVOICES), headers=auth,
                             params={"$filter": "YourRef eq 'WEB-2001'", "$expand": "SalesInvoiceLines"})
    [row] = found.json()["d"]["results"]
    assert len(row["SalesInvoiceLines"]["results"]) == 3


async def test_direct_invoice_needs_a_warehouse(client, auth):
    assert validation_error(await client.post(url(INVOICES), headers=auth, json=invoice(Type=8023))) == "Verplicht: Magazijn"
    warehouse = seed_guid(DIV, "Warehouse", "1")
    ok = await client.post(url(INVOICES), headers=auth, json=invoice(Type=8023, Warehouse=warehouse))
    assert ok.status_code == 201
    assert ok.json()["d"]["Warehouse"] == warehouse


async def test_sales_invoice_validation(client, auth, state):
    no_journal = invoice()
    del no_journal["Journal"]
    assert validation_error(await client.post(url(INVOICES), headers=auth, json=no_journal)) == "Verplicht: Dagboek"
    no_customer = invoice()
    del no_customer["OrderedBy"]
    assert validation_error(
        await client.post(url(INVOICES), headers=auth, json=no_customer)
    ) == "Verplicht: Factuur voor / Besteld door"
    assert validation_error(
        await client.post(url(INVOICES), headers=auth, json=invoice(SalesInvoiceLines=[{"Quantity": 1}]))
    ) == "Verplicht: Artikel"
    assert validation_error(
        await client.post(url(INVOICES), headers=auth,
                          json=invoice(SalesInvoiceLines=[{"Item": "00000000-0000-0000-0000-000000000042"}]))
    ) == "Ongeldige referentie: Artikel"
    assert validation_error(await client.post(url(INVOICES), headers=auth, json=invoice(Type=1234))) == "Ongeldig: Type"
    assert state.records(DIV, INVOICES) == []


async def test_sales_order_create(client, auth, state):
    address = seed_guid(DIV, "Address", "1/4")
    body = {
        "OrderedBy": account_id(1),
        "OrderDate": "2025-03-11",
        "YourRef": "WEB-3001",
        "Description": "Webshop order 3001",
        "DeliveryAddress": address,
        "SalesOrderLines": [
            {"Item": item_id("ARTIKEL-003"), "Quantity": 3, "NetPrice": "8.95"},
            {"Item": item_id("VERZEND"), "Quantity": 1, "NetPrice": "4.95", "VATCode": "1"},
        ],
    }
    first = await client.post(url(ORDERS), headers=auth, json=body)
    assert first.status_code == 201
    d = first.json()["d"]
    assert (d["Status"], d["OrderNumber"]) == (12, 1)
    assert d["AmountFCExclVat"] == 31.80 and d["AmountFC"] == 38.48  # VAT 5.64 + 1.04
    assert d["WarehouseCode"] == "1" and d["DeliveryAddress"] == address
    second = await client.post(url(ORDERS), headers=auth, json={**body, "YourRef": "WEB-3002"})
    assert second.json()["d"]["OrderNumber"] == 2
    lines = state.records(DIV, "salesorder/SalesOrderLines")
    assert [str(line["VATAmount"]) for line in lines[:2]] == ["5.64", "1.04"]


async def test_sales_order_validation(client, auth):
    lines = [{"Item": item_id("ARTIKEL-001")}]
    assert validation_error(
        await client.post(url(ORDERS), headers=auth, json={"SalesOrderLines": lines})
    ) == "Verplicht: Besteld door"
    bad_address = {"OrderedBy": account_id(1), "DeliveryAddress": "00000000-0000-0000-0000-000000000043",
                   "SalesOrderLines": lines}
    assert validation_error(
        await client.post(url(ORDERS), headers=auth, json=bad_address)
    ) == "Ongeldige referentie: Afleveradres"
    unknown_property = await client.post(
        url(ORDERS), headers=auth, json={"OrderedBy": account_id(1), "Warehouse": "x", "SalesOrderLines": lines}
    )
    assert unknown_property.status_code == 400  # the order's property is WarehouseID
