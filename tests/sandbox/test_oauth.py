"""OAuth2: consent redirect, code exchange, refresh rules, chains and the token quota."""

from __future__ import annotations

import base64
from urllib.parse import parse_qs, urlsplit

import httpx

from app.sandbox import (
    CLIENT_ID,
    CLIENT_SECRET,
    DEFAULT_USER_ID,
    OTHER_USER_EMAIL,
    OTHER_USER_ID,
    SandboxState,
)
from tests.sandbox.support import bearer, url

REDIRECT = "http://127.0.0.1:8000/oauth/exact/callback"
TOKEN = "/api/oauth2/token"


async def consent(client: httpx.AsyncClient, **extra: str) -> httpx.Response:
    params = {"client_id": CLIENT_ID, "redirect_uri": REDIRECT, "response_type": "code", "state": "st-1", **extra}
    return await client.get("/api/oauth2/auth", params=params)


async def get_code(client: httpx.AsyncClient, **extra: str) -> str:
    response = await consent(client, **extra)
    assert response.status_code == 302
    return parse_qs(urlsplit(response.headers["location"]).query)["code"][0]


def exchange_form(code: str, **overrides: str) -> dict[str, str]:
    return {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        **overrides,
    }


def refresh_form(refresh_token: str, **overrides: str) -> dict[str, str]:
    return {
        "grant_type": "refresh_token",
        "refresh_token": refresh_token,
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        **overrides,
    }


# -- consent ------------------------------------------------------------------------------

async def test_consent_redirects_with_url_encoded_code_and_state(client):
    response = await consent(client)
    assert response.status_code == 302
    location = response.headers["location"]
    assert location.startswith(REDIRECT + "?")
    raw_query = urlsplit(location).query
    assert "%21" in raw_query and "!" not in raw_query  # Exact's '!' arrives as %21
    params = parse_qs(raw_query)
    assert "!" in params["code"][0]
    assert params["state"] == ["st-1"]


async def test_consent_accepts_any_loopback_port(client):
    response = await client.get(
        "/api/oauth2/auth",
        params={"client_id": CLIENT_ID, "redirect_uri": "http://localhost:51234/oauth/exact/callback",
                "response_type": "code"},
    )
    assert response.status_code == 302
    assert response.headers["location"].startswith("http://localhost:51234/oauth/exact/callback?code=")


async def test_consent_unknown_client_or_redirect_is_an_error_page(client):
    unknown = await client.get("/api/oauth2/auth", params={"client_id": "nope", "redirect_uri": REDIRECT})
    assert unknown.status_code == 400
    assert "text/html" in unknown.headers["content-type"]
    wrong_uri = await consent(client, redirect_uri="https://evil.example/cb")
    assert wrong_uri.status_code == 400
    assert "location" not in wrong_uri.headers


async def test_consent_deny_redirects_with_access_denied(client):
    response = await consent(client, sandbox_deny="1")
    params = parse_qs(urlsplit(response.headers["location"]).query)
    assert params == {"error": ["access_denied"], "state": ["st-1"]}


async def test_sandbox_user_picks_who_consents(client):
    code = await get_code(client, sandbox_user=OTHER_USER_EMAIL)
    tokens = (await client.post(TOKEN, data=exchange_form(code))).json()
    me = await client.get("/api/v1/current/Me", headers=bearer(tokens["access_token"]))
    assert me.json()["d"]["results"][0]["UserID"] == OTHER_USER_ID


# -- code exchange ------------------------------------------------------------------------

async def test_code_exchange_returns_exact_token_response(client):
    code = await get_code(client)
    response = await client.post(TOKEN, data=exchange_form(code))
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "refresh_token"}
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == "600"  # a string, as Exact sends it
    me = await client.get("/api/v1/current/Me", headers=bearer(body["access_token"]))
    assert me.status_code == 200


async def test_code_is_single_use(client):
    code = await get_code(client)
    assert (await client.post(TOKEN, data=exchange_form(code))).status_code == 200
    again = await client.post(TOKEN, data=exchange_form(code))
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"


async def test_code_expires_after_three_minutes(client, state: SandboxState):
    fresh = await get_code(client)
    stale = await get_code(client)
    state.advance_clock(170)
    assert (await client.post(TOKEN, data=exchange_form(fresh))).status_code == 200
    state.advance_clock(11)  # 181 s after issue
    expired = await client.post(TOKEN, data=exchange_form(stale))
    assert expired.status_code == 400
    assert expired.json()["error"] == "invalid_grant"


