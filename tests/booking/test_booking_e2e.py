"""Booking through the sandbox, end to end: API → outbox → arq → worker → Exact (sandbox).

Runs on SQLite and PostgreSQL (the `database_url` fixture), with real Redis.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import select, update

from app.connections.models import ExactConnection
from app.integrations.models import Integration
from app.orders.models import Order, OrderEvent
from app.sandbox.seed import DEFAULT_DIVISION
from tests.api_client import running_app
from tests.booking.harness import connect_sandbox, e2e_settings, running_worker, wait_for_states
from tests.factories import order, signed

INCL = order(
    source_order_id="A-1", order_number="WEB-1001",
    customer={"email": "nieuwe.klant@example.com", "name": "Nieuwe Klant"},
    lines=[{"sku": "MUG-01", "name": "Mok", "quantity": 2, "unit_price": "12.10", "vat_rate": 21},
           {"sku": "BOOK-7", "name": "Kookboek", "quantity": 1, "unit_price": "21.80", "vat_rate": 9}],
    shipping=[{"description": "Verzending", "amount": "6.05", "vat_rate": 21}],
    payment_costs=[{"description": "iDEAL", "amount": "0.30", "vat_rate": 21}],
    discounts=[{"description": "Korting", "code": "WELKOM", "amount": "2.42", "vat_rate": 21}],
    total="49.93", total_vat="6.68",
)
EXCL = order(
    source_order_id="A-2", order_number="WEB-1002", prices_include_vat=False,
    customer={"email": "zakelijk@example.com", "name": "Zakelijke Klant"},
    lines=[{"sku": "DESK", "name": "Bureau", "quantity": 2, "unit_price": "10.00", "vat_rate": 21},
           {"sku": "LAMP", "name": "Lamp", "quantity": 1, "unit_price": "20.00", "vat_rate": 9}],
    shipping=[{"description": "Verzending", "amount": "5.00", "vat_rate": 21}],
    discounts=[{"description": "Korting", "amount": "2.00", "vat_rate": 21}],
    total="49.63", total_vat="6.63",
)


async def deliver(client, shop, payload) -> int:  # type: ignore[no-untyped-def]
    body, headers = signed(shop.secret, payload)
    response = await client.post(f"/webhooks/generic/{shop.key}", content=body, headers=headers)
    assert response.status_code in (200, 202), response.text
    return int(response.json()["order_id"])


def entries_by_ref(sandbox) -> dict[str, list[dict]]:  # type: ignore[no-untyped-def]
    found: dict[str, list[dict]] = {}
    for entry in sandbox.sales_entries(DEFAULT_DIVISION):
        found.setdefault(entry["YourRef"], []).append(entry)
    return found


async def test_booked_totals_equal_shop_totals_to_the_cent(database_url, sessionmaker, redis_client, redis_url,
                                                          sandbox, sandbox_client) -> None:
    settings = e2e_settings(database_url, redis_url)
    shop = await connect_sandbox(sessionmaker, sandbox, sandbox_client, redis_client, settings)
    async with running_app(database_url, redis_url) as api:
        ids = [await deliver(api, shop, INCL), await deliver(api, shop, EXCL)]
        async with running_worker(settings, sandbox_client):
            done = await wait_for_states(sessionmaker, ids)
    booked = entries_by_ref(sandbox)
    for order_id, payload in zip(ids, (INCL, EXCL), strict=True):
        row = done[order_id]
        assert row.state == "booked", row.error_message
        [entry] = booked[payload["order_number"]]
        assert Decimal(str(entry["AmountDC"])) == Decimal(payload["total"])
        assert Decimal(str(entry["VATAmountDC"])) == Decimal(payload["total_vat"])
        assert row.exact_document_number == str(entry["EntryNumber"])
        assert row.exact_document_id == str(entry["EntryID"])
        assert row.exact_calls >= 1
        # shipping, payment costs and discounts are lines of their own
        descriptions = [line["Description"] for line in entry["SalesEntryLines"]]
        assert "Verzending" in descriptions and "Korting" in descriptions


async def test_returning_customer_costs_one_call(database_url, sessionmaker, redis_client, redis_url, sandbox,
                                                sandbox_client) -> None:
    settings = e2e_settings(database_url, redis_url)
    shop = await connect_sandbox(sessionmaker, sandbox, sandbox_client, redis_client, settings)
    async with running_app(database_url, redis_url) as api:
        first = await deliver(api, shop, INCL)
        async with running_worker(settings, sandbox_client):
            await wait_for_states(sessionmaker, [first])
            second = await deliver(api, shop, order(**{**INCL, "source_order_id": "A-9", "order_number": "WEB-1009"}))
            done = await wait_for_states(sessionmaker, [first, second])
    assert done[first].exact_calls == 3  # look up by e-mail, create the debtor, create the entry
    assert done[second].exact_calls == 1  # the entry only: the debtor is cached
    assert done[first].exact_debtor_id == done[second].exact_debtor_id


async def test_work_done_then_502_books_once(database_url, sessionmaker, redis_client, redis_url, sandbox,
                                            sandbox_client) -> None:
    settings = e2e_settings(database_url, redis_url)
    shop = await connect_sandbox(sessionmaker, sandbox, sandbox_client, redis_client, settings)
    sandbox.add_fault(method="POST", path_regex="salesentry/SalesEntries", after_work=True, status=502, times=1)
    async with running_app(database_url, redis_url) as api:
        order_id = await deliver(api, shop, INCL)
        async with running_worker(settings, sandbox_client):
            done = await wait_for_states(sessionmaker, [order_id])
    assert done[order_id].state == "booked"
    assert len(entries_by_ref(sandbox)["WEB-1001"]) == 1
    async with sessionmaker() as session:
        events = (await session.execute(select(OrderEvent).where(OrderEvent.order_id == order_id)
                                        .order_by(OrderEvent.id))).scalars().all()
    kinds = [event.kind for event in events]
    assert "retry" in kinds and kinds[-1] == "booked"
    assert "found in Exact by YourRef" in events[-1].message


async def test_redis_flushed_mid_run_loses_nothing(database_url, sessionmaker, redis_client, redis_url, sandbox,
                                                  sandbox_client) -> None:
    settings = e2e_settings(database_url, redis_url, sweeper_interval_seconds=0)
    shop = await connect_sandbox(sessionmaker, sandbox, sandbox_client, redis_client, settings)
    async with running_app(database_url, redis_url) as api:
        ids = [await deliver(api, shop, order(source_order_id=f"F-{n}", order_number=f"FLUSH-{n}"))
               for n in range(6)]
        await wait_until_enqueued(redis_client, settings.queue_name, 6)
    await redis_client.flushdb()  # every job and every trace of it is gone
    async with running_worker(settings, sandbox_client):
        done = await wait_for_states(sessionmaker, ids, timeout=40)
    assert {row.state for row in done.values()} == {"booked"}
    booked = entries_by_ref(sandbox)
    assert all(len(booked[f"FLUSH-{n}"]) == 1 for n in range(6))


async def wait_until_enqueued(redis, queue: str, count: int) -> None:  # type: ignore[no-untyped-def]
    import asyncio

    for _ in range(200):
        if await redis.zcard(queue) >= count:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the outbox relay did not enqueue the jobs")


async def test_token_expiry_under_concurrency_refreshes_once(database_url, sessionmaker, redis_client, redis_url,
                                                             sandbox, sandbox_client) -> None:
    settings = e2e_settings(database_url, redis_url)
    shop = await connect_sandbox(sessionmaker, sandbox, sandbox_client, redis_client, settings)
    async with sessionmaker() as session, session.begin():
        # The stored token enters its last 30 s; Exact (the sandbox) agrees it has expired.
        await session.execute(update(ExactConnection).where(ExactConnection.id == shop.connection_id)
                              .values(access_expires_at=datetime.now(UTC) + timedelta(seconds=5)))
    sandbox.expire_access_tokens()
    refreshes_before = sandbox.token_stats()["refreshes"]
    async with running_app(database_url, redis_url) as api:
        ids = [await deliver(api, shop, order(source_order_id=f"T-{n}", order_number=f"TOK-{n}"))
               for n in range(20)]
        async with running_worker(settings, sandbox_client, max_jobs=10):
            done = await wait_for_states(sessionmaker, ids, timeout=40)
    assert {row.state for row in done.values()} == {"booked"}
    stats = sandbox.token_stats()
    assert stats["refreshes"] - refreshes_before == 1
    assert stats["old_refresh_token_used"] == 0 and stats["too_early"] == 0


async def test_rate_limit_exhausted_defers_jobs_without_429s(database_url, sessionmaker, redis_client, redis_url,
                                                            sandbox, sandbox_client) -> None:
    settings = e2e_settings(database_url, redis_url)
    sandbox.set_limits(minutely=10)
    shop = await connect_sandbox(sessionmaker, sandbox, sandbox_client, redis_client, settings)
    async with running_app(database_url, redis_url) as api:
        ids = [await deliver(api, shop, order(source_order_id=f"R-{n}", order_number=f"RATE-{n}",
                                              customer={"email": f"klant{n}@example.com"})) for n in range(8)]
        async with running_worker(settings, sandbox_client):
            import asyncio

            await asyncio.sleep(3)
            depth = await redis_client.zcard(settings.queue_name)
    async with sessionmaker() as session:
        rows = (await session.execute(select(OrderEvent.order_id, OrderEvent.kind)
                                      .where(OrderEvent.order_id.in_(ids)))).all()
    deferred = {order_id for order_id, kind in rows if kind == "deferred"}
    booked = {order_id for order_id, kind in rows if kind == "booked"}
    assert deferred, "some orders must wait for the next minute"
    async with sessionmaker() as session:
        waiting = (await session.execute(select(Order).where(Order.id.in_(deferred - booked)))).scalars().all()
    # a create stopped by the budget never reached Exact: no YourRef look-up will be needed
    assert waiting and all(row.create_sent_at is None for row in waiting)
    assert booked | deferred == set(ids)
    assert depth >= len(deferred - booked)  # deferred jobs wait in the queue, not in a worker slot
    assert sandbox.snapshot()["rate_limited"] == {}  # not one 429: the shared budget kept us under


async def test_exact_validation_error_fails_plainly_and_reprocess_books_after_the_fix(
        database_url, sessionmaker, redis_client, redis_url, sandbox, sandbox_client) -> None:
    settings = e2e_settings(database_url, redis_url)
    shop = await connect_sandbox(sessionmaker, sandbox, sandbox_client, redis_client, settings,
                                 integration_settings={"journal_code": "60"})  # a purchase journal
    async with running_app(database_url, redis_url) as api:
        order_id = await deliver(api, shop, INCL)
        async with running_worker(settings, sandbox_client):
            failed = (await wait_for_states(sessionmaker, [order_id]))[order_id]
            assert failed.state == "failed" and failed.retryable is False
            assert failed.error_code == "exact_rejected" and "Dagboek" in failed.error_message
            assert failed.attempts == 1  # never retried blindly
            async with sessionmaker() as session, session.begin():
                integration = await session.get(Integration, shop.integration_id)
                integration.settings = {**integration.settings, "journal_code": "70"}
            auth = {"Authorization": f"Bearer {shop.api_key}"}
            response = await api.post(f"/api/v1/orders/{order_id}/reprocess", headers=auth)
            assert response.status_code == 200 and response.json()["state"] == "queued"
            done = (await wait_for_states(sessionmaker, [order_id]))[order_id]
            again = await api.post(f"/api/v1/orders/{order_id}/reprocess", headers=auth)
    assert done.state == "booked"
    assert again.status_code == 409 and "booked" in again.json()["detail"]
    assert len(entries_by_ref(sandbox)["WEB-1001"]) == 1


async def test_dead_refresh_token_parks_orders_waiting_for_consent(database_url, sessionmaker, redis_client,
                                                                   redis_url, sandbox, sandbox_client) -> None:
    settings = e2e_settings(database_url, redis_url)
    shop = await connect_sandbox(sessionmaker, sandbox, sandbox_client, redis_client, settings)
    async with sessionmaker() as session, session.begin():
        await session.execute(update(ExactConnection).where(ExactConnection.id == shop.connection_id)
                              .values(access_expires_at=datetime.now(UTC)))
    sandbox.expire_access_tokens()
    sandbox.expire_refresh_tokens()  # as after 30 idle days
    async with running_app(database_url, redis_url) as api:
        ids = [await deliver(api, shop, order(source_order_id=f"C-{n}", order_number=f"CONS-{n}")) for n in range(3)]
        async with running_worker(settings, sandbox_client):
            done = await wait_for_states(sessionmaker, ids)
        stats = (await api.get("/api/v1/stats", headers={"Authorization": f"Bearer {shop.api_key}"})).json()
    assert {row.state for row in done.values()} == {"waiting"}
    assert all("needs consent" in row.error_message for row in done.values())
    assert stats["connections_needing_consent"] == 1
    async with sessionmaker() as session:
        connection = await session.get(ExactConnection, shop.connection_id)
    assert connection.state == "needs_consent"


async def test_a_remembered_debtor_deleted_in_exact_is_found_again(database_url, sessionmaker, redis_client,
                                                                   redis_url, sandbox, sandbox_client) -> None:
    settings = e2e_settings(database_url, redis_url)
    shop = await connect_sandbox(sessionmaker, sandbox, sandbox_client, redis_client, settings)
    async with running_app(database_url, redis_url) as api:
        first = await deliver(api, shop, INCL)
        async with running_worker(settings, sandbox_client):
            debtor = (await wait_for_states(sessionmaker, [first]))[first].exact_debtor_id
            token = sandbox.issue_tokens()["access_token"]
            deleted = await sandbox_client.delete(f"/api/v1/{DEFAULT_DIVISION}/crm/Accounts(guid'{debtor}')",
                                                  headers={"Authorization": f"Bearer {token}"})
            assert deleted.status_code == 204
            second = await deliver(api, shop, order(**{**INCL, "source_order_id": "A-7", "order_number": "WEB-1007"}))
            done = await wait_for_states(sessionmaker, [second])
    assert done[second].state == "booked", done[second].error_message
    assert done[second].exact_debtor_id not in (None, debtor)
    [entry] = entries_by_ref(sandbox)["WEB-1007"]
    assert entry["Customer"] == done[second].exact_debtor_id
