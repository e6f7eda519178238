"""The dashboard's routes without a browser: sign-in, cookie flags, CSRF, scopes and tenancy,
the pages' contents and the JSON the pages poll. In-process ASGI app, real database."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import httpx
from asgi_lifespan import LifespanManager
from sqlalchemy import select, update

from app.dashboard import routes, service
from app.dashboard import session as browser
from app.integrations.service import create_tenant
from app.main import create_app
from app.orders.models import Order, OrderEvent
from app.tenancy.auth import create_key
from app.tenancy.models import ApiKey
from tests.api_client import running_app
from tests.api_client import test_settings as app_settings
from tests.dashboard.support import csrf_from, sign_in
from tests.factories import SECRET_KEY, make_shop, order, signed


async def deliver(client: httpx.AsyncClient, shop, payload: dict | bytes) -> int:  # type: ignore[no-untyped-def]
    body, headers = signed(shop.secret, payload)
    response = await client.post(f"/webhooks/generic/{shop.key}", content=body, headers=headers)
    assert response.status_code in (200, 202, 400), response.text
    return int(response.json()["order_id"])


async def mark_booked(sessionmaker, order_id: int, number: str, at: datetime | None = None) -> None:  # type: ignore[no-untyped-def]
    async with sessionmaker() as session, session.begin():
        await session.execute(update(Order).where(Order.id == order_id).values(
            state="booked", exact_document_type="sales_entry", exact_document_id="guid-" + number,
            exact_document_number=number, booked_at=at or datetime.now(UTC)))


def cookie_header(response: httpx.Response) -> str:
    [header] = [h for h in response.headers.get_list("set-cookie") if h.startswith(browser.COOKIE_NAME + "=")]
    return header


async def test_sign_in_keeps_the_key_only_encrypted_in_an_http_only_strict_signed_cookie(
        database_url, sessionmaker) -> None:
    shop = await make_shop(sessionmaker)
    async with running_app(database_url) as client:
        anonymous = await client.get("/dashboard")
        form = await client.get("/dashboard/signin")
        signed_in = await sign_in(client, shop.api_key)
        overview = await client.get("/dashboard")
        session_cookie = cookie_header(signed_in)
        value = client.cookies.get(browser.COOKIE_NAME)
    assert anonymous.status_code == 303
    assert anonymous.headers["location"] == "/dashboard/signin?next=%2Fdashboard"
    assert form.status_code == 200 and 'name="api_key"' in form.text
    assert signed_in.status_code == 303 and signed_in.headers["location"] == "/dashboard"
    flags = [part.strip().lower() for part in session_cookie.split(";")]
    assert "httponly" in flags and "samesite=strict" in flags and "path=/dashboard" in flags
    assert "secure" not in flags  # plain http here; see the https test below
    assert overview.status_code == 200 and "Overview" in overview.text and "Webshop B.V." in overview.text
    # The cookie never holds the key in the clear, not even base64-encoded.
    assert value and shop.api_key not in value
    payload = json.loads(base64.urlsafe_b64decode(value.split(".")[0] + "=="))
    assert set(payload) == {"v", "csrf", "iat", "exp", "key"}
    assert shop.api_key not in payload["key"] and payload["key"].startswith("gAAAAA")  # a Fernet token
    assert browser.api_key(SECRET_KEY, browser.decode(SECRET_KEY, value)) == shop.api_key


async def test_cookie_is_secure_over_https(database_url, sessionmaker) -> None:
    shop = await make_shop(sessionmaker)
    app = create_app(app_settings(database_url))
    async with LifespanManager(app) as manager, httpx.AsyncClient(
            transport=httpx.ASGITransport(app=manager.app), base_url="https://koppel.test") as client:
        response = await sign_in(client, shop.api_key)
    assert response.status_code == 303
    assert "secure" in [part.strip().lower() for part in cookie_header(response).split(";")]


async def test_wrong_key_tampered_or_foreign_cookie_is_not_signed_in(database_url, sessionmaker) -> None:
    shop = await make_shop(sessionmaker)
    async with running_app(database_url) as client:
        wrong = await sign_in(client, "kpl_not-a-key")
        await sign_in(client, shop.api_key)
        good = client.cookies.get(browser.COOKIE_NAME)
        assert good is not None
        payload, mac = good.split(".")
        body = json.loads(base64.urlsafe_b64decode(payload + "=="))
        body["exp"] += 3600 * 24 * 365  # try to extend the session
        forged_payload = base64.urlsafe_b64encode(json.dumps(body).encode()).decode().rstrip("=")
        client.cookies.set(browser.COOKIE_NAME, f"{forged_payload}.{mac}", path="/dashboard")
        tampered = await client.get("/dashboard")
        other_secret = browser.encode("another-installation", browser.new_session("another-installation",
                                                                                 shop.api_key))
        client.cookies.set(browser.COOKIE_NAME, other_secret, path="/dashboard")
        foreign = await client.get("/dashboard")
        api = await client.get("/dashboard/api/orders?id=1")
    assert wrong.status_code == 401 and "unknown or revoked" in wrong.text
    assert tampered.status_code == 303 and tampered.headers["location"].startswith("/dashboard/signin")
    assert foreign.status_code == 303
    assert api.status_code == 401


async def test_session_expires_and_revoked_key_ends_it(database_url, sessionmaker) -> None:
    shop = await make_shop(sessionmaker)
    old = browser.new_session(SECRET_KEY, shop.api_key, now=datetime.now(UTC).timestamp() - browser.LIFETIME_SECONDS - 5)
    assert browser.decode(SECRET_KEY, browser.encode(SECRET_KEY, old)) is None
    async with running_app(database_url) as client:
        await sign_in(client, shop.api_key)
        before = await client.get("/dashboard/errors")
        async with sessionmaker() as session, session.begin():
            await session.execute(update(ApiKey).values(revoked_at=datetime.now(UTC)))
        after = await client.get("/dashboard/errors")
    assert before.status_code == 200
    assert after.status_code == 303 and "expired=1" in after.headers["location"]
    assert "next=%2Fdashboard%2Ferrors" in after.headers["location"]
    assert 'Max-Age=0' in cookie_header(after) or "expires=" in cookie_header(after).lower()


async def test_every_post_needs_the_session_csrf_token(database_url, sessionmaker) -> None:
    shop = await make_shop(sessionmaker)
    async with running_app(database_url) as client:
        failed = await deliver(client, shop, order(source_order_id="F1", order_number="F-1", total="1.00"))
        # the sign-in form itself
        no_token_signin = await client.post("/dashboard/signin", data={"api_key": shop.api_key})
        await sign_in(client, shop.api_key)
        page = await client.get("/dashboard/errors")
        token = csrf_from(page.text)
        missing = await client.post(f"/dashboard/orders/{failed}/process", data={})
        wrong = await client.post(f"/dashboard/orders/{failed}/process", data={"csrf_token": token[:-2] + "xx"})
        bulk_wrong = await client.post("/dashboard/orders/process", data={"csrf_token": "nope", "order_id": str(failed)})
        cross_site = await client.post(f"/dashboard/orders/{failed}/process", data={"csrf_token": token},
                                       headers={"Origin": "https://evil.example"})
        signout_missing = await client.post("/dashboard/signout", data={})
        async with sessionmaker() as session:
            still = await session.get(Order, failed)
        ok = await client.post(f"/dashboard/orders/{failed}/process", data={"csrf_token": token,
                                                                            "next": "/dashboard/errors"})
        async with sessionmaker() as session:
            after = await session.get(Order, failed)
            kinds = (await session.execute(select(OrderEvent.kind).where(OrderEvent.order_id == failed))).scalars().all()
        # a token of another browser session is no good either
        async with running_app(database_url) as other:
            await sign_in(other, shop.api_key)
            foreign_token = csrf_from((await other.get("/dashboard/errors")).text)
        foreign = await client.post(f"/dashboard/orders/{failed}/process", data={"csrf_token": foreign_token})
        signout = await client.post("/dashboard/signout", data={"csrf_token": token})
        gone = await client.get("/dashboard")
    assert no_token_signin.status_code == 403
    for refused in (missing, wrong, bulk_wrong, cross_site, signout_missing, foreign):
        assert refused.status_code == 403, refused.text
    assert "security token" in missing.text
    assert still.state == "failed"  # nothing happened on the refused posts
    assert ok.status_code == 303 and ok.headers["location"] == f"/dashboard/errors?processed={failed}"
    assert after.state == "failed" and after.revision == still.revision  # re-checked: the total is still wrong
    assert kinds.count("reprocess") == 1  # exactly the one accepted post re-checked it
    assert signout.status_code == 303 and signout.headers["location"] == "/dashboard/signin"
    assert gone.status_code == 303


async def test_viewer_sees_no_process_button_and_gets_403(database_url, sessionmaker) -> None:
    shop = await make_shop(sessionmaker)
    async with running_app(database_url) as client:
        failed = await deliver(client, shop, order(source_order_id="F1", order_number="F-1", total="1.00"))
        await sign_in(client, shop.viewer_key)
        errors = await client.get("/dashboard/errors")
        detail = await client.get(f"/dashboard/orders/{failed}")
        token = csrf_from(errors.text)
        one = await client.post(f"/dashboard/orders/{failed}/process", data={"csrf_token": token})
        many = await client.post("/dashboard/orders/process", data={"csrf_token": token, "order_id": str(failed)})
        async with sessionmaker() as session:
            row = await session.get(Order, failed)
        await client.post("/dashboard/signout", data={"csrf_token": token})
        await sign_in(client, shop.api_key)
        operator_errors = await client.get("/dashboard/errors")
    assert errors.status_code == 200 and "F-1" in errors.text and "totals_mismatch" in errors.text
    assert "/process" not in errors.text and 'name="order_id"' not in errors.text
    assert detail.status_code == 200 and "/process" not in detail.text
    assert one.status_code == 403 and "scope &#39;viewer&#39;" in one.text
    assert many.status_code == 403
    assert row.state == "failed" and row.revision == 0
    assert f'action="/dashboard/orders/{failed}/process"' in operator_errors.text  # the operator does see it


async def test_another_tenants_order_is_a_404_everywhere(database_url, sessionmaker) -> None:
    mine = await make_shop(sessionmaker, name="Mijn Winkel")
    theirs = await make_shop(sessionmaker, name="Andere Winkel")
    async with running_app(database_url) as client:
        own = await deliver(client, mine, order(source_order_id="M1", order_number="MINE-1", total="1.00"))
        other = await deliver(client, theirs, order(source_order_id="T1", order_number="THEIRS-1", total="1.00"))
        await mark_booked(sessionmaker, own, "70001")
        other_booked = await deliver(client, theirs, order(source_order_id="T2", order_number="THEIRS-2"))
        await mark_booked(sessionmaker, other_booked, "80001")
        await sign_in(client, mine.api_key)
        page = await client.get(f"/dashboard/orders/{other}")
        own_page = await client.get(f"/dashboard/orders/{own}")
        as_json = await client.get(f"/dashboard/api/orders/{other}")
        listed = (await client.get(f"/dashboard/api/orders?id={other}&id={own}")).json()
        token = csrf_from(own_page.text)
        process = await client.post(f"/dashboard/orders/{other}/process", data={"csrf_token": token})
        bulk = await client.post("/dashboard/orders/process", data={"csrf_token": token, "order_id": str(other)})
        report = await client.get("/dashboard/report")
        errors = await client.get("/dashboard/errors")
        search = await client.get("/dashboard/report?q=THEIRS")
        config = await client.get("/dashboard/configuration")
        async with sessionmaker() as session:
            untouched = await session.get(Order, other)
    assert page.status_code == 404 and "Order not found" in page.text
    assert own_page.status_code == 200
    assert as_json.status_code == 404
    assert [o["id"] for o in listed["orders"]] == [own]
    assert process.status_code == 404
    assert bulk.status_code == 303 and f"skipped={other}" in bulk.headers["location"]
    assert untouched.state == "failed" and untouched.revision == 0
    assert "MINE-1" in report.text and "THEIRS" not in report.text
    assert "THEIRS" not in errors.text
    assert "THEIRS-2" not in search.text and "No booked orders match" in search.text
    assert "Mijn Winkel" in config.text and "Andere Winkel" not in config.text


async def test_a_firm_sees_its_clients_and_a_client_only_itself(database_url, sessionmaker) -> None:
    client_a = await make_shop(sessionmaker, name="Klant A")
    client_b = await make_shop(sessionmaker, name="Klant B")
    async with sessionmaker() as session, session.begin():
        firm = await create_tenant(session, "Boekhoudkantoor")
        from app.tenancy.models import Tenant

        for tenant_id in (client_a.tenant_id, client_b.tenant_id):
            (await session.get(Tenant, tenant_id)).parent_id = firm.id  # type: ignore[union-attr]
        _, firm_key = await create_key(session, tenant_id=firm.id, scope="viewer", name="firm")
    async with running_app(database_url) as client:
        a = await deliver(client, client_a, order(source_order_id="A1", order_number="KLANT-A-1"))
        b = await deliver(client, client_b, order(source_order_id="B1", order_number="KLANT-B-1"))
        await mark_booked(sessionmaker, a, "1")
        await mark_booked(sessionmaker, b, "2")
        await sign_in(client, firm_key)
        firm_report = await client.get("/dashboard/report")
        firm_filtered = await client.get(f"/dashboard/report?integration={client_b.integration_id}")
        firm_config = await client.get("/dashboard/configuration")
        await client.post("/dashboard/signout", data={"csrf_token": csrf_from(firm_report.text)})
        await sign_in(client, client_a.viewer_key)
        own_report = await client.get("/dashboard/report")
        sibling = await client.get(f"/dashboard/orders/{b}")
    assert "KLANT-A-1" in firm_report.text and "KLANT-B-1" in firm_report.text
    assert "KLANT-B-1" in firm_filtered.text and "KLANT-A-1" not in firm_filtered.text
    assert "Klant A" in firm_config.text and "Klant B" in firm_config.text
    assert "KLANT-A-1" in own_report.text and "KLANT-B-1" not in own_report.text
    assert sibling.status_code == 404


async def test_report_searches_filters_by_period_and_pages(database_url, sessionmaker, monkeypatch) -> None:
    shop = await make_shop(sessionmaker)
    second = await make_shop(sessionmaker, name="Tweede Winkel")
    async with sessionmaker() as session, session.begin():  # the second shop belongs to the same tenant
        from app.integrations.models import Integration

        (await session.get(Integration, second.integration_id)).tenant_id = shop.tenant_id  # type: ignore[union-attr]
    monkeypatch.setattr(routes, "PAGE_SIZE", 2)
    async with running_app(database_url) as client:
        ids = [await deliver(client, shop, order(source_order_id=f"R{n}", order_number=f"REP-{n}",
                                                 customer={"email": f"koper{n}@example.com", "name": f"Koper {n}"}))
               for n in range(5)]
        other = await deliver(client, second, order(source_order_id="S1", order_number="SECOND-1"))
        waiting = await deliver(client, shop, order(source_order_id="R9", order_number="REP-9", status="pending"))
        for n, order_id in enumerate([*ids, other]):
            await mark_booked(sessionmaker, order_id, f"7000{n}")
        async with sessionmaker() as session, session.begin():  # REP-0 arrived last month
            await session.execute(update(Order).where(Order.id == ids[0]).values(
                created_at=datetime.now(UTC) - timedelta(days=40)))
        await sign_in(client, shop.api_key)
        first = await client.get("/dashboard/report")
        cursor = first.text.split("cursor=")[1].split('"')[0]
        second_page = await client.get(f"/dashboard/report?cursor={cursor}")
        monkeypatch.setattr(routes, "PAGE_SIZE", 50)
        by_email = await client.get("/dashboard/report?q=KOPER3@")
        by_number = await client.get("/dashboard/report?q=rep-2")
        by_integration = await client.get(f"/dashboard/report?integration={second.integration_id}")
        today = datetime.now(service.DISPLAY_TZ).date()
        recent = await client.get(f"/dashboard/report?since={today - timedelta(days=7)}&until={today}")
        old = await client.get(f"/dashboard/report?until={today - timedelta(days=30)}")
        bad_cursor = await client.get("/dashboard/report?cursor=zzz")
    assert first.status_code == 200
    assert "SECOND-1" in first.text and "REP-4" in first.text and "REP-3" not in first.text  # newest two
    assert "REP-3" in second_page.text and "REP-2" in second_page.text and "REP-4" not in second_page.text
    assert "REP-3" in by_email.text and "REP-1" not in by_email.text
    assert "REP-2" in by_number.text and "REP-4" not in by_number.text
    assert "SECOND-1" in by_integration.text and "REP-" not in by_integration.text
    assert "REP-0" not in recent.text and "REP-1" in recent.text
    assert "REP-0" in old.text and "REP-1" not in old.text
    assert "REP-9" not in first.text and "REP-9" not in second_page.text  # open, not booked
    # the Exact number links to the division in Exact (the connection's base URL)
    assert 'href="http://exact.invalid/docs/MenuPortal.aspx?_Division_=1234567"' in first.text
    assert bad_cursor.status_code == 200 and "cursor is not one this API gave out" in bad_cursor.text
    assert waiting


async def test_pages_show_states_reasons_and_the_order_detail(database_url, sessionmaker) -> None:
    shop = await make_shop(sessionmaker)
    async with running_app(database_url) as client:
        failed = await deliver(client, shop, order(source_order_id="F1", order_number="FAIL-1", total="1.00"))
        rejected = await deliver(client, shop, b"<html>not json</html>")
        open_ = await deliver(client, shop, order(source_order_id="O1", order_number="OPEN-1", status="pending"))
        booked = await deliver(client, shop, order(source_order_id="B1", order_number="BOOK-1"))
        await mark_booked(sessionmaker, booked, "70042", at=datetime.now(UTC) - timedelta(days=2))
        await sign_in(client, shop.api_key)
        overview = await client.get("/dashboard")
        errors = await client.get("/dashboard/errors")
        open_page = await client.get("/dashboard/open")
        detail = await client.get(f"/dashboard/orders/{failed}")
        rejected_detail = await client.get(f"/dashboard/orders/{rejected}")
        config = await client.get("/dashboard/configuration")
        as_json = (await client.get(f"/dashboard/api/orders/{failed}")).json()
        api = (await client.get(f"/api/v1/orders/{failed}", headers={"Authorization": f"Bearer {shop.api_key}"})).json()
    assert overview.status_code == 200
    for state, count in (("booked", 1), ("open", 1), ("failed", 1), ("rejected", 1)):
        assert f'data-state="{state}"' in overview.text
        card = overview.text.split(f'data-state="{state}"')[1].split("</a>")[0]
        assert f'<span class="state-count">{count}</span>' in card, state
    bars = overview.text.split('data-testid="bookings-chart"')[1].split("</svg>")[0]
    assert bars.count('<rect class="bar') == 14 and bars.count('data-count="1"') == 1
    assert "FAIL-1" in errors.text and "totals_mismatch" in errors.text and "not_json" in errors.text
    assert "order&#39;s total does not add up" in errors.text  # the plain explanation next to the code
    assert "BOOK-1" not in errors.text and "OPEN-1" not in errors.text
    assert "OPEN-1" in open_page.text and "pending" in open_page.text and "FAIL-1" not in open_page.text
    assert f"/dashboard/orders/{open_}" in open_page.text  # each row links to its order
    assert "Checks" in detail.text and "Timeline" in detail.text and "Raw delivery" in detail.text
    assert "totals_mismatch" in detail.text and "checks_failed" in detail.text and "received" in detail.text
    assert "&#34;order_number&#34;: &#34;FAIL-1&#34;" in detail.text  # the raw body, escaped
    assert "&lt;html&gt;not json&lt;/html&gt;" in rejected_detail.text and "<html>not json" not in rejected_detail.text
    assert "Webshop Exact" in config.text and "1234567" in config.text
    assert '<td class="num">6</td>' in config.text  # the division's six cached VAT codes
    assert as_json == api  # the page polls exactly what the status API answers
    for response in (overview, errors, detail):
        assert "default-src 'self'" in response.headers["content-security-policy"]
        assert response.headers["x-frame-options"] == "DENY" and response.headers["cache-control"] == "no-store"


async def test_processing_a_booked_order_changes_nothing_and_says_so(database_url, sessionmaker) -> None:
    shop = await make_shop(sessionmaker)
    async with running_app(database_url) as client:
        booked = await deliver(client, shop, order(source_order_id="B1", order_number="BOOK-1"))
        await mark_booked(sessionmaker, booked, "70042")
        await sign_in(client, shop.api_key)
        token = csrf_from((await client.get("/dashboard/errors")).text)
        from_errors = await client.post(f"/dashboard/orders/{booked}/process",
                                        data={"csrf_token": token, "next": "/dashboard/errors"})
        from_detail = await client.post(f"/dashboard/orders/{booked}/process",
                                        data={"csrf_token": token, "next": f"/dashboard/orders/{booked}"})
        shown = await client.get(from_errors.headers["location"])
        async with sessionmaker() as session:
            row = await session.get(Order, booked)
    assert from_errors.status_code == 303 and from_errors.headers["location"].endswith(f"skipped={booked}")
    assert from_detail.status_code == 303 and from_detail.headers["location"] == f"/dashboard/orders/{booked}"
    assert "not processed: it is booked" in shown.text
    assert row.state == "booked" and row.exact_document_number == "70042"


async def test_redirects_stay_inside_the_dashboard(database_url, sessionmaker) -> None:
    shop = await make_shop(sessionmaker)
    async with running_app(database_url) as client:
        outside = await sign_in(client, shop.api_key, next_path="https://evil.example/phish")
        scheme_less = await sign_in(client, shop.api_key, next_path="//evil.example")
        inside = await sign_in(client, shop.api_key, next_path="/dashboard/errors?q=1")
    assert outside.headers["location"] == "/dashboard"
    assert scheme_less.headers["location"] == "/dashboard"
    assert inside.headers["location"] == "/dashboard/errors?q=1"
    assert routes.safe_next("/dashboard/../api") == "/dashboard/../api"  # a path on this host only
    assert routes.safe_next("/dashboardx\\evil") == "/dashboard"


def test_bookings_per_day_chart_geometry() -> None:
    today = datetime(2026, 11, 20, tzinfo=UTC).date()
    series = [service.DayCount(today - timedelta(days=13 - n), n % 5) for n in range(14)]
    chart = service.bar_chart(series)
    assert len(chart.bars) == 14 and chart.total == sum(n % 5 for n in range(14))
    tallest = max(chart.bars, key=lambda bar: bar.height)
    assert tallest.count == 4 and tallest.y == 14  # the top of the plot
    assert all(bar.height == 0 for bar in chart.bars if bar.count == 0)
    assert [value for _, value in chart.gridlines] == [0, 1, 2, 3, 4]


# --- Configuration: editing through the configuration API -------------------------------------

def settings_form_data(page_html: str, current: dict, **changes: str) -> dict[str, str]:
    """What the browser submits: every field of the edit form as rendered, then the changes."""
    from app.dashboard import settings_form
    from app.integrations.settings import IntegrationSettings

    data: dict[str, str] = {"csrf_token": csrf_from(page_html)}
    for f in settings_form.fields(IntegrationSettings.model_validate(current)):
        if f.kind == "vat_rules":
            for n, row in enumerate(f.value):
                for name, value in row.items():
                    data[f"vat_rules-{n}-{name}"] = value
        else:
            data[f.name] = f.value
    data.update(changes)
    return data


async def test_operator_edits_settings_through_the_configuration_api(
        database_url, sessionmaker, redis_client, redis_url, sandbox, sandbox_client) -> None:
    from app.integrations.models import Integration, IntegrationAudit
    from app.integrations.settings import default_vat_rules
    from tests.booking.harness import connect_sandbox, e2e_settings

    rules = [r.model_dump(mode="json") for r in default_vat_rules() if not (r.destination == "NL" and r.rate == 9)]
    shop = await connect_sandbox(sessionmaker, sandbox, sandbox_client, redis_client,
                                 e2e_settings(database_url, redis_url), integration_settings={"vat_rules": rules})
    async with sessionmaker() as session, session.begin():
        _, viewer = await create_key(session, tenant_id=shop.tenant_id, scope="viewer", name="viewer")
        current = dict((await session.get(Integration, shop.integration_id)).settings)  # type: ignore[union-attr]
    n = len(rules)  # the first empty row of the VAT rules table
    app = create_app(app_settings(database_url), redis_url=redis_url, exact_http=sandbox_client)
    async with LifespanManager(app) as manager, httpx.AsyncClient(
            transport=httpx.ASGITransport(app=manager.app), base_url="http://koppel.test") as client:
        await sign_in(client, shop.api_key)
        page = (await client.get("/dashboard/configuration")).text
        url = f"/dashboard/integrations/{shop.integration_id}/settings"
        unknown_code = await client.post(url, data=settings_form_data(page, current, **{
            f"vat_rules-{n}-destination": "NL", f"vat_rules-{n}-rate": "9", f"vat_rules-{n}-vat_code": "ZZ"}))
        not_a_rate = await client.post(url, data=settings_form_data(page, current, **{
            f"vat_rules-{n}-destination": "NL", f"vat_rules-{n}-rate": "negen", f"vat_rules-{n}-vat_code": "2"}))
        async with sessionmaker() as session:
            unchanged = (await session.get(Integration, shop.integration_id)).settings  # type: ignore[union-attr]
        saved = await client.post(url, data=settings_form_data(page, current, journal_code="70", **{
            f"vat_rules-{n}-destination": "nl", f"vat_rules-{n}-rate": "9,0", f"vat_rules-{n}-vat_code": "2"}))
        after_save = await client.get(saved.headers["location"])
        again = await client.post(url, data=settings_form_data(after_save.text, current, **{
            f"vat_rules-{n}-destination": "NL", f"vat_rules-{n}-rate": "9", f"vat_rules-{n}-vat_code": "2"}))
        paused = await client.post(f"/dashboard/integrations/{shop.integration_id}/pause",
                                   data={"csrf_token": csrf_from(page)})
        paused_page = await client.get("/dashboard/configuration")
        enabled = await client.post(f"/dashboard/integrations/{shop.integration_id}/enable",
                                    data={"csrf_token": csrf_from(page)})
        await client.post("/dashboard/signout", data={"csrf_token": csrf_from(page)})
        await sign_in(client, viewer)
        viewer_page = await client.get("/dashboard/configuration")
        viewer_token = csrf_from(viewer_page.text)
        viewer_save = await client.post(url, data=settings_form_data(viewer_page.text, current))
        viewer_pause = await client.post(f"/dashboard/integrations/{shop.integration_id}/pause",
                                         data={"csrf_token": viewer_token})
    async with sessionmaker() as session:
        row = await session.get(Integration, shop.integration_id)
        audit_rows = (await session.execute(select(IntegrationAudit).where(
            IntegrationAudit.integration_id == shop.integration_id).order_by(IntegrationAudit.id))).scalars().all()
    assert unknown_code.status_code == 422 and "Not saved" in unknown_code.text
    assert "VAT code ZZ does not exist in division" in unknown_code.text
    assert 'value="ZZ"' in unknown_code.text  # what was typed stays in the form
    assert not_a_rate.status_code == 422 and "rate &#39;negen&#39; is not a number" in not_a_rate.text
    assert unchanged == current
    assert saved.status_code == 303 and "done=saved" in saved.headers["location"]
    assert "Settings of Webshop saved." in after_save.text
    assert {"destination": "NL", "rate": "9", "vat_code": "2"}.items() <= row.settings["vat_rules"][n].items()  # type: ignore[union-attr]
    assert again.status_code == 303 and "done=unchanged" in again.headers["location"]
    assert paused.status_code == 303 and 'data-testid="paused"' in paused_page.text
    assert enabled.status_code == 303 and row.enabled is True  # type: ignore[union-attr]
    assert [a.action for a in audit_rows] == ["updated", "paused", "enabled"]
    assert audit_rows[0].changed == ["settings.vat_rules"] and "API key" in audit_rows[0].actor
    assert "Change history" in viewer_page.text and "settings.vat_rules" in viewer_page.text
    assert "Edit settings" not in viewer_page.text and "Pause booking" not in viewer_page.text
    assert viewer_save.status_code == 403 and viewer_pause.status_code == 403


async def test_connect_goes_to_exacts_consent_page_for_admins_only(database_url, sessionmaker) -> None:
    shop = await make_shop(sessionmaker)
    other = await make_shop(sessionmaker, name="Andere Winkel")
    from app.connections.models import ExactConnection

    async with sessionmaker() as session, session.begin():
        _, admin = await create_key(session, tenant_id=shop.tenant_id, scope="admin", name="admin")
        connection = await session.get(ExactConnection, shop.connection_id)
        connection.state, connection.state_reason = "needs_consent", "refresh token expired"  # type: ignore[union-attr]
    async with running_app(database_url) as client:
        await sign_in(client, shop.api_key)
        operator_page = await client.get("/dashboard/configuration")
        operator_connect = await client.get(f"/dashboard/connections/{shop.connection_id}/connect")
        await client.post("/dashboard/signout", data={"csrf_token": csrf_from(operator_page.text)})
        await sign_in(client, admin)
        admin_page = await client.get("/dashboard/configuration")
        connect = await client.get(f"/dashboard/connections/{shop.connection_id}/connect")
        foreign = await client.get(f"/dashboard/connections/{other.connection_id}/connect")
    assert "needs an admin key" in operator_page.text and operator_connect.status_code == 403
    assert f'href="/dashboard/connections/{shop.connection_id}/connect"' in admin_page.text
    assert connect.status_code == 302
    assert connect.headers["location"].startswith("http://exact.invalid/api/oauth2/auth?")
    assert "state=" in connect.headers["location"]
    assert foreign.status_code == 404


def test_session_cookie_values_that_are_not_ours_are_nobody() -> None:
    good = browser.encode(SECRET_KEY, browser.new_session(SECRET_KEY, "kpl_example"))
    assert browser.decode(SECRET_KEY, good) is not None
    for value in (None, "", "garbage", "a.b.c", good + "x", "x" + good, good.replace(".", ".."),
                  good.split(".")[0] + "." + browser.encode("other", browser.new_session("other")).split(".")[1]):
        assert browser.decode(SECRET_KEY, value) is None, value
    anonymous = browser.decode(SECRET_KEY, browser.encode(SECRET_KEY, browser.new_session(SECRET_KEY)))
    assert anonymous is not None and not anonymous.signed_in and browser.api_key(SECRET_KEY, anonymous) is None
