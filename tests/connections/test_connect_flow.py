"""The OAuth connect flow through the sandbox: authorize → consent → callback, and every way it
can go wrong (denial, a replayed or expired code, a bad state, the same Exact user twice).

Runs on SQLite and PostgreSQL, with real Redis; Exact is the in-process sandbox."""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlencode, urlsplit

from sqlalchemy import select

from app import crypto
from app.connections.models import ExactConnection, ExactDivision
from app.connections.oauth import read_state, sign_state
from app.sandbox.seed import DEFAULT_DIVISION, DEFAULT_USER_ID, OTHER_USER_EMAIL, SECOND_DIVISION
from tests.booking.harness import SANDBOX_URL
from tests.connections.support import (
    JSON,
    connect,
    consent_redirect,
    installation_admin,
    koppel_api,
    new_connection,
    tenant,
)
from tests.factories import SECRET_KEY

HTML = {"Accept": "text/html,application/xhtml+xml"}


async def _row(sessionmaker, connection_id: int) -> ExactConnection | None:  # type: ignore[no-untyped-def]
    async with sessionmaker() as session:
        return await session.get(ExactConnection, connection_id)


async def test_connect_stores_the_chain_the_user_and_both_divisions(database_url, sessionmaker, redis_client,
                                                                    redis_url, sandbox, sandbox_client) -> None:
    firm = await tenant(sessionmaker, "Administratiekantoor")
    install = await installation_admin(sessionmaker)
    async with koppel_api(database_url, redis_url, sandbox_client) as api:
        connection_id = await new_connection(api, install, firm.tenant_id)
        authorize = await api.get(f"/api/v1/connections/{connection_id}/authorize", headers=firm.admin)
        as_json = await api.get(f"/api/v1/connections/{connection_id}/authorize", headers={**firm.admin, **JSON})
        response = await connect(api, sandbox_client, connection_id, firm.admin)
        detail = await api.get(f"/api/v1/connections/{connection_id}", headers=firm.viewer)
        listed = await api.get("/api/v1/connections", headers=firm.viewer)

    assert authorize.status_code == 302
    location = urlsplit(authorize.headers["location"])
    query = parse_qs(location.query)
    assert f"{location.scheme}://{location.netloc}{location.path}" == f"{SANDBOX_URL}/api/oauth2/auth"
    assert query["client_id"] == ["koppel-sandbox"] and query["response_type"] == ["code"]
    assert query["redirect_uri"] == ["http://127.0.0.1:8000/oauth/exact/callback"]
    assert query["force_login"] == ["1"]
    assert read_state(SECRET_KEY, query["state"][0]) == connection_id
    assert as_json.status_code == 200 and as_json.json()["authorize_url"].startswith(SANDBOX_URL)

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["code"] == "connected" and body["connection_id"] == connection_id
    assert body["exact_user_name"] == "Jan de Vries" and body["merged_from"] is None
    assert {d["division"] for d in body["divisions"]} == {DEFAULT_DIVISION, SECOND_DIVISION}

    shown = detail.json()
    assert shown["state"] == "active" and shown["exact_user_id"] == DEFAULT_USER_ID
    current = [d["division"] for d in shown["divisions"] if d["is_current"]]
    assert current == [DEFAULT_DIVISION]
    assert listed.json()["connections"][0]["division_count"] == 2

    row = await _row(sessionmaker, connection_id)
    assert row is not None and row.refreshed_at is not None and row.access_expires_at is not None
    access = crypto.decrypt(SECRET_KEY, row.access_token_enc or "")
    assert "sbx-at." not in (row.access_token_enc or "")  # encrypted at rest
    assert access not in detail.text and access not in response.text  # never in an answer
    known, valid = sandbox.tokens.lookup_access(access)
    assert known is not None and valid and known.user_id == DEFAULT_USER_ID


async def test_callback_renders_a_page_for_a_browser(database_url, sessionmaker, redis_client, redis_url, sandbox,
                                                     sandbox_client) -> None:
    firm = await tenant(sessionmaker, "Kantoor")
    install = await installation_admin(sessionmaker)
    async with koppel_api(database_url, redis_url, sandbox_client) as api:
        connection_id = await new_connection(api, install, firm.tenant_id, name="Jan's Exact")
        callback = await consent_redirect(api, sandbox_client, connection_id, firm.admin)
        page = await api.get(callback, headers=HTML)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "Exact Online connected" in page.text and "Jan&#x27;s Exact" in page.text
    assert str(SECOND_DIVISION) in page.text


