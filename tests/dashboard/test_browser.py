"""The dashboard in a real browser: Debian's Chromium (headless) driven by Playwright, against a
real uvicorn server, a real arq worker, Redis, the database and the bundled Exact sandbox.

Runs on every database backend of the suite (SQLite, and PostgreSQL when given). Screenshots of
every page land in var/screenshots/ for a person to look at.
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from app.connections.models import ExactConnection
from app.db.base import utcnow
from app.integrations.settings import default_vat_rules
from app.main import create_app
from app.orders.models import Order
from app.tenancy.auth import create_key
from tests.api_client import test_settings as app_settings
from tests.booking.harness import connect_sandbox, e2e_settings, running_worker, wait_for_states
from tests.dashboard.support import CHROMIUM, CHROMIUM_ARGS, SCREENSHOTS, browser_available, serve
from tests.factories import make_shop, order, signed

# A developer machine without Debian's Chromium skips these, loudly; CI (which installs it)
# never does: there a missing browser is a failure, not a green run.
pytestmark = pytest.mark.skipif(not browser_available() and os.environ.get("CI") != "true",
                                reason=f"needs the playwright package and Debian's Chromium at {CHROMIUM} "
                                       "(apt-get install chromium)")

# Only 21 % lines: the integration below can book these.
HIGH_ONLY = {"lines": [{"sku": "MUG-01", "name": "Mok", "quantity": 2, "unit_price": "12.10", "vat_rate": 21}],
             "shipping": [{"description": "Verzending", "amount": "6.05", "vat_rate": 21}],
             "total": "30.25", "total_vat": "5.25"}


@dataclass
class World:
    base: str
    operator_key: str
    viewer_key: str
    integration_id: int
    ids: dict[str, int]  # order number → id
    other_tenant_order: int


async def deliver(http: httpx.AsyncClient, key: str, secret: str, payload: dict[str, Any] | bytes) -> int:
    body, headers = signed(secret, payload)
    response = await http.post(f"/webhooks/generic/{key}", content=body, headers=headers)
    assert response.status_code in (200, 202, 400), response.text
    return int(response.json()["order_id"])


@pytest.fixture
async def world(database_url, sessionmaker, redis_client, redis_url, sandbox,
                sandbox_client) -> AsyncIterator[tuple[World, Any]]:
    """A shop whose VAT rules lack NL 9 %, with booked, failed, open and rejected orders; another
    tenant with an order of its own; the API served by uvicorn. Yields (world, worker settings)."""
    settings = e2e_settings(database_url, redis_url)
    rules = [r.model_dump(mode="json") for r in default_vat_rules() if not (r.destination == "NL" and r.rate == 9)]
    shop = await connect_sandbox(sessionmaker, sandbox, sandbox_client, redis_client, settings,
                                 name="Voorbeeld Webshop", integration_settings={"vat_rules": rules})
    other = await make_shop(sessionmaker, name="Andere Winkel")
    async with sessionmaker() as session, session.begin():
        _, viewer = await create_key(session, tenant_id=shop.tenant_id, scope="viewer", name="viewer")
        session.add(ExactConnection(  # an old connection whose consent lapsed: Configuration offers Connect
            tenant_id=shop.tenant_id, name="Oude administratie", base_url="http://sandbox.test",
            client_id=settings.exact_client_id, exact_user_id="lapsed-user", state="needs_consent",
            state_reason="the refresh token expired after 30 days without use", created_at=utcnow(),
            updated_at=utcnow()))
    app = create_app(app_settings(database_url), redis_url=redis_url, exact_http=sandbox_client)
    async with serve(app) as base, httpx.AsyncClient(base_url=base) as http:
        ids: dict[str, int] = {}
        for n, email in ((1, "anna@example.com"), (2, "bram@example.com"), (5, "anna@example.com")):
            ids[f"WEB-300{n}"] = await deliver(http, shop.key, shop.secret, order(
                source_order_id=f"S-{n}", order_number=f"WEB-300{n}", customer={"email": email, "name": email[:4].title()},
                **HIGH_ONLY))
        for n in (3, 4):  # a 9 % line: no VAT rule for it
            ids[f"WEB-300{n}"] = await deliver(http, shop.key, shop.secret, order(
                source_order_id=f"S-{n}", order_number=f"WEB-300{n}", customer={"email": f"klant{n}@example.com"}))
        ids["WEB-3006"] = await deliver(http, shop.key, shop.secret, order(
            source_order_id="S-6", order_number="WEB-3006", status="pending", **HIGH_ONLY))
        ids["rejected"] = await deliver(http, shop.key, shop.secret, b"<order>not json</order>")
        theirs = await deliver(http, other.key, other.secret, order(source_order_id="T-1", order_number="THEIRS-1",
                                                                    total="1.00"))
        async with running_worker(settings, sandbox_client):
            done = await wait_for_states(sessionmaker, list(ids.values()))
        assert {done[ids[n]].state for n in ("WEB-3001", "WEB-3002", "WEB-3005")} == {"booked"}
        assert {done[ids[n]].state for n in ("WEB-3003", "WEB-3004")} == {"failed"}
        yield World(base, shop.api_key, viewer, shop.integration_id, ids, theirs), settings


@pytest.fixture
async def chromium() -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


async def shot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.evaluate("window.scrollTo(0, 0)")  # the sticky bar stays at the top of the picture
    await page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


async def sign_in(page: Any, base: str, key: str) -> None:
    await page.goto(f"{base}/dashboard")
    assert page.url.startswith(f"{base}/dashboard/signin")
    await page.fill('input[name="api_key"]', key)
    await page.click('button:has-text("Sign in")')
    await page.wait_for_url(f"{base}/dashboard")


async def test_operator_fixes_the_mapping_processes_and_watches_orders_get_booked(
        world, chromium, sandbox_client, sessionmaker) -> None:
    from playwright.async_api import expect

    w, worker_settings = world
    context = await chromium.new_context(viewport={"width": 1360, "height": 900}, locale="en-GB")
    page = await context.new_page()
    failures: list[str] = []
    page.on("pageerror", lambda exc: failures.append(str(exc)))
    # Script errors only: a 401 or 404 answer is logged by the browser too, and is expected here.
    page.on("console", lambda msg: failures.append(msg.text)
            if msg.type == "error" and not msg.text.startswith("Failed to load resource") else None)

    # Sign in: a wrong key is refused, the right one lands on the Overview.
    await page.goto(f"{w.base}/dashboard")
    await expect(page.locator("h1")).to_have_text("Sign in to the dashboard")
    await shot(page, "signin")
    await page.fill('input[name="api_key"]', "kpl_wrong")
    await page.click('button:has-text("Sign in")')
    await expect(page.get_by_test_id("signin-error")).to_contain_text("unknown or revoked")
    await page.fill('input[name="api_key"]', w.operator_key)
    await page.click('button:has-text("Sign in")')
    await page.wait_for_url(f"{w.base}/dashboard")
    cookie = next(c for c in await context.cookies() if c["name"] == "koppel_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and w.operator_key not in cookie["value"]
    assert await page.evaluate("document.cookie") == ""  # scripts cannot read the session

    # Overview: counts per state, the chart, the Exact budget and the queue.
    cards = page.get_by_test_id("state-counts")
    await expect(cards.locator('[data-state="booked"] .state-count')).to_have_text("3")
    await expect(cards.locator('[data-state="failed"] .state-count')).to_have_text("2")
    await expect(cards.locator('[data-state="open"] .state-count')).to_have_text("1")
    await expect(cards.locator('[data-state="rejected"] .state-count')).to_have_text("1")
    await expect(page.locator('[data-testid="bookings-chart"] rect.bar-today')).to_have_attribute("data-count", "3")
    await expect(page.get_by_test_id("budget")).to_contain_text("1234567")
    await expect(page.get_by_test_id("queue-depth")).to_have_text(re.compile(r"^\d+$"))  # Redis answered
    await shot(page, "overview")

    # Report: the booked orders with their Exact number and a link into Exact; search by e-mail.
    await page.click('nav >> text=Report')
    report = page.get_by_test_id("report-table")
    await expect(report.locator("tbody tr")).to_have_count(3)
    async with sessionmaker() as session:
        booked = await session.get(Order, w.ids["WEB-3001"])
    row = report.locator(f'tr[data-order-id="{w.ids["WEB-3001"]}"]')
    await expect(row.locator("a.exact-link")).to_contain_text(booked.exact_document_number)
    assert (await row.locator("a.exact-link").get_attribute("href")).startswith("http://sandbox.test/docs/")
    await shot(page, "report")
    await page.fill('input[name="q"]', "anna@")
    await page.click('button:has-text("Filter")')
    await expect(report.locator("tbody tr")).to_have_count(2)
    await expect(report).not_to_contain_text("WEB-3002")

    # Errors: the failed ones with code and plain reason, the rejected one; not the other tenant's.
    await page.click('nav >> text=Errors')
    errors = page.get_by_test_id("errors-table")
    await expect(errors.locator("tbody tr")).to_have_count(3)
    failed_row = errors.locator(f'tr[data-order-id="{w.ids["WEB-3003"]}"]')
    await expect(failed_row).to_contain_text("vat_code_not_mapped")
    await expect(failed_row).to_contain_text("no VAT code mapped for NL 9")
    await expect(errors.locator(f'tr[data-order-id="{w.ids["rejected"]}"]')).to_contain_text("not_json")
    await expect(page.locator("main")).not_to_contain_text("THEIRS-1")
    await shot(page, "errors")

    # The failed order's page: canonical order, checks, timeline, raw delivery.
    await failed_row.locator("a.strong").click()
    await expect(page.locator("h1")).to_contain_text("WEB-3003")
    await expect(page.get_by_test_id("checks")).to_contain_text("no VAT code mapped for NL 9")
    await expect(page.get_by_test_id("lines")).to_contain_text("Kookboek")
    await expect(page.get_by_test_id("timeline")).to_contain_text("checks_failed")
    await expect(page.get_by_test_id("raw-body")).to_contain_text('"order_number": "WEB-3003"')
    await shot(page, "order")

    # Open: waiting for a processable status, with the shop's status.
    await page.click('nav >> text=Open')
    await expect(page.get_by_test_id("open-table")).to_contain_text("WEB-3006")
    await expect(page.get_by_test_id("source-status")).to_have_text("pending")
    await shot(page, "open")

    # Configuration: connections (one needs consent → Connect), the division, the settings. Fix
    # the mapping here: add the NL 9 % rule (checked by the configuration API against Exact's codes).
    await page.click('nav >> text=Configuration')
    lapsed = page.get_by_test_id("connection").filter(has_text="Oude administratie")
    await expect(lapsed.get_by_test_id("connection-state")).to_have_text("needs consent")
    await expect(lapsed.get_by_test_id("connect")).to_be_visible()
    await expect(page.get_by_test_id("divisions").first).to_contain_text("1234567")
    await expect(page.get_by_test_id("vat-rules")).not_to_contain_text("9 %")
    await shot(page, "configuration")
    await page.click("details.edit > summary")
    rules_form = page.get_by_test_id("vat-rules-form")
    empty = len(default_vat_rules()) - 1  # the first empty row
    await rules_form.locator(f'input[name="vat_rules-{empty}-destination"]').fill("NL")
    await rules_form.locator(f'input[name="vat_rules-{empty}-rate"]').fill("9")
    await rules_form.locator(f'input[name="vat_rules-{empty}-vat_code"]').fill("2")
    await page.locator("details.edit").scroll_into_view_if_needed()
    await page.screenshot(path=str(SCREENSHOTS / "configuration-edit.png"), full_page=False)
    await page.click('button:has-text("Save settings")')
    await expect(page.get_by_test_id("config-notice")).to_contain_text("saved")
    await expect(page.get_by_test_id("vat-rules")).to_contain_text("9 %")
    await shot(page, "configuration-saved")

    # No worker runs now, so the pages show every step. Process a selection on the Errors page…
    await page.click('nav >> text=Errors')
    await page.check(f'input[name="order_id"][value="{w.ids["WEB-3004"]}"]')
    await page.check(f'input[name="order_id"][value="{w.ids["rejected"]}"]')
    await expect(page.locator("[data-selection-submit]")).to_have_text("Process selected (2)")
    await page.click("[data-selection-submit]")
    processing = page.get_by_test_id("processing")
    await expect(processing.locator(f'tr[data-order-id="{w.ids["WEB-3004"]}"] [data-bind="state"]')).to_have_text("queued")
    await expect(processing.locator(f'tr[data-order-id="{w.ids["rejected"]}"] [data-bind="state"]')).to_have_text("rejected")
    # …and one order from its own page.
    detail = await context.new_page()
    await detail.goto(f"{w.base}/dashboard/orders/{w.ids['WEB-3003']}")
    await detail.get_by_test_id("process").click()
    await detail.wait_for_url(f"{w.base}/dashboard/orders/{w.ids['WEB-3003']}")
    state = detail.locator('h1 [data-bind="state"]')
    await expect(state).to_have_text("queued")
    await detail.evaluate("window.__notReloaded = true")
    await page.evaluate("window.__notReloaded = true")

    async with running_worker(worker_settings, sandbox_client):
        await expect(state).to_have_text("booked", timeout=20_000)
        await expect(processing.locator(f'tr[data-order-id="{w.ids["WEB-3004"]}"] [data-bind="state"]')).to_have_text(
            "booked", timeout=20_000)
    assert await detail.evaluate("window.__notReloaded === true")  # updated in place, by polling
    assert await page.evaluate("window.__notReloaded === true")
    async with sessionmaker() as session:
        rows = {o.id: o for o in (await session.execute(select(Order).where(Order.id.in_(
            [w.ids["WEB-3003"], w.ids["WEB-3004"], w.ids["rejected"]])))).scalars()}
    assert rows[w.ids["WEB-3003"]].state == "booked" and rows[w.ids["WEB-3004"]].state == "booked"
    assert rows[w.ids["rejected"]].state == "rejected"
    await expect(detail.get_by_test_id("exact-number")).to_have_text(rows[w.ids["WEB-3003"]].exact_document_number)
    await expect(detail.locator(".error-block")).to_be_hidden()
    await expect(detail.get_by_test_id("process")).to_be_hidden()
    await expect(detail.get_by_test_id("timeline")).to_contain_text("reprocess requested by the dashboard")
    await expect(processing.locator(f'tr[data-order-id="{w.ids["WEB-3004"]}"] [data-bind="exact_document_number"]')
                 ).to_have_text(rows[w.ids["WEB-3004"]].exact_document_number)
    await shot(detail, "order-booked")
    await shot(page, "errors-processing")

    # Another tenant's order does not exist for this key.
    response = await detail.goto(f"{w.base}/dashboard/orders/{w.other_tenant_order}")
    assert response.status == 404
    await expect(detail.locator("h1")).to_have_text("Order not found")
    await shot(detail, "not-found")

    # Sign out: the session is gone.
    await page.click('button:has-text("Sign out")')
    await page.wait_for_url(f"{w.base}/dashboard/signin")
    await page.goto(f"{w.base}/dashboard/report")
    assert page.url.startswith(f"{w.base}/dashboard/signin")
    assert not failures, failures
    await context.close()


async def test_viewer_sees_no_process_button_and_is_refused_the_action(world, chromium, sessionmaker) -> None:
    from playwright.async_api import expect

    w, _ = world
    context = await chromium.new_context(viewport={"width": 1360, "height": 900})
    page = await context.new_page()
    await sign_in(page, w.base, w.viewer_key)
    await expect(page.locator(".whoami .scope")).to_have_text("viewer")
    await page.click('nav >> text=Errors')
    errors = page.get_by_test_id("errors-table")
    await expect(errors).to_contain_text("WEB-3003")
    await expect(page.locator('button:has-text("Process")')).to_have_count(0)
    await expect(page.locator('input[name="order_id"]')).to_have_count(0)
    await shot(page, "errors-viewer")
    await page.goto(f"{w.base}/dashboard/orders/{w.ids['WEB-3003']}")
    await expect(page.locator('button:has-text("Process")')).to_have_count(0)
    # Post the action anyway, from the page, with the session's own CSRF token.
    result = await page.evaluate("""async (id) => {
        const token = document.querySelector('input[name="csrf_token"]').value;
        const response = await fetch(`/dashboard/orders/${id}/process`, {method: 'POST',
            body: new URLSearchParams({csrf_token: token}), credentials: 'same-origin'});
        return {status: response.status, text: await response.text()};
    }""", w.ids["WEB-3003"])
    assert result["status"] == 403 and "scope &#39;viewer&#39; may only look" in result["text"]
    async with sessionmaker() as session:
        assert (await session.get(Order, w.ids["WEB-3003"])).state == "failed"
    await page.goto(f"{w.base}/dashboard/configuration")
    await expect(page.locator("details.edit")).to_have_count(0)
    await context.close()
