"""ExactClient/ExactSession against respx: envelopes, paging, errors, 401/429 handling."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from decimal import Decimal

import httpx
import pytest
import respx
from prometheus_client import REGISTRY

from app.exact.client import ConnectionRef, ExactClient
from app.exact.errors import (
    ExactAuthError,
    ExactError,
    ExactHTTPError,
    ExactNotFound,
    ExactRateLimited,
    ExactServerUnavailable,
    ExactTransportError,
    ExactValidationError,
    RateBudgetExhausted,
)
from app.exact.odata import odata_string
from app.exact.tokens import StoredToken

from tests.exact.support import BASE, CONNECTION_ID, DIVISION, token_json

API = f"/api/v1/{DIVISION}"
ACCOUNTS = f"{API}/crm/Accounts"


def now_ms() -> int:
    return int(time.time() * 1000)


@pytest.fixture
def session(client, conn, fresh_token):
    return client.for_division(conn, DIVISION)


async def test_get_sends_the_right_request_and_unwraps_results(session, mock):
    route = mock.get(ACCOUNTS).respond(
        200, json={"d": {"results": [{"ID": "a1", "Name": "Jansen B.V."}]}}
    )
    email = "o'brien+shop@example.nl"
    items = await session.get("crm/Accounts", {"$filter": f"Email eq {odata_string(email)}", "$select": "ID,Name"})

    assert items == [{"ID": "a1", "Name": "Jansen B.V."}]
    request = route.calls.last.request
    assert request.headers["authorization"] == "Bearer access-1"
    assert request.headers["accept"] == "application/json"
    assert request.headers["content-type"] == "application/json"
    assert request.url.params["$filter"] == "Email eq 'o''brien+shop@example.nl'"
    assert request.url.params["$select"] == "ID,Name"
    assert session.calls == 1


async def test_plain_list_and_single_entity_envelopes(session, mock):
    mock.get(f"{API}/system/Divisions").respond(200, json={"d": [{"Code": 1}, {"Code": 2}]})
    mock.get(f"{API}/crm/Accounts(guid'00000000-0000-0000-0000-000000000001')").respond(
        200, json={"d": {"ID": "one"}}
    )
    mock.get(f"{API}/crm/Accounts(guid'00000000-0000-0000-0000-000000000002')").respond(
        200, json={"d": {"results": []}}
    )
    assert await session.get("system/Divisions") == [{"Code": 1}, {"Code": 2}]
    assert await session.get_one("crm/Accounts(guid'00000000-0000-0000-0000-000000000001')") == {"ID": "one"}
    assert await session.get_one("crm/Accounts(guid'00000000-0000-0000-0000-000000000002')") is None


async def test_get_all_follows_next_sequentially(session, mock):
    seen: list[str] = []
    in_flight = 0

    async def pages(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight
        in_flight += 1
        assert in_flight == 1, "pages must be fetched one after the other"
        seen.append(request.url.params.get("$skiptoken", "first"))
        try:
            token = request.url.params.get("$skiptoken")
            if token is None:
                return httpx.Response(200, json={"d": {"results": [{"n": 1}, {"n": 2}], "__next": f"{BASE}{ACCOUNTS}?$skiptoken=guid'p2'"}})
            if token == "guid'p2'":
                return httpx.Response(200, json={"d": {"results": [{"n": 3}], "__next": f"{BASE}{ACCOUNTS}?$skiptoken=guid'p3'"}})
            return httpx.Response(200, json={"d": {"results": [{"n": 4}]}})
        finally:
            in_flight -= 1

    mock.get(ACCOUNTS).mock(side_effect=pages)
    items = await session.get_all("crm/Accounts", {"$select": "ID"})

    assert [i["n"] for i in items] == [1, 2, 3, 4]
    assert seen == ["first", "guid'p2'", "guid'p3'"]
    assert session.calls == 3


async def test_next_link_to_another_host_is_refused(session, mock):
    mock.get(ACCOUNTS).respond(200, json={"d": {"results": [], "__next": "https://evil.example/steal"}})
    with pytest.raises(ExactError):
        await session.get_all("crm/Accounts")


async def test_post_serialises_decimals_exactly_and_unwraps(session, mock):
    route = mock.post(f"{API}/salesentry/SalesEntries").respond(
        201, json={"d": {"EntryID": "e1", "AmountDC": 1234568.0}}
    )
    body = {
        "Journal": "70",
        "YourRef": "shop-1001",
        "SalesEntryLines": [
            {"AmountFC": Decimal("0.10"), "VATAmountFC": Decimal("1234567.89")},
            {"AmountFC": Decimal("-5900.00"), "Quantity": 3},
        ],
    }
    created = await session.post("salesentry/SalesEntries", body)

    raw = route.calls.last.request.content
    assert b'"AmountFC":0.10' in raw
    assert b'"VATAmountFC":1234567.89' in raw
    assert b'"AmountFC":-5900.00' in raw
    parsed = json.loads(raw, parse_float=Decimal)
    assert parsed["SalesEntryLines"][0]["AmountFC"] == Decimal("0.10")
    assert created["EntryID"] == "e1"
    assert created["AmountDC"] == Decimal("1234568.0")  # responses are read as Decimal too


async def test_me_has_no_division_segment(client, conn, fresh_token, mock):
    route = mock.get("/api/v1/current/Me").respond(
        200, json={"d": {"results": [{"CurrentDivision": 98765, "UserName": "piet"}]}}
    )
    me = await client.for_connection(conn).me()
    assert me["CurrentDivision"] == 98765
    assert route.calls.last.request.url.params["$select"].startswith("CurrentDivision")


async def test_401_forces_one_refresh_and_one_retry(session, store, mock):
    api = mock.get(ACCOUNTS)
    api.side_effect = [
        httpx.Response(401, headers={"WWW-Authenticate": "Bearer"}),
        httpx.Response(200, json={"d": {"results": [{"ID": "a"}]}}),
    ]
    token_route = mock.post("/api/oauth2/token").respond(200, json=token_json("access-2", "refresh-2"))

    assert await session.get("crm/Accounts") == [{"ID": "a"}]

    assert token_route.call_count == 1
    assert api.call_count == 2
    assert api.calls[1].request.headers["authorization"] == "Bearer access-2"
    assert store.tokens[CONNECTION_ID].refresh_token == "refresh-2"
    assert session.calls == 2


async def test_second_401_is_an_auth_error(session, mock):
    api = mock.get(ACCOUNTS).respond(401, headers={"Reason": "InactiveUser"})
    token_route = mock.post("/api/oauth2/token").respond(200, json=token_json("access-2", "refresh-2"))
    with pytest.raises(ExactAuthError) as caught:
        await session.get("crm/Accounts")
    assert caught.value.status == 401 and caught.value.reason == "InactiveUser"
    assert not caught.value.retryable
    assert api.call_count == 2 and token_route.call_count == 1


async def test_refresh_is_persisted_before_the_new_token_is_used(session, store, clock, mock):
    store.tokens[CONNECTION_ID] = StoredToken("access-1", "refresh-1", clock() + timedelta(seconds=20))
    mock.post("/api/oauth2/token").respond(200, json=token_json("access-2", "refresh-2"))

    def api(request: httpx.Request) -> httpx.Response:
        assert request.headers["authorization"] == "Bearer access-2"
        assert store.tokens[CONNECTION_ID].refresh_token == "refresh-2"  # already durable
        return httpx.Response(200, json={"d": {"results": []}})

    mock.get(ACCOUNTS).mock(side_effect=api)
    assert await session.get("crm/Accounts") == []


async def test_429_raises_rate_limited_and_blocks_the_division(session, client, oauth_app, mock):
    reset = (now_ms() // 60_000 + 1) * 60_000 + 60_000
    mock.get(ACCOUNTS).respond(
        429,
        headers={
            "X-RateLimit-Minutely-Limit": "60",
            "X-RateLimit-Minutely-Remaining": "0",
            "X-RateLimit-Minutely-Reset": str(reset),
        },
    )
    with pytest.raises(ExactRateLimited) as caught:
        await session.get("crm/Accounts")
    assert caught.value.reset_at_ms == reset == caught.value.retry_at_ms
    assert caught.value.retryable

    snap = await client.limiter.snapshot(oauth_app.client_id, DIVISION)
    assert snap["minutely"]["remaining"] == 0 and snap["minutely"]["reset_ms"] == reset
    # the next call is refused locally, without touching Exact
    with pytest.raises(RateBudgetExhausted) as refused:
        await session.get("crm/Accounts")
    assert refused.value.retry_at_ms == reset
    assert session.calls == 1 and session.rate_limited == 1


async def test_exhausted_budget_sends_nothing(session, client, oauth_app, mock):
    route = mock.get(ACCOUNTS).respond(200, json={"d": {"results": []}})
    await client.limiter.on_429(oauth_app.client_id, DIVISION, {})
    with pytest.raises(RateBudgetExhausted):
        await session.get("crm/Accounts")
    assert route.call_count == 0 and session.calls == 0


async def test_rate_limit_headers_update_the_shared_budget(session, client, oauth_app, mock):
    minute_reset = (now_ms() // 60_000 + 1) * 60_000
    day_reset = (now_ms() // 86_400_000 + 1) * 86_400_000
    mock.get(ACCOUNTS).respond(
        200,
        json={"d": {"results": []}},
        headers={
            "X-RateLimit-Limit": "5000",
            "X-RateLimit-Remaining": "1234",
            "X-RateLimit-Reset": str(day_reset),
            "X-RateLimit-Minutely-Limit": "60",
            "X-RateLimit-Minutely-Remaining": "17",
            "X-RateLimit-Minutely-Reset": str(minute_reset),
        },
    )
    await session.get("crm/Accounts")
    snap = await client.limiter.snapshot(oauth_app.client_id, DIVISION)
    assert snap["daily"]["remaining"] == 1234
    assert snap["minutely"]["remaining"] == 17


async def test_business_validation_500_is_not_retryable(session, mock):
    mock.post(f"{API}/salesentry/SalesEntries").respond(
        500,
        json={"error": {"code": "", "message": {"lang": "", "value": "Verplicht: Factuur voor / Besteld door"}}},
    )
    with pytest.raises(ExactValidationError) as caught:
        await session.post("salesentry/SalesEntries", {"Journal": "70"})
    err = caught.value
    assert err.message == "Verplicht: Factuur voor / Besteld door"
    assert err.status == 500
    assert err.retryable is False and err.outcome_unknown is False


async def test_400_is_a_validation_error(session, mock):
    mock.get(ACCOUNTS).respond(
        400, json={"error": {"message": {"value": "This endpoint has mandatory filtering applied"}}}
    )
    with pytest.raises(ExactValidationError) as caught:
        await session.get("crm/Accounts")
    assert "mandatory filtering" in caught.value.message and not caught.value.retryable


@pytest.mark.parametrize("status", [500, 502, 503, 504])
async def test_server_errors_are_retryable_with_unknown_outcome(session, mock, status):
    mock.post(f"{API}/salesentry/SalesEntries").respond(status, text="<html>Bad Gateway</html>")
    with pytest.raises(ExactServerUnavailable) as caught:
        await session.post("salesentry/SalesEntries", {"Journal": "70"})
    assert caught.value.status == status
    assert caught.value.retryable and caught.value.outcome_unknown


async def test_503_retry_after_is_kept(session, mock):
    mock.get(ACCOUNTS).respond(503, headers={"Retry-After": "120"})
    before = now_ms()
    with pytest.raises(ExactServerUnavailable) as caught:
        await session.get("crm/Accounts")
    assert before + 120_000 <= caught.value.retry_at_ms <= now_ms() + 120_000


async def test_timeout_is_retryable_with_unknown_outcome(session, mock, events):
    mock.post(f"{API}/salesentry/SalesEntries").mock(side_effect=httpx.ReadTimeout("slow"))
    with pytest.raises(ExactTransportError) as caught:
        await session.post("salesentry/SalesEntries", {"Journal": "70"})
    assert caught.value.retryable and caught.value.outcome_unknown is True
    assert session.calls == 1
    assert [e.status for e in events] == ["timeout"]


async def test_connect_error_was_not_sent(session, mock):
    mock.post(f"{API}/salesentry/SalesEntries").mock(side_effect=httpx.ConnectError("refused"))
    with pytest.raises(ExactTransportError) as caught:
        await session.post("salesentry/SalesEntries", {"Journal": "70"})
    assert caught.value.retryable and caught.value.outcome_unknown is False


async def test_403_keeps_the_reason_and_404_is_not_found(session, mock):
    mock.get(ACCOUNTS).respond(403, headers={"Reason": "NoDivisionAccess"})
    mock.get(f"{API}/crm/Nope").respond(404)
    with pytest.raises(ExactAuthError) as caught:
        await session.get("crm/Accounts")
    assert caught.value.reason == "NoDivisionAccess" and not caught.value.retryable
    with pytest.raises(ExactNotFound):
        await session.get("crm/Nope")


async def test_calls_hook_and_prometheus_counters(http, tokens, limiter, conn, fresh_token, mock):
    def sample(name: str, labels: dict[str, str]) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    division = 424242  # unique label values for this test
    labels = {"division": str(division), "status": "200"}
    before_ok = sample("koppel_exact_calls_total", labels)
    before_429 = sample("koppel_exact_rate_limited_total", {"division": str(division)})
    mock.get(f"/api/v1/{division}/crm/Accounts").side_effect = [
        httpx.Response(200, json={"d": {"results": []}}),
        httpx.Response(429),
    ]
    session = ExactClient(http, tokens, limiter).for_division(conn, division)  # default hook
    await session.get("crm/Accounts")
    with pytest.raises(ExactRateLimited):
        await session.get("crm/Accounts")
    assert sample("koppel_exact_calls_total", labels) == before_ok + 1
    assert sample("koppel_exact_rate_limited_total", {"division": str(division)}) == before_429 + 1


async def test_sandbox_base_url(http, tokens, limiter, store, clock, oauth_app):
    sandbox = "http://127.0.0.1:8090"
    store.tokens[CONNECTION_ID] = StoredToken("sb", "sb-r", clock() + timedelta(minutes=5))
    session = ExactClient(http, tokens, limiter, on_call=None).for_division(
        ConnectionRef(CONNECTION_ID, sandbox, oauth_app), DIVISION
    )
    with respx.mock(base_url=sandbox) as router:
        router.get(ACCOUNTS).respond(200, json={"d": {"results": [{"ID": "x"}]}})
        assert await session.get("crm/Accounts") == [{"ID": "x"}]


async def test_session_without_division_only_does_me(client, conn):
    with pytest.raises(ValueError):
        await client.for_connection(conn).get("crm/Accounts")


def test_error_hierarchy():
    assert issubclass(ExactRateLimited, ExactHTTPError)
    assert issubclass(ExactValidationError, ExactHTTPError)
    assert issubclass(ExactTransportError, ExactError)
    assert ExactNotFound(404, "x").retryable is False
    assert ExactServerUnavailable(502).retryable is True
    assert RateBudgetExhausted(1).retryable is True
    assert ExactAuthError(400, "early", retryable=True).retryable is True
