"""OData: $filter parsing and typing, $select/$top/$orderby/$inlinecount, paging, value formats."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import pytest

from app.sandbox import schema
from app.sandbox.errors import ExactError
from app.sandbox.filters import matches, parse_filter
from tests.sandbox.support import exact_error, url

FIELDS = schema.ACCOUNTS.fields


def check(text: str, record: dict) -> bool:
    return matches(parse_filter(text, FIELDS, "Account"), record)


def test_filter_operators_and_grouping():
    row = {"Name": "O'Brien", "Status": "C", "Blocked": False, "InvoicingMethod": 2, "Email": None}
    assert check("Name eq 'O''Brien'", row)
    assert check("Status eq 'C' and Blocked eq false", row)
    assert check("Status eq 'P' or (Name ne 'X' and InvoicingMethod eq 2)", row)
    assert not check("Status eq 'P' or InvoicingMethod gt 2", row)
    assert check("InvoicingMethod ge 2 and InvoicingMethod lt 3", row)
    assert check("Email eq null", row)
    assert check("not (Status eq 'P')", row)
    assert check("substringof('brien', Name) and startswith(Name, 'o')", row)


def test_filter_guid_and_datetime_literals():
    row = {"ID": "0f8fad5b-d9cb-469f-a165-70867728950e", "Created": datetime(2024, 3, 1, 12, tzinfo=UTC)}
    assert check("ID eq guid'0F8FAD5B-D9CB-469F-A165-70867728950E'", row)
    assert check("Created gt datetime'2024-03-01T00:00:00'", row)
    assert not check("Created lt datetime'2024-03-01T00:00:00'", row)


def test_string_comparison_follows_sql_collation():
    # Case-insensitive and blind to trailing spaces; leading spaces matter (account codes).
    assert check("Email eq 'INFO@Example.com'", {"Email": "info@example.com"})
    assert check("Code eq '2'", {"Code": "2  "})
    assert not check("Code eq '42'", {"Code": "                42"})
    assert check("Code eq '                42'", {"Code": "                42"})


@pytest.mark.parametrize(
    "text",
    [
        "ID eq 'not-a-guid-literal'",  # Edm.Guid vs Edm.String
        "Name eq 5",
        "Nope eq 'x'",
        "Name eq",
        "Name eq 'unterminated",
        "Name 'x'",
        "Name",
        "PrimaryContact/Name eq 'x'",
    ],
)
def test_bad_filters_are_400(text):
    with pytest.raises(ExactError) as info:
        parse_filter(text, FIELDS, "Exact.Web.Api.Models.Account")
    assert info.value.status == 400


async def test_vat_codes_with_fraction_percentages(client, auth):
    response = await client.get(url("vat/VATCodes"), headers=auth, params={"$select": "Code,Percentage,Type,OssCountry"})
    rows = {row["Code"]: row for row in response.json()["d"]["results"]}
    assert rows["1"]["Percentage"] == 0.21 and rows["1"]["Type"] == "E"
    assert rows["2"]["Percentage"] == 0.09
    assert rows["3"]["Type"] == "I"
    assert rows["0"]["Type"] == "B"
    assert rows["D19"]["OssCountry"] == "DE" and rows["D19"]["Percentage"] == 0.19
    assert set(rows["5"]) == {"__metadata", "Code", "Percentage", "Type", "OssCountry"}
    # The raw JSON keeps the exact decimal digits (no float noise).
    assert '"Percentage":0.21' in response.text


async def test_vat_code_filter_ignores_padding(client, auth):
    response = await client.get(url("vat/VATCodes"), headers=auth, params={"$filter": "Code eq '2  '"})
    rows = response.json()["d"]["results"]
    assert [row["Description"] for row in rows] == ["BTW laag 9% excl."]
    listing = await client.get(url("vat/VATCodes"), headers=auth, params={"$filter": "EUSalesListing eq 'L'"})
    assert [row["Code"] for row in listing.json()["d"]["results"]] == ["5"]


async def test_paging_130_accounts_with_next_links(client, auth, state):
    state.set_limits(minutely=1000)  # bulk set-up; the budget is not under test here
    for n in range(130):
        response = await client.post(
            url("crm/Accounts"), headers=auth, json={"Name": f"Klant {n:03d}", "Status": "C", "City": "Paging"}
        )
        assert response.status_code == 201

    seen: list[str] = []
    next_link = url("crm/Accounts") + "?$filter=City eq 'Paging'&$select=ID,Name"
    pages = 0
    while next_link:
        response = await client.get(next_link, headers=auth)
        assert response.status_code == 200, response.text
        body = response.json()["d"]
        pages += 1
        assert len(body["results"]) <= 60
        seen += [row["ID"] for row in body["results"]]
        next_link = body.get("__next")
        if next_link:
            assert next_link.startswith("http://sandbox/api/v1/")
            assert "$skiptoken=guid'" in next_link
    assert pages == 3
    assert len(seen) == 130 and len(set(seen)) == 130


async def test_no_next_link_when_everything_fits(client, auth):
    body = (await client.get(url("financial/GLAccounts"), headers=auth)).json()["d"]
    assert "__next" not in body
    assert len(body["results"]) == 18


async def test_top_orderby_and_inlinecount(client, auth):
    params = {"$top": "3", "$orderby": "Code desc", "$inlinecount": "allpages", "$select": "Code"}
    body = (await client.get(url("financial/GLAccounts"), headers=auth, params=params)).json()["d"]
    assert [row["Code"] for row in body["results"]] == ["8990", "8500", "8200"]
    assert body["__count"] == "18"
    assert "__next" not in body


async def test_top_above_page_size_pages_and_stops(client, auth, state):
    state.set_limits(minutely=1000)
    for n in range(70):
        await client.post(url("crm/Accounts"), headers=auth, json={"Name": f"T{n}", "City": "Top"})
    first = (await client.get(url("crm/Accounts"), headers=auth,
                              params={"$filter": "City eq 'Top'", "$top": "65"})).json()["d"]
    assert len(first["results"]) == 60
    query = parse_qs(urlsplit(first["__next"]).query)
    assert query["$top"] == ["5"]
    second = (await client.get(first["__next"], headers=auth)).json()["d"]
    assert len(second["results"]) == 5
    assert "__next" not in second


async def test_count_endpoint(client, auth):
    response = await client.get(url("financial/Journals/$count"), headers=auth)
    assert response.status_code == 200
    assert response.text == "6"


async def test_unknown_query_option_and_bad_select(client, auth):
    unknown = await client.get(url("vat/VATCodes"), headers=auth, params={"$frobnicate": "1"})
    assert unknown.status_code == 400
    bad_select = await client.get(url("vat/VATCodes"), headers=auth, params={"$select": "Code,Rate"})
    assert bad_select.status_code == 400
    assert "Rate" in exact_error(bad_select)


async def test_dates_come_back_as_ms_dates(client, auth):
    response = await client.get(url("financial/Journals"), headers=auth, params={"$select": "Created"})
    created = response.json()["d"]["results"][0]["Created"]
    assert created == "/Date(1704186000000)/"  # 2024-01-02 09:00 UTC, the seed moment


def test_decimal_serialisation_is_exact():
    from app.sandbox.values import dumps

    assert dumps({"a": Decimal("0.10"), "b": Decimal("1E+2")}) == b'{"a":0.10,"b":100}'