async def test_code_exchange_checks_redirect_uri_and_secret(client):
    code = await get_code(client)
    other_uri = await client.post(TOKEN, data=exchange_form(code, redirect_uri="http://localhost:8000/oauth/exact/callback"))
    assert other_uri.status_code == 400 and other_uri.json()["error"] == "invalid_grant"
    bad_secret = await client.post(TOKEN, data=exchange_form(code, client_secret="wrong"))
    assert bad_secret.status_code == 401
    assert bad_secret.json()["error"] == "invalid_client"
    unknown = await client.post(TOKEN, data=exchange_form("no-such-code"))
    assert unknown.status_code == 400 and unknown.json()["error"] == "invalid_grant"


async def test_client_credentials_may_come_as_basic_auth(client):
    code = await get_code(client)
    basic = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT}
    response = await client.post(TOKEN, data=form, headers={"Authorization": f"Basic {basic}"})
    assert response.status_code == 200


async def test_unsupported_grant_type(client):
    response = await client.post(TOKEN, data={"grant_type": "client_credentials", "client_id": CLIENT_ID})
    assert response.status_code == 400
    assert response.json()["error"] == "unsupported_grant_type"


# -- refresh ------------------------------------------------------------------------------

async def test_refresh_too_early_is_refused_with_reason_header(client, state, tokens):
    state.advance_clock(600 - 31)  # 31 s left: one second too early
    response = await client.post(TOKEN, data=refresh_form(tokens["refresh_token"]))
    assert response.status_code == 400
    assert response.headers["Reason"] == "TooEarlyToRefreshTokens"
    assert response.json() == {
        "error": "access_denied",
        "error_description": "Rate limit exceeded: access_token not expired",
    }
    assert state.token_stats()["too_early"] == 1
    # The refused call did not consume the refresh token: it works inside the window.
    state.advance_clock(2)
    assert (await client.post(TOKEN, data=refresh_form(tokens["refresh_token"]))).status_code == 200


async def test_refresh_in_last_30_seconds_rotates_tokens(client, state, tokens):
    state.advance_clock(600 - 30)
    response = await client.post(TOKEN, data=refresh_form(tokens["refresh_token"]))
    assert response.status_code == 200
    new = response.json()
    assert new["refresh_token"] != tokens["refresh_token"]
    assert new["access_token"] != tokens["access_token"]
    assert new["expires_in"] == "600"
    assert state.token_stats()["refreshes"] == 1
    # The new access token lives 600 s from now, so the next refresh is early again.
    state.advance_clock(60)
    again = await client.post(TOKEN, data=refresh_form(new["refresh_token"]))
    assert again.status_code == 400 and again.headers["Reason"] == "TooEarlyToRefreshTokens"


async def test_refresh_after_access_expiry_works(client, state, tokens):
    state.advance_clock(3600)
    assert (await client.post(TOKEN, data=refresh_form(tokens["refresh_token"]))).status_code == 200


async def test_old_refresh_token_is_refused_with_401(client, state, tokens):
    state.advance_clock(590)
    first = await client.post(TOKEN, data=refresh_form(tokens["refresh_token"]))
    assert first.status_code == 200
    replay = await client.post(TOKEN, data=refresh_form(tokens["refresh_token"]))
    assert replay.status_code == 401
    assert replay.json() == {"error": "unauthorized_client", "error_description": "Old refresh token used."}
    assert state.token_stats()["old_refresh_token_used"] == 1
    # The newest refresh token of the chain still works once its window opens.
    state.advance_clock(590)
    assert (await client.post(TOKEN, data=refresh_form(first.json()["refresh_token"]))).status_code == 200


async def test_refresh_token_dies_after_30_idle_days(client, state, tokens):
    state.advance_clock(30 * 86400 + 1)
    response = await client.post(TOKEN, data=refresh_form(tokens["refresh_token"]))
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "invalid_request"
    assert body["error_description"].startswith("The refresh token expired at ")
    assert " and it is now " in body["error_description"]
    assert body["error_description"].endswith("M.")  # "…4:15:50 PM."
    assert state.token_stats()["expired_refresh_token"] == 1


async def test_refresh_token_used_on_day_29_keeps_the_chain_alive(client, state, tokens):
    state.advance_clock(29 * 86400)
    first = await client.post(TOKEN, data=refresh_form(tokens["refresh_token"]))
    assert first.status_code == 200
    state.advance_clock(29 * 86400)  # 58 days after consent, 29 after the last use
    assert (await client.post(TOKEN, data=refresh_form(first.json()["refresh_token"]))).status_code == 200


