"""Reconciliation on SQLite and PostgreSQL, with each shop's API stubbed by respx."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from app.db.base import utcnow
from app.orders.models import Delivery, Order, OrderEvent, OutboxJob
from app.reconcile.models import ShopApiCredentials
from tests.reconcile.support import (
    SHOPIFY_ORDERS,
    SHOPIFY_TOKEN,
    SOURCES,
    WOO_KEY,
    WOO_SECRET,
    company_order,
    count,
    later,
    modified_key,
    only_order,
    reconcile,
    shop_api,
    shop_with_api,
    timeline,
    webhook,
)


async def credentials_row(sessionmaker, integration_id: int) -> ShopApiCredentials:  # type: ignore[no-untyped-def]
    async with sessionmaker() as session:
        return (await session.execute(select(ShopApiCredentials).where(
            ShopApiCredentials.integration_id == integration_id))).scalar_one()


@pytest.mark.parametrize("source", SOURCES)
async def test_order_whose_webhook_was_lost_is_taken_in_once_as_a_webhook_would(database_url, sessionmaker,
                                                                                 source) -> None:
    order = company_order(source)
    shop = await shop_with_api(sessionmaker, source)
    with shop_api(source, [order]):
        run = await reconcile(sessionmaker, shop)
    assert run.error is None and run.counts["listed"] == 1 and run.counts["new"] == 1 and run.queued == 1

    # The same order through the webhook of another integration: the reference outcome.
    reference = await shop_with_api(sessionmaker, source, name="Reference")
    answer = await webhook(sessionmaker, reference, source, order, event_id="evt-1")
    assert answer.status_code == 202 and answer.state == "queued"

    taken = await only_order(sessionmaker, shop.integration_id)
    by_webhook = await only_order(sessionmaker, reference.integration_id)
    assert taken.state == by_webhook.state == "queued"
    assert taken.canonical == by_webhook.canonical
    assert taken.checks == by_webhook.checks and all(check["ok"] for check in taken.checks)
    assert taken.source_order_id == str(order["id"])
    assert json.loads(taken.raw_body) == order  # the order as the API returned it
    assert taken.raw_headers["x-koppel-via"] == "reconciliation"
    assert await timeline(sessionmaker, taken.id) == ["received", "queued", "reconciled"]
    async with sessionmaker() as session:
        deliveries = (await session.execute(select(Delivery).where(
            Delivery.integration_id == shop.integration_id))).scalars().all()
        jobs = (await session.execute(select(OutboxJob).where(OutboxJob.order_id == taken.id))).scalars().all()
    assert [(d.external_id, d.outcome, d.order_id) for d in deliveries] == [
        (f"reconcile:{order['id']}:{order[modified_key(source)]}", "new", taken.id)]
    assert [job.job_id for job in jobs] == [f"book_order:{taken.id}:1"]


@pytest.mark.parametrize("source", SOURCES)
async def test_running_twice_creates_nothing_new(database_url, sessionmaker, source) -> None:
    shop = await shop_with_api(sessionmaker, source)
    with shop_api(source, [company_order(source)]):
        first = await reconcile(sessionmaker, shop, now=utcnow())
        before = [await count(sessionmaker, model) for model in (Order, Delivery, OrderEvent, OutboxJob)]
        second = await reconcile(sessionmaker, shop, now=utcnow() + timedelta(minutes=15))
    assert first.counts["new"] == 1
    assert second.error is None and second.counts["listed"] == 1 and second.counts["already_seen"] == 1
    assert second.counts["new"] == second.counts["updated"] == second.queued == 0
    assert [await count(sessionmaker, model) for model in (Order, Delivery, OrderEvent, OutboxJob)] == before
    assert before == [1, 1, 3, 1]


@pytest.mark.parametrize("source", SOURCES)
async def test_order_that_arrived_by_webhook_is_not_taken_in_again(database_url, sessionmaker, source) -> None:
    order = company_order(source)
    shop = await shop_with_api(sessionmaker, source)
    arrived = await webhook(sessionmaker, shop, source, order, event_id="evt-1")
    assert arrived.status_code == 202
    events_before = await timeline(sessionmaker, arrived.order_id)
    with shop_api(source, [order]):
        run = await reconcile(sessionmaker, shop)
    assert run.counts["listed"] == 1 and run.counts["unchanged"] == 1 and run.counts["new"] == 0
    assert await count(sessionmaker, Order) == 1
    assert await count(sessionmaker, Delivery) == 1  # nothing stored for a version Koppel has
    assert await timeline(sessionmaker, arrived.order_id) == events_before


@pytest.mark.parametrize("source", SOURCES)
async def test_a_later_version_with_nothing_booked_changed_is_a_repeat_not_a_second_order(
        database_url, sessionmaker, source) -> None:
    order = company_order(source)
    shop = await shop_with_api(sessionmaker, source)
    arrived = await webhook(sessionmaker, shop, source, order, event_id="evt-1")
    # e.g. a tag or fulfilment changed: the shop's modification time moved, the order did not.
    touched = later(source, order, "2025-03-16T08:00:00+01:00" if source == "shopify" else "2025-03-16T07:00:00")
    with shop_api(source, [touched]):
        run = await reconcile(sessionmaker, shop)
    assert run.counts["repeat"] == 1 and run.queued == 0
    assert await count(sessionmaker, Order) == 1
    assert await count(sessionmaker, OutboxJob) == 1
    stored = await only_order(sessionmaker, shop.integration_id)
    assert stored.id == arrived.order_id and stored.state == "queued"
    assert (await timeline(sessionmaker, stored.id))[-1] == "repeat"
    assert await count(sessionmaker, Delivery) == 2  # the webhook's and the reconciliation's, both raw


@pytest.mark.parametrize("source", SOURCES)
async def test_an_update_whose_webhook_was_lost_moves_the_open_order_on(database_url, sessionmaker,
                                                                        source) -> None:
    order = company_order(source)
    unpaid = dict(order, **({"financial_status": "pending"} if source == "shopify" else {"status": "pending"}))
    shop = await shop_with_api(sessionmaker, source)
    waiting = await webhook(sessionmaker, shop, source, unpaid, event_id="evt-1")
    assert waiting.state == "open"
    paid = later(source, order, "2025-03-14T11:00:00+01:00" if source == "shopify" else "2025-03-14T10:00:00")
    with shop_api(source, [paid]):
        run = await reconcile(sessionmaker, shop)
    assert run.counts["updated"] == 1 and run.queued == 1
    stored = await only_order(sessionmaker, shop.integration_id)
    assert stored.id == waiting.order_id and stored.state == "queued"
    assert await timeline(sessionmaker, stored.id) == ["received", "waiting", "updated", "queued", "reconciled"]
    assert await count(sessionmaker, OutboxJob) == 1


@pytest.mark.parametrize("source", SOURCES)
async def test_an_older_version_never_overwrites_what_a_webhook_brought(database_url, sessionmaker, source) -> None:
    order = company_order(source)
    shop = await shop_with_api(sessionmaker, source)
    paid = await webhook(sessionmaker, shop, source, order, event_id="evt-2")
    older = later(source, order, "2025-03-14T09:00:00+01:00" if source == "shopify" else "2025-03-14T08:00:00",
                  **({"financial_status": "pending"} if source == "shopify" else {"status": "pending"}))
    with shop_api(source, [older]):
        run = await reconcile(sessionmaker, shop)
    assert run.counts["unchanged"] == 1
    stored = await only_order(sessionmaker, shop.integration_id)
    assert stored.id == paid.order_id and stored.state == "queued" and stored.source_status != "pending"


@pytest.mark.parametrize("source", SOURCES)
async def test_pages_are_followed(database_url, sessionmaker, source) -> None:
    base = company_order(source)
    orders = [dict(base, id=base["id"] + k, number=str(1000 + k), name=f"#{1000 + k}") for k in range(5)]
    shop = await shop_with_api(sessionmaker, source)
    with shop_api(source, orders, page_size=2) as api:
        run = await reconcile(sessionmaker, shop)
    assert run.error is None and run.counts["listed"] == 5 and run.counts["new"] == 5
    assert len(api.requests) == 3
    assert await count(sessionmaker, Order) == 5
    if source == "shopify":
        assert [api.params(k).get("page_info") for k in range(3)] == [None, "p2", "p3"]
        # Shopify refuses filters beside page_info: later pages are its next link as given.
        assert "updated_at_min" in api.params(0) and "updated_at_min" not in api.params(1)
        assert all(r.headers["x-shopify-access-token"] == SHOPIFY_TOKEN for r in api.requests)
    else:
        assert [api.params(k)["page"] for k in range(3)] == ["1", "2", "3"]
        assert all(api.params(k)["modified_after"] == api.params(0)["modified_after"] for k in range(3))
        expected = "Basic " + base64.b64encode(f"{WOO_KEY}:{WOO_SECRET}".encode()).decode()
        assert all(r.headers["authorization"] == expected for r in api.requests)


@pytest.mark.parametrize("source", SOURCES)
async def test_cursor_moves_to_the_run_start_and_the_next_run_lists_from_there_minus_the_overlap(
        database_url, sessionmaker, source) -> None:
    shop = await shop_with_api(sessionmaker, source)
    start = await credentials_row(sessionmaker, shop.integration_id)
    first_at = datetime(2031, 5, 4, 12, 0, 7, tzinfo=UTC)
    with shop_api(source, [company_order(source)]) as api:
        await reconcile(sessionmaker, shop, now=first_at)
        await reconcile(sessionmaker, shop, now=first_at + timedelta(minutes=15))
    row = await credentials_row(sessionmaker, shop.integration_id)
    assert row.reconciled_until == first_at + timedelta(minutes=15)
    assert row.last_error is None and row.last_counts == {"listed": 1, "already_seen": 1}
    key = "updated_at_min" if source == "shopify" else "modified_after"

    def stamp(moment: datetime) -> str:
        moment = moment.astimezone(UTC).replace(microsecond=0)
        return moment.isoformat() if source == "shopify" else moment.replace(tzinfo=None).isoformat()

    # The first run starts from the integration's creation; each later one from the last start.
    assert api.params(0)[key] == stamp(start.reconciled_until - timedelta(minutes=10))
    assert api.params(1)[key] == stamp(first_at - timedelta(minutes=10))
    if source == "woocommerce":
        assert api.params(0)["dates_are_gmt"] == "true"
    else:
        assert api.params(0)["status"] == "any"


@pytest.mark.parametrize("source", SOURCES)
async def test_a_run_that_fails_part_way_keeps_the_cursor_and_the_next_run_goes_on_from_the_failed_page(
        database_url, sessionmaker, source) -> None:
    base = company_order(source)
    orders = [dict(base, id=base["id"] + k, number=str(2000 + k), name=f"#{2000 + k}") for k in range(3)]
    shop = await shop_with_api(sessionmaker, source)
    before = (await credentials_row(sessionmaker, shop.integration_id)).reconciled_until
    with shop_api(source, orders, page_size=2, fail_on_page=2) as api:
        failed = await reconcile(sessionmaker, shop, now=utcnow())
    assert failed.error is not None and "500" in failed.error and failed.counts["new"] == 2
    row = await credentials_row(sessionmaker, shop.integration_id)
    assert row.reconciled_until == before and row.last_error == failed.error
    expected_next = f"{SHOPIFY_ORDERS}?limit=2&page_info=p2" if source == "shopify" else "2"
    assert row.resume is not None and row.resume["next"] == expected_next and row.resume["pages"] == 1
    assert await count(sessionmaker, Order) == 2  # page 1 was committed order by order
    since = api.params(0)["updated_at_min" if source == "shopify" else "modified_after"]

    with shop_api(source, orders, page_size=2) as api:
        again = await reconcile(sessionmaker, shop, now=utcnow() + timedelta(minutes=15))
    assert again.error is None and again.finished and dict(again.counts) == {"listed": 1, "new": 1}
    assert len(api.requests) == 1
    if source == "shopify":
        assert api.params(0) == {"limit": "2", "page_info": "p2"}
    else:
        assert (api.params(0)["page"], api.params(0)["modified_after"]) == ("2", since)
    assert await count(sessionmaker, Order) == 3
    row = await credentials_row(sessionmaker, shop.integration_id)
    # The listing began with the failed run: that is how far every change has been seen.
    assert row.reconciled_until == failed.started and row.resume is None and row.last_error is None


@pytest.mark.parametrize("source", SOURCES)
async def test_a_listing_longer_than_the_budget_goes_on_at_the_next_run(database_url, sessionmaker, source) -> None:
    base = company_order(source)
    orders = [dict(base, id=base["id"] + k, number=str(3000 + k), name=f"#{3000 + k}") for k in range(5)]
    shop = await shop_with_api(sessionmaker, source)
    before = (await credentials_row(sessionmaker, shop.integration_id)).reconciled_until
    first_at = utcnow()
    runs = []
    with shop_api(source, orders, page_size=2) as api:
        for k in range(3):
            runs.append(await reconcile(sessionmaker, shop, now=first_at + timedelta(minutes=15 * k), budget=0))
            row = await credentials_row(sessionmaker, shop.integration_id)
            cursors = (row.reconciled_until, row.resume)
            assert cursors[0] == (before if k < 2 else first_at)
            assert (cursors[1] is None) == (k == 2)
    assert [run.counts["new"] for run in runs] == [2, 2, 1]
    assert [run.finished for run in runs] == [False, False, True]
    assert len(api.requests) == 3  # one page per run, none asked twice
    assert await count(sessionmaker, Order) == 5


@pytest.mark.parametrize(("status", "hint"), [(401, "credentials refused"), (404, "wrong shop address or API path")])
async def test_a_refusing_shop_is_recorded_and_nothing_moves(database_url, sessionmaker, status, hint) -> None:
    shop = await shop_with_api(sessionmaker, "shopify")
    before = (await credentials_row(sessionmaker, shop.integration_id)).reconciled_until
    with shop_api("shopify", [company_order("shopify")], fail_on_page=1, fail_status=status):
        run = await reconcile(sessionmaker, shop)
    assert run.error == f"GET {SHOPIFY_ORDERS} answered {status} ({hint})"
    assert SHOPIFY_TOKEN not in run.error
    row = await credentials_row(sessionmaker, shop.integration_id)
    assert row.reconciled_until == before and row.last_error == run.error
    assert await count(sessionmaker, Order) == 0


async def test_an_unreadable_order_is_kept_as_rejected_with_the_failing_field(database_url, sessionmaker) -> None:
    broken = company_order("woocommerce")
    broken["line_items"] = []
    shop = await shop_with_api(sessionmaker, "woocommerce")
    with shop_api("woocommerce", [broken]):
        run = await reconcile(sessionmaker, shop)
    assert run.error is None and run.counts["rejected"] == 1
    stored = await only_order(sessionmaker, shop.integration_id)
    assert stored.state == "rejected" and stored.error_code == "not_an_order"
    assert "line_items" in stored.error_message
    assert await timeline(sessionmaker, stored.id) == ["received", "rejected", "reconciled"]


async def test_an_order_without_a_modification_time_is_told_apart_by_its_content(database_url, sessionmaker) -> None:
    order = company_order("woocommerce")
    del order["date_modified_gmt"], order["date_modified"]
    unpaid = dict(order, status="on-hold")
    shop = await shop_with_api(sessionmaker, "woocommerce")
    with shop_api("woocommerce", [unpaid]):
        first = await reconcile(sessionmaker, shop)
        again = await reconcile(sessionmaker, shop)
    with shop_api("woocommerce", [order]):
        paid = await reconcile(sessionmaker, shop)
    assert (first.counts["new"], again.counts["already_seen"], paid.counts["updated"]) == (1, 1, 1)
    stored = await only_order(sessionmaker, shop.integration_id)
    assert stored.state == "queued"
    async with sessionmaker() as session:
        ids = (await session.execute(select(Delivery.external_id).order_by(Delivery.id))).scalars().all()
    assert len(ids) == 2 and ids[0] != ids[1] and all(i.startswith("reconcile:8812:sha256:") for i in ids)


async def test_an_order_a_webhook_inserts_meanwhile_is_not_called_lost(database_url, sessionmaker, monkeypatch) -> None:
    from app.orders import repository

    order = company_order("shopify")
    shop = await shop_with_api(sessionmaker, "shopify")
    arrived = await webhook(sessionmaker, shop, "shopify", order, event_id="evt-1")
    newer = later("shopify", order, "2025-03-16T08:00:00+01:00")
    real = repository.get_by_source_id
    calls = []

    async def not_yet_there(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(args)
        return None if len(calls) == 1 else await real(*args, **kwargs)  # the webhook commits right after

    monkeypatch.setattr(repository, "get_by_source_id", not_yet_there)
    with shop_api("shopify", [newer]):
        run = await reconcile(sessionmaker, shop)
    assert len(calls) == 2 and run.counts["repeat"] == 1 and run.counts["new"] == 0
    assert await count(sessionmaker, Order) == 1
    assert "reconciled" not in await timeline(sessionmaker, arrived.order_id)
