"""The /sandbox admin API and the error-budget monitor."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from app.sandbox import CLIENT_ID, DEFAULT_USER_ID, OTHER_USER_EMAIL, OTHER_USER_ID, run
from tests.sandbox.support import DIV, account_id, bearer, gl, url


async def test_state_reports_entries_tokens_and_counts(client, auth, state):
    body = {"Journal": "70", "Customer": account_id(1), "YourRef": "S-1", "EntryDate": "2025-03-11",
            "SalesEntryLines": [{"GLAccount": gl("8000"), "AmountFC": "50.00", "VATCode": "1"}]}
    assert (await client.post(url("salesentry/SalesEntries"), headers=auth, json=body)).status_code == 201
    snapshot = (await client.get("/sandbox/state")).json()
    division = snapshot["divisions"]["1234567"]
    assert division["counts"]["sales_entries"] == 1
    assert division["counts"]["accounts"] == 6
    assert division["counts"]["items"] == 6
    [entry] = division["sales_entries"]
    assert (entry["YourRef"], entry["EntryNumber"], entry["AmountDC"]) == ("S-1", 25700001, 60.5)
    assert entry["lines"][0]["GLAccountCode"] == "8000" and entry["lines"][0]["VATAmountFC"] == 10.5
    assert snapshot["requests"] == {"1234567": 1}
    assert snapshot["tokens"]["chains_issued"] == 1
    assert snapshot["tokens"]["refreshes"] == 0
    assert snapshot["tokens"]["old_refresh_token_used"] == 0
    assert snapshot["limits"]["minutely"] == 60
    assert snapshot["errors"]["would_block"] == []


async def test_reset_reseeds_but_keeps_clock_and_limits(client, auth, state):
    await client.post(url("crm/Accounts"), headers=auth, json={"Name": "Weg na reset"})
    await client.put("/sandbox/limits", json={"minutely": 999})
    await client.post("/sandbox/clock/advance", json={"seconds": 30})
    now = state.clock.now()
    assert (await client.post("/sandbox/reset")).json() == {"reset": True}
    assert len(state.records(DIV, "crm/Accounts")) == 6
    assert state.limits.minutely == 999
    assert state.clock.now() >= now
    # Tokens are gone with the reset.
    assert (await client.get(url("vat/VATCodes"), headers=auth)).status_code == 401


async def test_clock_advance_endpoint(client, state):
    before = (await client.get("/sandbox/clock")).json()["now"]
    after = (await client.post("/sandbox/clock/advance", json={"seconds": 3600})).json()
    assert after["now"] - before >= 3600
    assert after["now_ms"] // 1000 == int(after["now"])


async def test_limits_put_validates(client):
    assert (await client.put("/sandbox/limits", json={"minutely": -1})).status_code == 422
    current = (await client.get("/sandbox/limits")).json()
    assert current == {"minutely": 60, "daily": 5000, "token_daily": 200, "errors_per_hour": 10,
                       "block_on_errors": False}


async def test_register_client_then_full_browser_flow(client):
    created = await client.post(
        "/sandbox/clients",
        json={"client_id": "tenant-app", "client_secret": "s3cret", "redirect_uris": ["https://koppel.example/cb"]},
    )
    assert created.status_code == 201
    consent = await client.get("/api/oauth2/auth", params={
        "client_id": "tenant-app", "redirect_uri": "https://koppel.example/cb", "response_type": "code",
        "sandbox_user": OTHER_USER_EMAIL})
    code = parse_qs(urlsplit(consent.headers["location"]).query)["code"][0]
    token = await client.post("/api/oauth2/token", data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": "https://koppel.example/cb",
        "client_id": "tenant-app", "client_secret": "s3cret"})
    assert token.status_code == 200


async def test_tokens_issue_endpoint(client):
    issued = await client.post("/sandbox/tokens/issue", json={"client_id": CLIENT_ID, "user": OTHER_USER_ID})
    body = issued.json()
    assert body["expires_in"] == "600" and body["token_type"] == "bearer"
    me = await client.get("/api/v1/current/Me", headers=bearer(body["access_token"]))
    assert me.json()["d"]["results"][0]["UserID"] == OTHER_USER_ID
    unknown = await client.post("/sandbox/tokens/issue", json={"user": "nobody@example.com"})
    assert unknown.status_code == 404


async def test_expire_refresh_endpoint_makes_refresh_fail(client, state, tokens):
    response = await client.post("/sandbox/tokens/expire-refresh", json={"client_id": CLIENT_ID,
                                                                         "user": DEFAULT_USER_ID})
    assert response.json() == {"expired": 1}
    refused = await client.post("/api/oauth2/token", data={
        "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"],
        "client_id": CLIENT_ID, "client_secret": "koppel-sandbox-secret"})
    assert refused.status_code == 400
    assert refused.json()["error"] == "invalid_request"
    assert "The refresh token expired at" in refused.json()["error_description"]


async def test_expire_access_endpoint_gives_401_without_moving_the_clock(client, state, auth, tokens):
    response = await client.post("/sandbox/tokens/expire-access", json={"refresh_token": tokens["refresh_token"]})
    assert response.json() == {"expired": 1}
    assert (await client.get(url("vat/VATCodes"), headers=auth)).status_code == 401
    # …and the refresh window is open at once.
    refreshed = await client.post("/api/oauth2/token", data={
        "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"],
        "client_id": CLIENT_ID, "client_secret": "koppel-sandbox-secret"})
    assert refreshed.status_code == 200
    assert state.token_stats()["refreshes"] == 1


async def test_records_endpoint_shows_raw_rows(client):
    response = await client.get(f"/sandbox/records/{DIV}/financial/Journals")
    codes = [row["Code"] for row in response.json()["results"]]
    assert "71" in codes
    assert (await client.get(f"/sandbox/records/{DIV}/nope/Nope")).status_code == 404


async def test_info_endpoint(client):
    info = (await client.get("/sandbox/info")).json()
    assert info["client_id"] == CLIENT_ID
    assert {d["code"] for d in info["divisions"]} == {1234567, 7654321, 3333333}


async def test_errors_are_counted_per_endpoint_and_hour(client, auth, state):
    for _ in range(11):
        assert (await client.get(url("crm/Accounts"), headers=auth)).status_code == 400
    errors = state.snapshot()["errors"]
    assert errors["total"] == 11
    [flagged] = errors["would_block"]
    assert (flagged["endpoint"], flagged["division"], flagged["client_id"]) == ("crm/Accounts", DIV, CLIENT_ID)
    assert flagged["user_id"] == DEFAULT_USER_ID
    # Not blocked by default…
    assert (await client.get(url("crm/Accounts"), headers=auth, params={"$filter": "Code ne ''"})).status_code == 200
    # …but with blocking on, that endpoint is refused for the rest of the hour.
    state.set_limits(block_on_errors=True)
    blocked = await client.get(url("crm/Accounts"), headers=auth, params={"$filter": "Code ne ''"})
    assert blocked.status_code == 403
    assert (await client.get(url("vat/VATCodes"), headers=auth)).status_code == 200
    state.advance_clock(3600)
    fresh = bearer(state.issue_tokens()["access_token"])
    unblocked = await client.get(url("crm/Accounts"), headers=fresh, params={"$filter": "Code ne ''"})
    assert unblocked.status_code == 200


async def test_ten_errors_do_not_flag(client, auth, state):
    for _ in range(10):
        await client.get(url("crm/Nonsense"), headers=auth)
    assert state.snapshot()["errors"]["would_block"] == []
    assert state.snapshot()["errors"]["max_per_key_hour"] == 10


async def test_too_early_refresh_counts_as_error(client, state, tokens):
    await client.post("/api/oauth2/token", data={
        "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"],
        "client_id": CLIENT_ID, "client_secret": "koppel-sandbox-secret"})
    [row] = state.snapshot()["errors"]["by_key"]
    assert (row["endpoint"], row["user_id"], row["count"]) == ("oauth2/token", DEFAULT_USER_ID, 1)


def test_run_starts_uvicorn_with_the_sandbox(monkeypatch: pytest.MonkeyPatch):
    calls = {}

    def fake_run(app, **kwargs):
        calls["app"], calls["kwargs"] = app, kwargs

    monkeypatch.setattr("app.sandbox.server.uvicorn.run", fake_run)
    run("127.0.0.1", 8123)
    assert calls["kwargs"]["host"] == "127.0.0.1" and calls["kwargs"]["port"] == 8123
    assert calls["app"].state.sandbox is not None