async def test_denied_consent_leaves_the_connection_pending(database_url, sessionmaker, redis_client, redis_url,
                                                            sandbox, sandbox_client) -> None:
    firm = await tenant(sessionmaker, "Kantoor")
    install = await installation_admin(sessionmaker)
    async with koppel_api(database_url, redis_url, sandbox_client) as api:
        connection_id = await new_connection(api, install, firm.tenant_id)
        callback = await consent_redirect(api, sandbox_client, connection_id, firm.admin, sandbox_deny="1")
        as_json = await api.get(callback, headers=JSON)
        as_page = await api.get(callback, headers=HTML)
        detail = (await api.get(f"/api/v1/connections/{connection_id}", headers=firm.viewer)).json()
    assert "error=access_denied" in callback
    assert as_json.status_code == 400 and as_json.json()["code"] == "consent_denied"
    assert "declined" in as_json.json()["detail"]
    assert as_page.status_code == 400 and "declined" in as_page.text and "consent_denied" in as_page.text
    assert detail["state"] == "pending" and "declined" in detail["state_reason"]
    assert sandbox.token_stats()["code_exchanges"] == 0


async def test_replayed_code_is_refused_and_changes_nothing(database_url, sessionmaker, redis_client, redis_url,
                                                            sandbox, sandbox_client) -> None:
    firm = await tenant(sessionmaker, "Kantoor")
    install = await installation_admin(sessionmaker)
    async with koppel_api(database_url, redis_url, sandbox_client) as api:
        connection_id = await new_connection(api, install, firm.tenant_id)
        callback = await consent_redirect(api, sandbox_client, connection_id, firm.admin)
        first = await api.get(callback, headers=JSON)
        stored = (await _row(sessionmaker, connection_id)).refresh_token_enc  # type: ignore[union-attr]
        replay = await api.get(callback, headers=JSON)
        replay_page = await api.get(callback, headers=HTML)
    assert first.status_code == 200
    assert replay.status_code == 400 and replay.json()["code"] == "code_refused"
    assert "already been used" in replay.json()["detail"]
    assert replay_page.status_code == 400 and "start again" in replay_page.text
    row = await _row(sessionmaker, connection_id)
    assert row is not None and row.state == "active" and row.refresh_token_enc == stored


async def test_expired_code_is_refused(database_url, sessionmaker, redis_client, redis_url, sandbox,
                                       sandbox_client) -> None:
    firm = await tenant(sessionmaker, "Kantoor")
    install = await installation_admin(sessionmaker)
    async with koppel_api(database_url, redis_url, sandbox_client) as api:
        connection_id = await new_connection(api, install, firm.tenant_id)
        callback = await consent_redirect(api, sandbox_client, connection_id, firm.admin)
        sandbox.advance_clock(181)  # codes live three minutes
        response = await api.get(callback, headers=JSON)
    assert response.status_code == 400 and response.json()["code"] == "code_refused"
    assert "expired" in response.json()["detail"]
    assert (await _row(sessionmaker, connection_id)).state == "pending"  # type: ignore[union-attr]