async def test_refresh_with_bad_secret_or_unknown_token(client, tokens, state):
    state.advance_clock(590)
    bad = await client.post(TOKEN, data=refresh_form(tokens["refresh_token"], client_secret="x"))
    assert bad.status_code == 401 and bad.json()["error"] == "invalid_client"
    unknown = await client.post(TOKEN, data=refresh_form("sbx-rt.unknown"))
    assert unknown.status_code == 400 and unknown.json()["error"] == "invalid_grant"


# -- one chain per (user, app) --------------------------------------------------------------

async def test_new_consent_kills_older_chain_on_first_refresh(client, state):
    old = state.issue_tokens()
    code = await get_code(client)
    new = (await client.post(TOKEN, data=exchange_form(code))).json()

    # Until the new chain's refresh token is used, both chains work.
    assert (await client.get("/api/v1/current/Me", headers=bearer(old["access_token"]))).status_code == 200
    state.advance_clock(590)
    assert (await client.post(TOKEN, data=refresh_form(new["refresh_token"]))).status_code == 200

    assert (await client.get("/api/v1/current/Me", headers=bearer(old["access_token"]))).status_code == 401
    killed = await client.post(TOKEN, data=refresh_form(old["refresh_token"]))
    assert killed.status_code == 401
    assert killed.json()["error_description"] == "Old refresh token used."


async def test_chains_of_different_users_do_not_interfere(client, state):
    jan = state.issue_tokens(user=DEFAULT_USER_ID)
    piet = state.issue_tokens(user=OTHER_USER_ID)
    state.advance_clock(590)
    assert (await client.post(TOKEN, data=refresh_form(piet["refresh_token"]))).status_code == 200
    assert (await client.post(TOKEN, data=refresh_form(jan["refresh_token"]))).status_code == 200


async def test_chains_of_different_clients_do_not_interfere(client, state):
    state.register_client("other-app", "other-secret", [REDIRECT])
    ours = state.issue_tokens()
    theirs = state.issue_tokens(client_id="other-app")
    state.advance_clock(590)
    form = refresh_form(theirs["refresh_token"], client_id="other-app", client_secret="other-secret")
    assert (await client.post(TOKEN, data=form)).status_code == 200
    assert (await client.post(TOKEN, data=refresh_form(ours["refresh_token"]))).status_code == 200


# -- quota --------------------------------------------------------------------------------

async def test_token_endpoint_allows_200_calls_per_user_and_app_per_day(client, state, tokens):
    # Refused calls count too: 200 too-early attempts use up the day's budget.
    for _ in range(200):
        response = await client.post(TOKEN, data=refresh_form(tokens["refresh_token"]))
        assert response.status_code == 400
    state.advance_clock(590)
    over = await client.post(TOKEN, data=refresh_form(tokens["refresh_token"]))
    assert over.status_code == 429
    assert over.json()["error"] == "access_denied"
    assert state.token_stats()["quota_exceeded"] == 1

    # Another user has a budget of their own.
    piet = state.issue_tokens(user=OTHER_USER_ID)
    state.advance_clock(590)
    assert (await client.post(TOKEN, data=refresh_form(piet["refresh_token"]))).status_code == 200


async def test_token_quota_resets_at_midnight_utc(client, state, tokens):
    state.set_limits(token_daily=2)
    for _ in range(2):
        await client.post(TOKEN, data=refresh_form(tokens["refresh_token"]))
    assert (await client.post(TOKEN, data=refresh_form(tokens["refresh_token"]))).status_code == 429
    state.advance_clock(86400)
    assert (await client.post(TOKEN, data=refresh_form(tokens["refresh_token"]))).status_code == 200


async def test_token_endpoint_sends_no_rate_limit_headers(client, state, tokens):
    state.advance_clock(590)
    response = await client.post(TOKEN, data=refresh_form(tokens["refresh_token"]))
    assert not [h for h in response.headers if h.lower().startswith("x-ratelimit")]


async def test_rest_calls_are_refused_with_expired_access_token(client, state, auth):
    assert (await client.get(url("vat/VATCodes"), headers=auth)).status_code == 200
    state.advance_clock(599)
    assert (await client.get(url("vat/VATCodes"), headers=auth)).status_code == 200
    state.advance_clock(1)
    expired = await client.get(url("vat/VATCodes"), headers=auth)
    assert expired.status_code == 401
    assert expired.json()["error"]["message"]["value"]
    assert (await client.get(url("vat/VATCodes"), headers=bearer("made-up"))).status_code == 401
    assert (await client.get(url("vat/VATCodes"))).status_code == 401
