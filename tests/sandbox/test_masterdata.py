"""Accounts (mandatory filter, padded codes, validation), addresses (dedupe), items, payment conditions."""

from __future__ import annotations

from app.sandbox import EXISTING_CUSTOMER_EMAIL
from tests.sandbox.support import account_id, exact_error, gl, url, validation_error


async def test_unfiltered_accounts_get_is_400_mandatory_filtering(client, auth):
    response = await client.get(url("crm/Accounts"), headers=auth)
    assert response.status_code == 400
    message = exact_error(response)
    assert message.startswith("This endpoint has mandatory filtering applied.")
    for allowed in ("Email", "Code", "Name", "VATNumber", "ID", "Modified"):
        assert allowed in message
    # A filter on a field outside the list does not satisfy the rule either.
    other = await client.get(url("crm/Accounts"), headers=auth, params={"$filter": "Language eq 'NL'"})
    assert other.status_code == 400


async def test_find_account_by_email(client, auth):
    response = await client.get(
        url("crm/Accounts"), headers=auth,
        params={"$filter": f"Email eq '{EXISTING_CUSTOMER_EMAIL}'", "$select": "ID,Code,Name,Status,IsSales"},
    )
    assert response.status_code == 200
    [row] = response.json()["d"]["results"]
    assert row["ID"] == account_id(1)
    assert row["Code"] == " " * 17 + "1"
    assert (row["Status"], row["IsSales"]) == ("C", True)


async def test_account_code_is_18_chars_right_aligned_and_filter_needs_padding(client, auth):
    created = await client.post(url("crm/Accounts"), headers=auth, json={"Name": "Nieuwe Klant", "Status": "C"})
    assert created.status_code == 201
    code = created.json()["d"]["Code"]
    assert len(code) == 18 and code == "7".rjust(18)  # seeded codes are 1..6
    unpadded = await client.get(url("crm/Accounts"), headers=auth, params={"$filter": "Code eq '7'"})
    assert unpadded.json()["d"]["results"] == []
    padded = await client.get(url("crm/Accounts"), headers=auth, params={"$filter": f"Code eq '{code}'"})
    assert [row["Name"] for row in padded.json()["d"]["results"]] == ["Nieuwe Klant"]


async def test_account_create_fills_server_fields(client, auth):
    body = {"Name": "Webshop Klant", "Email": "klant@example.nl", "Status": "C", "Country": "nl",
            "PaymentConditionSales": "30", "AddressLine1": "Kerkstraat 1", "Postcode": "1234 AB", "City": "Ede"}
    record = (await client.post(url("crm/Accounts"), headers=auth, json=body)).json()["d"]
    assert len(record["ID"]) == 36
    assert record["Country"] == "NL"
    assert record["PaymentConditionSalesDescription"] == "30 dagen"
    assert record["IsSales"] is True and record["Blocked"] is False
    assert record["Created"].startswith("/Date(")


async def test_account_without_status_is_not_a_customer(client, auth):
    record = (await client.post(url("crm/Accounts"), headers=auth, json={"Name": "Zonder status"})).json()["d"]
    assert record["Status"] == "A"
    assert record["IsSales"] is False


async def test_account_validation_errors(client, auth, state):
    before = len(state.records(1234567, "crm/Accounts"))
    assert validation_error(await client.post(url("crm/Accounts"), headers=auth, json={"Email": "a@b.nl"})) == "Verplicht: Naam"
    assert validation_error(
        await client.post(url("crm/Accounts"), headers=auth, json={"Name": "X", "PaymentConditionSales": "99"})
    ) == "Ongeldige referentie: Betalingsconditie"
    assert validation_error(
        await client.post(url("crm/Accounts"), headers=auth, json={"Name": "X", "Status": "Q"})
    ) == "Ongeldig: Status"
    assert validation_error(
        await client.post(url("crm/Accounts"), headers=auth, json={"Name": "X", "Code": "1"})
    ) == "Gegeven bestaat reeds"
    assert len(state.records(1234567, "crm/Accounts")) == before


async def test_address_post_returns_existing_identical_address(client, auth, state):
    body = {"Account": account_id(2), "Type": 4, "AddressLine1": "Dorpsstraat 5", "Postcode": "3511 AA",
            "City": "Utrecht", "Country": "NL"}
    first = await client.post(url("crm/Addresses"), headers=auth, json=body)
    second = await client.post(url("crm/Addresses"), headers=auth, json={**body, "Country": "nl"})
    assert first.status_code == second.status_code == 201
    assert first.json()["d"]["ID"] == second.json()["d"]["ID"]
    different = await client.post(url("crm/Addresses"), headers=auth, json={**body, "AddressLine1": "Dorpsstraat 7"})
    assert different.json()["d"]["ID"] != first.json()["d"]["ID"]
    mine = [a for a in state.records(1234567, "crm/Addresses") if a["Account"] == account_id(2)]
    assert len(mine) == 2


async def test_address_validation(client, auth):
    assert validation_error(await client.post(url("crm/Addresses"), headers=auth, json={"Type": 4})) == "Verplicht: Relatie"
    unknown = {"Account": "00000000-0000-0000-0000-00000000abcd", "Type": 4}
    assert validation_error(await client.post(url("crm/Addresses"), headers=auth, json=unknown)) == "Ongeldige referentie: Relatie"
    assert validation_error(
        await client.post(url("crm/Addresses"), headers=auth, json={"Account": account_id(1), "Type": 9})
    ) == "Ongeldig: Type"


async def test_items_mandatory_filter_and_create(client, auth):
    unfiltered = await client.get(url("logistics/Items"), headers=auth)
    assert unfiltered.status_code == 400
    assert "Barcode" in exact_error(unfiltered)
    by_code = await client.get(url("logistics/Items"), headers=auth, params={"$filter": "Code eq 'ARTIKEL-001'"})
    [item] = by_code.json()["d"]["results"]
    assert item["SalesVatCode"] == "1" and item["GLRevenue"] == gl("8000")

    created = await client.post(
        url("logistics/Items"), headers=auth,
        json={"Code": "SKU-42", "Description": "Theepot", "SalesVatCode": "1", "GLRevenue": gl("8000")},
    )
    assert created.status_code == 201
    record = created.json()["d"]
    assert record["IsSalesItem"] is True and record["Unit"] == "stuk" and record["GLRevenueCode"] == "8000"
    assert validation_error(
        await client.post(url("logistics/Items"), headers=auth, json={"Code": "SKU-42", "Description": "x"})
    ) == "Gegeven bestaat reeds"
    assert validation_error(
        await client.post(url("logistics/Items"), headers=auth, json={"Description": "x"})
    ) == "Verplicht: Code"
    assert validation_error(
        await client.post(url("logistics/Items"), headers=auth, json={"Code": "SKU-43"})
    ) == "Verplicht: Omschrijving"
    assert validation_error(
        await client.post(url("logistics/Items"), headers=auth,
                          json={"Code": "SKU-44", "Description": "x", "SalesVatCode": "77"})
    ) == "Ongeldige referentie: Btw-code"


async def test_payment_condition_create(client, auth):
    created = await client.post(
        url("cashflow/PaymentConditions"), headers=auth,
        json={"Code": "60", "Description": "60 dagen", "PaymentDays": 60},
    )
    assert created.status_code == 201
    assert created.json()["d"]["PaymentMethod"] == "B"
    account = await client.post(url("crm/Accounts"), headers=auth, json={"Name": "Trage Betaler", "PaymentConditionSales": "60"})
    assert account.status_code == 201
