"""Rate limits per (app, division): headers in epoch ms, 60/minute, 5,000/day, 429s."""

from __future__ import annotations

from app.sandbox import SECOND_DIVISION
from tests.sandbox.support import T0, bearer, url

DAILY = ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")
MINUTELY = ("X-RateLimit-Minutely-Limit", "X-RateLimit-Minutely-Remaining", "X-RateLimit-Minutely-Reset")
MINUTE_START = int(T0 // 60) * 60


def rate_headers(response) -> dict[str, int]:
    return {name: int(response.headers[name]) for name in (*DAILY, *MINUTELY) if name in response.headers}


async def test_every_rest_response_carries_six_headers_in_epoch_ms(client, auth, state):
    response = await client.get(url("vat/VATCodes"), headers=auth)
    headers = rate_headers(response)
    assert set(headers) == set(DAILY + MINUTELY)
    assert headers["X-RateLimit-Limit"] == 5000 and headers["X-RateLimit-Remaining"] == 4999
    assert headers["X-RateLimit-Minutely-Limit"] == 60 and headers["X-RateLimit-Minutely-Remaining"] == 59
    # Minutely reset: the next whole minute, in milliseconds.
    assert headers["X-RateLimit-Minutely-Reset"] == (MINUTE_START + 60) * 1000
    assert headers["X-RateLimit-Minutely-Reset"] % 60_000 == 0
    # Daily reset: the next 00:00 UTC, in milliseconds.
    assert headers["X-RateLimit-Reset"] == (int(T0 // 86400) + 1) * 86400 * 1000
    # Errors count and carry the headers too.
    bad = await client.get(url("crm/Accounts"), headers=auth)
    assert bad.status_code == 400 and rate_headers(bad)["X-RateLimit-Minutely-Remaining"] == 58


async def test_61st_call_in_a_minute_is_429_with_only_minutely_headers(client, auth, state):
    for n in range(60):
        response = await client.get(url("vat/VATCodes"), headers=auth)
        assert response.status_code == 200, n
    assert rate_headers(response)["X-RateLimit-Minutely-Remaining"] == 0
    over = await client.get(url("vat/VATCodes"), headers=auth)
    assert over.status_code == 429
    assert set(rate_headers(over)) == set(MINUTELY)
    assert rate_headers(over)["X-RateLimit-Minutely-Remaining"] == 0
    assert state.snapshot()["rate_limited"] == {"1234567": 1}
    # 429s do not use up budget, and the next minute starts afresh.
    state.advance_clock(MINUTE_START + 60 - state.clock.now())
    again = await client.get(url("vat/VATCodes"), headers=auth)
    assert again.status_code == 200
    assert rate_headers(again)["X-RateLimit-Minutely-Remaining"] == 59
    assert rate_headers(again)["X-RateLimit-Remaining"] == 5000 - 61


async def test_budget_is_per_division(client, auth, state):
    state.set_limits(minutely=2)
    for _ in range(2):
        await client.get(url("vat/VATCodes"), headers=auth)
    assert (await client.get(url("vat/VATCodes"), headers=auth)).status_code == 429
    assert (await client.get(url("vat/VATCodes", SECOND_DIVISION), headers=auth)).status_code == 200


async def test_budget_is_per_app(client, auth, state):
    state.set_limits(minutely=1)
    state.register_client("second-app", "s", [])
    other = bearer(state.issue_tokens(client_id="second-app")["access_token"])
    assert (await client.get(url("vat/VATCodes"), headers=auth)).status_code == 200
    assert (await client.get(url("vat/VATCodes"), headers=auth)).status_code == 429
    assert (await client.get(url("vat/VATCodes"), headers=other)).status_code == 200


async def test_daily_limit_and_reset_at_midnight(client, auth, state):
    state.set_limits(daily=3, minutely=100)
    for _ in range(3):
        assert (await client.get(url("vat/VATCodes"), headers=auth)).status_code == 200
    over = await client.get(url("vat/VATCodes"), headers=auth)
    assert over.status_code == 429
    assert rate_headers(over)["X-RateLimit-Remaining"] == 0
    state.advance_clock(86400)
    fresh = state.issue_tokens()  # the old access token expired meanwhile
    response = await client.get(url("vat/VATCodes"), headers=bearer(fresh["access_token"]))
    assert response.status_code == 200
    assert rate_headers(response)["X-RateLimit-Remaining"] == 2


async def test_limits_can_be_raised_for_benchmarks(client, auth, state):
    response = await client.put("/sandbox/limits", json={"minutely": 500, "daily": 100000})
    assert response.json()["minutely"] == 500
    for _ in range(100):
        last = await client.get(url("vat/VATCodes"), headers=auth, params={"$top": "1"})
        assert last.status_code == 200
    assert rate_headers(last)["X-RateLimit-Minutely-Limit"] == 500
    assert rate_headers(last)["X-RateLimit-Minutely-Remaining"] == 400


async def test_me_counts_against_the_current_division(client, auth, state):
    me = await client.get("/api/v1/current/Me", headers=auth)
    assert rate_headers(me)["X-RateLimit-Minutely-Remaining"] == 59
    assert state.snapshot()["requests"] == {"1234567": 1}