async def test_bad_missing_forged_or_expired_state_is_a_clear_400(database_url, sessionmaker, redis_client,
                                                                  redis_url, sandbox, sandbox_client) -> None:
    firm = await tenant(sessionmaker, "Kantoor")
    install = await installation_admin(sessionmaker)
    async with koppel_api(database_url, redis_url, sandbox_client) as api:
        connection_id = await new_connection(api, install, firm.tenant_id)
        callback = urlsplit(await consent_redirect(api, sandbox_client, connection_id, firm.admin))
        code = parse_qs(callback.query)["code"][0]
        good = parse_qs(callback.query)["state"][0]
        states = {
            "tampered": good[:-3] + ("AAA" if not good.endswith("AAA") else "BBB"),
            "forged": sign_state("another installation's key", connection_id),
            "expired": sign_state(SECRET_KEY, connection_id, now=time.time() - 601),
            "garbage": "not-a-state",
        }
        answers = {name: await api.get("/oauth/exact/callback?" + urlencode({"code": code, "state": state}),
                                       headers=JSON) for name, state in states.items()}
        missing = await api.get("/oauth/exact/callback?" + urlencode({"code": code}), headers=JSON)
        missing_page = await api.get("/oauth/exact/callback?" + urlencode({"code": code}), headers=HTML)
        gone = await api.get("/oauth/exact/callback?" + urlencode(
            {"code": code, "state": sign_state(SECRET_KEY, connection_id + 999)}), headers=JSON)
        no_code = await api.get("/oauth/exact/callback?" + urlencode({"state": good}), headers=JSON)
        still_good = await api.get(f"{callback.path}?{callback.query}", headers=JSON)
    for name in ("tampered", "forged", "garbage"):
        assert answers[name].status_code == 400 and answers[name].json()["code"] == "invalid_state", name
    assert answers["expired"].status_code == 400 and answers["expired"].json()["code"] == "state_expired"
    assert missing.status_code == 400 and missing.json()["code"] == "invalid_state"
    assert missing_page.status_code == 400 and "text/html" in missing_page.headers["content-type"]
    assert gone.status_code == 404 and gone.json()["code"] == "connection_not_found"
    assert no_code.status_code == 400 and no_code.json()["code"] == "missing_code"
    # None of those spent the code: the genuine callback still connects.
    assert still_good.status_code == 200 and sandbox.token_stats()["code_exchanges"] == 1


async def test_same_exact_user_twice_keeps_one_connection(database_url, sessionmaker, redis_client, redis_url,
                                                          sandbox, sandbox_client) -> None:
    firm = await tenant(sessionmaker, "Kantoor")
    install = await installation_admin(sessionmaker)
    async with koppel_api(database_url, redis_url, sandbox_client) as api:
        first = await new_connection(api, install, firm.tenant_id, name="Eerste")
        assert (await connect(api, sandbox_client, first, firm.admin)).status_code == 200
        second = await new_connection(api, install, firm.tenant_id, name="Tweede")
        again = await connect(api, sandbox_client, second, firm.admin)
        listed = (await api.get("/api/v1/connections", headers=firm.viewer)).json()["connections"]
        gone = await api.get(f"/api/v1/connections/{second}", headers=firm.viewer)
        # Re-consenting the existing connection itself also just renews its chain.
        renewed = await connect(api, sandbox_client, first, firm.admin)
    assert again.status_code == 200, again.text
    assert again.json()["connection_id"] == first and again.json()["merged_from"] == second
    assert "reused" in again.json()["detail"]
    assert [c["id"] for c in listed] == [first] and gone.status_code == 404
    assert renewed.status_code == 200 and renewed.json()["connection_id"] == first
    row = await _row(sessionmaker, first)
    access = crypto.decrypt(SECRET_KEY, row.access_token_enc or "")  # type: ignore[union-attr]
    token, valid = sandbox.tokens.lookup_access(access)
    newest_chain = max(sandbox.tokens.chains)
    assert valid and token is not None and token.chain_id == newest_chain == 3  # the newest chain is kept
    async with sessionmaker() as session:
        connections = (await session.execute(select(ExactConnection))).scalars().all()
        divisions = (await session.execute(select(ExactDivision.connection_id))).scalars().all()
    assert len(connections) == 1 and set(divisions) == {first}


async def test_a_firms_client_consenting_with_the_firms_login_reuses_the_firms_connection(
        database_url, sessionmaker, redis_client, redis_url, sandbox, sandbox_client) -> None:
    firm = await tenant(sessionmaker, "Kantoor")
    client = await tenant(sessionmaker, "Bakkerij", parent_id=firm.tenant_id)
    install = await installation_admin(sessionmaker)
    async with koppel_api(database_url, redis_url, sandbox_client) as api:
        firms = await new_connection(api, install, firm.tenant_id)
        assert (await connect(api, sandbox_client, firms, firm.admin)).status_code == 200
        clients = await new_connection(api, install, client.tenant_id)
        answer = await connect(api, sandbox_client, clients, client.admin)
    assert answer.status_code == 200 and answer.json()["connection_id"] == firms


