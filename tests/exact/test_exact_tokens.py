"""TokenManager: refresh only in the last 30 s, once across processes, persist before use."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import respx
from structlog.testing import capture_logs

from app.exact.errors import ExactAuthError, ExactRateLimited, ExactTransportError, NeedsConsent
from app.exact.tokens import StoredToken, TokenManager

from tests.exact.support import BASE, CONNECTION_ID, FakeClock, MemoryTokenStore, token_json


def form(request: httpx.Request) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(request.content.decode()).items()}


def store_token(store: MemoryTokenStore, clock: FakeClock, seconds_left: float) -> StoredToken:
    token = StoredToken("old-access", "old-refresh", clock() + timedelta(seconds=seconds_left))
    store.tokens[CONNECTION_ID] = token
    return token


async def test_no_refresh_while_more_than_30s_left(tokens, store, clock, oauth_app, mock):
    route = mock.post("/api/oauth2/token")
    store_token(store, clock, 31)
    for _ in range(5):
        assert await tokens.access_token(CONNECTION_ID, BASE, oauth_app) == "old-access"
    assert route.call_count == 0
    assert store.saves == []
    assert store.loads == 1  # a fresh token is remembered: no database read per Exact call


async def test_refresh_in_window_rotates_and_persists(tokens, store, clock, oauth_app, mock):
    store_token(store, clock, 30)  # exactly 30 s left: inside Exact's refresh window
    route = mock.post("/api/oauth2/token").respond(200, json=token_json("new-access", "new-refresh"))

    assert await tokens.access_token(CONNECTION_ID, BASE, oauth_app) == "new-access"

    assert route.call_count == 1
    sent = form(route.calls.last.request)
    assert sent == {
        "grant_type": "refresh_token",
        "refresh_token": "old-refresh",
        "client_id": oauth_app.client_id,
        "client_secret": oauth_app.client_secret,
    }
    assert route.calls.last.request.headers["content-type"] == "application/x-www-form-urlencoded"
    saved = store.tokens[CONNECTION_ID]
    assert (saved.access_token, saved.refresh_token) == ("new-access", "new-refresh")
    assert saved.expires_at == clock() + timedelta(seconds=600)  # "600" is a string
    # and the fresh token is now used without any further call
    assert await tokens.access_token(CONNECTION_ID, BASE, oauth_app) == "new-access"
    assert route.call_count == 1


async def test_expired_token_is_refreshed(tokens, store, clock, oauth_app, mock):
    store_token(store, clock, -300)
    mock.post("/api/oauth2/token").respond(200, json=token_json("new-access", "new-refresh"))
    assert await tokens.access_token(CONNECTION_ID, BASE, oauth_app) == "new-access"


async def test_concurrent_refresh_across_processes_calls_token_endpoint_once(
    http, store, clock, oauth_app, mock, redis_client, redis_connections
):
    store_token(store, clock, 10)
    hits = 0

    async def token_endpoint(request: httpx.Request) -> httpx.Response:
        nonlocal hits
        hits += 1
        await asyncio.sleep(0.05)  # a slow token endpoint widens any race
        assert form(request)["refresh_token"] == "old-refresh"
        return httpx.Response(200, json=token_json("new-access", "new-refresh"))

    route = mock.post("/api/oauth2/token").mock(side_effect=token_endpoint)
    # three "processes": separate TokenManagers with separate Redis connections and HTTP
    # clients, sharing only Redis and the (durable) token store
    managers = []
    for _ in range(3):
        managers.append(TokenManager(httpx.AsyncClient(), redis_connections(), store, clock=clock))
    try:
        results = await asyncio.gather(
            *(managers[i % 3].access_token(CONNECTION_ID, BASE, oauth_app) for i in range(50))
        )
    finally:
        for manager in managers:
            await manager._http.aclose()

    assert hits == 1 and route.call_count == 1
    assert results == ["new-access"] * 50
    assert len(store.saves) == 1
    assert store.tokens[CONNECTION_ID].refresh_token == "new-refresh"
    assert await redis_client.exists(f"koppel:exact:token-lock:{CONNECTION_ID}") == 0


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (401, {"error": "unauthorized_client", "error_description": "Old refresh token used."}),
        (
            400,
            {
                "error": "invalid_request",
                "error_description": "The refresh token expired at 2025-02-01 10:00:00 and it is now 2025-03-14 12:00:00",
            },
        ),
        (400, {"error": "invalid_grant", "error_description": "Invalid refresh token"}),
        (401, {"error": "invalid_grant"}),
    ],
)
async def test_dead_refresh_token_needs_consent(tokens, store, clock, oauth_app, mock, status, body):
    store_token(store, clock, 5)
    mock.post("/api/oauth2/token").respond(status, json=body)

    with pytest.raises(NeedsConsent) as caught:
        await tokens.access_token(CONNECTION_ID, BASE, oauth_app)

    assert caught.value.connection_id == CONNECTION_ID
    assert caught.value.retryable is False
    assert len(store.consent) == 1 and store.consent[0][0] == CONNECTION_ID
    assert store.saves == []


async def test_missing_token_needs_consent(tokens, store, oauth_app, mock):
    with pytest.raises(NeedsConsent):
        await tokens.access_token(CONNECTION_ID, BASE, oauth_app)
    assert store.consent and store.consent[0][0] == CONNECTION_ID


async def test_too_early_is_retryable_and_keeps_consent(tokens, store, clock, oauth_app, mock):
    token = store_token(store, clock, 300)
    mock.post("/api/oauth2/token").respond(
        400,
        json={"error": "access_denied", "error_description": "Rate limit exceeded: access_token not expired"},
        headers={"Reason": "TooEarlyToRefreshTokens"},
    )
    # force_refresh is how an early refresh happens in practice (an unexpected 401)
    with pytest.raises(ExactAuthError) as caught:
        await tokens.force_refresh(CONNECTION_ID, BASE, oauth_app, "old-access")

    err = caught.value
    assert err.retryable is True
    assert err.reason == "TooEarlyToRefreshTokens"
    # come back when the refresh window opens (30 s before expiry)
    assert err.retry_at_ms == int((token.expires_at - timedelta(seconds=30)).timestamp() * 1000)
    assert store.consent == [] and store.saves == []


async def test_force_refresh_uses_token_another_process_already_refreshed(
    tokens, store, clock, oauth_app, mock
):
    route = mock.post("/api/oauth2/token")
    store.tokens[CONNECTION_ID] = StoredToken("newer-access", "newer-refresh", clock() + timedelta(minutes=9))
    assert await tokens.force_refresh(CONNECTION_ID, BASE, oauth_app, "old-access") == "newer-access"
    assert route.call_count == 0


async def test_force_refresh_refreshes_the_token_it_saw(tokens, store, clock, oauth_app, mock):
    store_token(store, clock, 200)
    route = mock.post("/api/oauth2/token").respond(200, json=token_json("new-access", "new-refresh"))
    assert await tokens.force_refresh(CONNECTION_ID, BASE, oauth_app, "old-access") == "new-access"
    assert route.call_count == 1
    assert store.tokens[CONNECTION_ID].refresh_token == "new-refresh"


async def test_refresh_token_in_error_response_is_still_saved(tokens, store, clock, oauth_app, mock):
    """GH#559: a refused (rate-limited) token call may still rotate the refresh token."""
    store_token(store, clock, 10)
    mock.post("/api/oauth2/token").respond(
        429, json={"error": "rate_limited", "refresh_token": "rotated-refresh"}
    )
    with pytest.raises(ExactRateLimited):
        await tokens.access_token(CONNECTION_ID, BASE, oauth_app)
    saved = store.tokens[CONNECTION_ID]
    assert saved.refresh_token == "rotated-refresh"
    assert saved.access_token == "old-access"


