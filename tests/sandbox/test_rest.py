"""REST gate and envelopes: Me, divisions, 403/404/400 shapes, single records, PUT/DELETE."""

from __future__ import annotations

from app.sandbox import (
    DEFAULT_DIVISION,
    DEFAULT_USER_ID,
    FOREIGN_DIVISION,
    OTHER_USER_ID,
    SECOND_DIVISION,
    seed_guid,
)
from tests.sandbox.support import bearer, exact_error, url


async def test_me_returns_current_division_and_user(client, auth):
    response = await client.get("/api/v1/current/Me", headers=auth)
    assert response.status_code == 200
    row = response.json()["d"]["results"][0]
    assert row["CurrentDivision"] == DEFAULT_DIVISION
    assert row["UserID"] == DEFAULT_USER_ID
    assert row["FullName"] == "Jan de Vries"
    assert row["Email"] == "jan.devries@voorbeeldhandel.nl"
    assert row["DivisionCustomer"]
    assert row["__metadata"]["type"] == "Exact.Web.Api.System.Me"


async def test_me_honours_select(client, auth):
    response = await client.get("/api/v1/current/Me", headers=auth, params={"$select": "CurrentDivision"})
    row = response.json()["d"]["results"][0]
    assert set(row) == {"__metadata", "CurrentDivision"}
    bad = await client.get("/api/v1/current/Me", headers=auth, params={"$select": "Nope"})
    assert bad.status_code == 400


async def test_divisions_lists_only_accessible_divisions(client, auth, state):
    response = await client.get(url("system/Divisions"), headers=auth)
    codes = [row["Code"] for row in response.json()["d"]["results"]]
    assert codes == [DEFAULT_DIVISION, SECOND_DIVISION]
    first = response.json()["d"]["results"][0]
    assert first["Description"] == "Voorbeeld Handel B.V."
    assert (first["Country"], first["Currency"]) == ("NL", "EUR")

    piet = bearer(state.issue_tokens(user=OTHER_USER_ID)["access_token"])
    theirs = await client.get(url("system/Divisions", FOREIGN_DIVISION), headers=piet)
    assert [row["Code"] for row in theirs.json()["d"]["results"]] == [FOREIGN_DIVISION]


async def test_second_division_is_reachable_with_the_same_token(client, auth):
    response = await client.get(url("financial/Journals", SECOND_DIVISION), headers=auth)
    assert response.status_code == 200
    assert {row["Code"] for row in response.json()["d"]["results"]} >= {"70", "71"}


async def test_division_without_access_is_403_no_division_access(client, auth):
    for division in (FOREIGN_DIVISION, 9999999):
        response = await client.get(url("vat/VATCodes", division), headers=auth)
        assert response.status_code == 403
        assert response.headers["Reason"] == "NoDivisionAccess"
        exact_error(response)


async def test_unknown_entity_is_404_in_exact_envelope(client, auth):
    response = await client.get(url("crm/Nonsense"), headers=auth)
    assert response.status_code == 404
    assert "Nonsense" in exact_error(response)
    unknown_path = await client.get("/api/v2/whatever", headers=auth)
    assert unknown_path.status_code == 404
    exact_error(unknown_path)


async def test_service_and_entity_segments_are_case_insensitive(client, auth):
    response = await client.get(url("VAT/vatcodes"), headers=auth)
    assert response.status_code == 200
    assert len(response.json()["d"]["results"]) == 13


async def test_single_record_by_guid_key(client, auth):
    gl_id = seed_guid(DEFAULT_DIVISION, "GLAccount", "8000")
    response = await client.get(url(f"financial/GLAccounts(guid'{gl_id}')"), headers=auth)
    assert response.status_code == 200
    record = response.json()["d"]
    assert record["Code"] == "8000"
    assert record["Type"] == 110 and record["BalanceType"] == "W"
    assert record["__metadata"]["uri"].endswith(f"/financial/GLAccounts(guid'{gl_id}')")

    missing = await client.get(url("financial/GLAccounts(guid'00000000-0000-0000-0000-000000000001')"), headers=auth)
    assert missing.status_code == 404
    malformed = await client.get(url("financial/GLAccounts('8000')"), headers=auth)
    assert malformed.status_code == 400


async def test_malformed_json_body_is_400_request_stream(client, auth):
    response = await client.post(
        url("crm/Accounts"), headers={**auth, "Content-Type": "application/json"}, content=b"{not json"
    )
    assert response.status_code == 400
    assert exact_error(response).startswith("Error processing request stream")


async def test_unknown_property_and_wrong_type_are_400(client, auth):
    unknown = await client.post(url("crm/Accounts"), headers=auth, json={"Name": "X", "Colour": "red"})
    assert unknown.status_code == 400
    assert "Colour" in exact_error(unknown)
    wrong_type = await client.post(url("crm/Accounts"), headers=auth, json={"Name": "X", "Blocked": "no"})
    assert wrong_type.status_code == 400
    assert "Edm.Boolean" in exact_error(wrong_type)


async def test_read_only_properties_are_ignored_on_post(client, auth):
    response = await client.post(
        url("crm/Accounts"), headers=auth, json={"Name": "Prospectje", "Status": "P", "IsSales": True}
    )
    assert response.status_code == 201
    assert response.json()["d"]["IsSales"] is False


async def test_method_not_allowed_on_read_only_sets(client, auth):
    response = await client.post(url("vat/VATCodes"), headers=auth, json={"Code": "X"})
    assert response.status_code == 405


async def test_put_updates_and_delete_removes(client, auth):
    created = (await client.post(url("crm/Accounts"), headers=auth, json={"Name": "Tijdelijk", "Status": "C"})).json()
    key = created["d"]["ID"]
    put = await client.put(url(f"crm/Accounts(guid'{key}')"), headers=auth, json={"City": "Zwolle"})
    assert put.status_code == 204 and put.content == b""
    fetched = await client.get(url(f"crm/Accounts(guid'{key}')"), headers=auth)
    assert fetched.json()["d"]["City"] == "Zwolle"
    deleted = await client.delete(url(f"crm/Accounts(guid'{key}')"), headers=auth)
    assert deleted.status_code == 204
    assert (await client.get(url(f"crm/Accounts(guid'{key}')"), headers=auth)).status_code == 404


async def test_accept_header_without_json_still_gets_json(client, tokens):
    response = await client.get(
        url("vat/VATCodes"), headers={"Authorization": f"Bearer {tokens['access_token']}", "Accept": "*/*"}
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")


async def test_reference_sets_are_served(client, auth):
    expected = {
        "inventory/Warehouses": "1",
        "hrm/CostCenters": "100",
        "hrm/CostUnits": "WEB",
        "project/Projects": "P2024-001",
        "cashflow/PaymentConditions": "14",
    }
    for path, code in expected.items():
        response = await client.get(url(path), headers=auth)
        assert response.status_code == 200, path
        assert code in {row["Code"] for row in response.json()["d"]["results"]}, path
    warehouse = (await client.get(url("inventory/Warehouses"), headers=auth, params={"$filter": "Code eq '1'"})).json()
    assert warehouse["d"]["results"][0]["Description"] == "Hoofdmagazijn"