async def test_same_exact_user_from_an_unrelated_tenant_is_refused(database_url, sessionmaker, redis_client,
                                                                   redis_url, sandbox, sandbox_client) -> None:
    one = await tenant(sessionmaker, "Kantoor Een")
    two = await tenant(sessionmaker, "Kantoor Twee")
    install = await installation_admin(sessionmaker)
    async with koppel_api(database_url, redis_url, sandbox_client) as api:
        first = await new_connection(api, install, one.tenant_id)
        assert (await connect(api, sandbox_client, first, one.admin)).status_code == 200
        stored = (await _row(sessionmaker, first)).refresh_token_enc  # type: ignore[union-attr]
        other = await new_connection(api, install, two.tenant_id)
        refused = await connect(api, sandbox_client, other, two.admin)
    assert refused.status_code == 409 and refused.json()["code"] == "exact_user_connected_elsewhere"
    assert (await _row(sessionmaker, first)).refresh_token_enc == stored  # type: ignore[union-attr]
    assert (await _row(sessionmaker, other)).state == "pending"  # type: ignore[union-attr]


async def test_reconnecting_as_another_exact_user_is_refused(database_url, sessionmaker, redis_client, redis_url,
                                                             sandbox, sandbox_client) -> None:
    firm = await tenant(sessionmaker, "Kantoor")
    install = await installation_admin(sessionmaker)
    async with koppel_api(database_url, redis_url, sandbox_client) as api:
        connection_id = await new_connection(api, install, firm.tenant_id)
        assert (await connect(api, sandbox_client, connection_id, firm.admin)).status_code == 200
        other = await connect(api, sandbox_client, connection_id, firm.admin, sandbox_user=OTHER_USER_EMAIL)
    assert other.status_code == 409 and other.json()["code"] == "other_exact_user"
    assert "Jan de Vries" in other.json()["detail"]
    row = await _row(sessionmaker, connection_id)
    assert row is not None and row.exact_user_id == DEFAULT_USER_ID and row.state == "active"


async def test_country_hosts_scopes_and_tenants(database_url, sessionmaker, redis_client, redis_url, sandbox,
                                                sandbox_client) -> None:
    shop = await tenant(sessionmaker, "Winkel")
    stranger = await tenant(sessionmaker, "Vreemde")
    async with koppel_api(database_url, redis_url, sandbox_client) as api:
        created = await api.post("/api/v1/connections", headers=shop.admin, json={"name": "BE", "country": "be"})
        connection_id = created.json()["id"]
        authorize = await api.get(f"/api/v1/connections/{connection_id}/authorize", headers=shop.admin)
        uk = await api.post("/api/v1/connections", headers=shop.admin, json={"name": "UK", "country": "uk"})
        unknown = await api.post("/api/v1/connections", headers=shop.admin, json={"name": "X", "country": "xx"})
        both = await api.post("/api/v1/connections", headers=shop.admin,
                              json={"name": "X", "country": "nl", "base_url": SANDBOX_URL})
        custom = await api.post("/api/v1/connections", headers=shop.admin, json={"name": "X", "base_url": SANDBOX_URL})
        as_viewer = await api.post("/api/v1/connections", headers=shop.viewer, json={"name": "X", "country": "nl"})
        viewer_authorize = await api.get(f"/api/v1/connections/{connection_id}/authorize", headers=shop.viewer)
        foreign_authorize = await api.get(f"/api/v1/connections/{connection_id}/authorize", headers=stranger.admin)
        foreign_detail = await api.get(f"/api/v1/connections/{connection_id}", headers=stranger.viewer)
        foreign_list = (await api.get("/api/v1/connections", headers=stranger.viewer)).json()["connections"]
    assert created.status_code == 201 and created.json()["base_url"] == "https://start.exactonline.be"
    assert created.json()["country"] == "be" and created.json()["tenant_id"] == shop.tenant_id
    assert authorize.headers["location"].startswith("https://start.exactonline.be/api/oauth2/auth?")
    assert uk.json()["base_url"] == "https://start.exactonline.co.uk"
    assert unknown.status_code == 422 and "unknown Exact Online country" in unknown.json()["detail"]
    assert both.status_code == 422
    assert custom.status_code == 403 and "installation admin" in custom.json()["detail"]
    assert as_viewer.status_code == 403 and viewer_authorize.status_code == 403
    assert foreign_authorize.status_code == 404 and foreign_detail.status_code == 404 and foreign_list == []