async def test_full_token_in_4xx_response_is_saved_and_used(tokens, store, clock, oauth_app, mock):
    store_token(store, clock, 10)
    mock.post("/api/oauth2/token").respond(400, json=token_json("new-access", "new-refresh"))
    assert await tokens.access_token(CONNECTION_ID, BASE, oauth_app) == "new-access"
    assert store.tokens[CONNECTION_ID].refresh_token == "new-refresh"


async def test_timeout_during_refresh_keeps_the_old_token(tokens, store, clock, oauth_app, mock):
    old = store_token(store, clock, 10)
    mock.post("/api/oauth2/token").mock(side_effect=httpx.ReadTimeout("slow"))
    with pytest.raises(ExactTransportError) as caught:
        await tokens.access_token(CONNECTION_ID, BASE, oauth_app)
    assert caught.value.retryable and caught.value.outcome_unknown
    assert store.tokens[CONNECTION_ID] == old and store.consent == []


async def test_save_happens_before_the_lock_is_released(
    http, store, clock, oauth_app, mock, redis_client
):
    """The rotated token is durable before any other process can take the lock."""
    store_token(store, clock, 10)
    observed: list[bool] = []

    class WatchingStore(MemoryTokenStore):
        async def save(self, connection_id, token):
            observed.append(await redis_client.exists(f"koppel:exact:token-lock:{connection_id}") == 1)
            await super().save(connection_id, token)

    watching = WatchingStore()
    watching.tokens = store.tokens
    manager = TokenManager(http, redis_client, watching, clock=clock)
    mock.post("/api/oauth2/token").respond(200, json=token_json("new-access", "new-refresh"))
    assert await manager.access_token(CONNECTION_ID, BASE, oauth_app) == "new-access"
    assert observed == [True]


async def test_exchange_code_decodes_and_posts_code(tokens, clock, oauth_app, mock):
    route = mock.post("/api/oauth2/token").respond(200, json=token_json("first-access", "first-refresh"))
    token = await tokens.exchange_code(BASE, oauth_app, "stampNL001.abc%21def")
    assert token == StoredToken("first-access", "first-refresh", clock() + timedelta(seconds=600))
    sent = form(route.calls.last.request)
    assert sent["grant_type"] == "authorization_code"
    assert sent["code"] == "stampNL001.abc!def"
    assert sent["redirect_uri"] == oauth_app.redirect_uri
    assert sent["client_id"] == oauth_app.client_id


async def test_exchange_code_reused_code_is_an_auth_error(tokens, oauth_app, mock):
    mock.post("/api/oauth2/token").respond(400, json={"error": "invalid_grant"})
    with pytest.raises(ExactAuthError) as caught:
        await tokens.exchange_code(BASE, oauth_app, "used-code")
    assert caught.value.status == 400 and not caught.value.retryable


def test_authorize_url(tokens, oauth_app):
    url = tokens.authorize_url(BASE, oauth_app, state="st-42")
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == f"{BASE}/api/oauth2/auth"
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert query == {
        "response_type": "code",
        "client_id": oauth_app.client_id,
        "redirect_uri": oauth_app.redirect_uri,
        "state": "st-42",
        "force_login": "1",
    }
    assert "force_login" not in tokens.authorize_url(BASE, oauth_app, "s", force_login=False)


async def test_sandbox_base_url(http, redis_client, store, clock, oauth_app):
    sandbox = "http://127.0.0.1:8090"
    store_token(store, clock, 1)
    manager = TokenManager(http, redis_client, store, clock=clock)
    with respx.mock(base_url=sandbox) as router:
        router.post("/api/oauth2/token").respond(200, json=token_json("sb-access", "sb-refresh"))
        assert await manager.access_token(CONNECTION_ID, sandbox + "/", oauth_app) == "sb-access"


async def test_tokens_and_secrets_never_logged(tokens, store, clock, oauth_app, mock):
    store_token(store, clock, 5)
    mock.post("/api/oauth2/token").respond(200, json=token_json("new-access", "new-refresh"))
    with capture_logs() as logs:
        await tokens.access_token(CONNECTION_ID, BASE, oauth_app)
    assert logs, "expected a log line for the refresh"
    text = repr(logs)
    for secret in ("old-access", "old-refresh", "new-access", "new-refresh", oauth_app.client_secret):
        assert secret not in text
    assert str(CONNECTION_ID) in text
    assert "new-refresh" not in repr(store.tokens[CONNECTION_ID])
    assert oauth_app.client_secret not in repr(oauth_app)


async def test_refresh_without_rotated_refresh_token_keeps_the_current_one(
    tokens, store, clock, oauth_app, mock
):
    store_token(store, clock, 10)
    mock.post("/api/oauth2/token").respond(
        200, json={"access_token": "new-access", "token_type": "bearer", "expires_in": "600"}
    )
    assert await tokens.access_token(CONNECTION_ID, BASE, oauth_app) == "new-access"
    assert store.tokens[CONNECTION_ID].refresh_token == "old-refresh"
