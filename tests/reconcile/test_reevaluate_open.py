"""The nightly re-evaluation of open orders, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from app.integrations.models import Integration
from app.orders.models import Order, OrderEvent, OutboxJob
from app.settings import Settings
from app.webhooks.config_cache import IntakeConfigCache
from app.webhooks.service import receive
from tests.factories import SECRET_KEY, Shop, make_shop, order, signed
from tests.reconcile.support import count, timeline
from workers.reevaluate_open import reevaluate_open, reevaluate_open_orders


async def deliver(sessionmaker, shop: Shop, number: int, status: str, **changes: Any) -> int:  # type: ignore[no-untyped-def]
    body, headers = signed(shop.secret, order(source_order_id=str(5000 + number), order_number=str(1000 + number),
                                              status=status, **changes))
    result = await receive(sessionmaker, IntakeConfigCache(SECRET_KEY, ttl=0), "generic", shop.key, body, headers)
    assert result.status_code == 202, result.body()
    assert result.order_id is not None
    return result.order_id


async def set_processable(sessionmaker, shop: Shop, statuses: list[str]) -> None:  # type: ignore[no-untyped-def]
    async with sessionmaker() as session, session.begin():
        integration = await session.get(Integration, shop.integration_id)
        integration.settings = {**integration.settings, "processable_statuses": statuses}


async def snapshot(sessionmaker, order_id: int) -> tuple[Any, ...]:  # type: ignore[no-untyped-def]
    async with sessionmaker() as session:
        stored = await session.get(Order, order_id)
        events = (await session.execute(select(OrderEvent.id, OrderEvent.kind, OrderEvent.message).where(
            OrderEvent.order_id == order_id).order_by(OrderEvent.id))).all()
    return (stored.state, stored.revision, stored.updated_at, stored.checks, stored.error_code, tuple(events))


async def test_open_order_whose_status_became_processable_moves_on_and_others_stay_untouched(
        database_url, sessionmaker) -> None:
    shop = await make_shop(sessionmaker)  # processable: paid
    other = await make_shop(sessionmaker, name="Other shop")
    pending = await deliver(sessionmaker, shop, 1, "pending")
    on_hold = await deliver(sessionmaker, shop, 2, "on-hold")
    queued = await deliver(sessionmaker, shop, 3, "paid")
    elsewhere = await deliver(sessionmaker, other, 4, "pending")
    await set_processable(sessionmaker, shop, ["paid", "Pending"])
    untouched = {order_id: await snapshot(sessionmaker, order_id) for order_id in (on_hold, queued, elsewhere)}

    counts = await reevaluate_open_orders(sessionmaker)

    assert counts == {"candidates": 1, "moved": 1, "queued": 1}
    async with sessionmaker() as session:
        moved = await session.get(Order, pending)
        jobs = (await session.execute(select(OutboxJob.job_id).where(OutboxJob.order_id == pending))).scalars().all()
    assert moved.state == "queued" and all(check["ok"] for check in moved.checks)
    assert jobs == [f"book_order:{pending}:1"]
    assert await timeline(sessionmaker, pending) == ["received", "waiting", "reevaluated", "queued"]
    for order_id, before in untouched.items():
        assert await snapshot(sessionmaker, order_id) == before


async def test_a_second_night_changes_nothing(database_url, sessionmaker) -> None:
    shop = await make_shop(sessionmaker)
    still_open = await deliver(sessionmaker, shop, 1, "pending")
    moving = await deliver(sessionmaker, shop, 2, "authorized")
    await set_processable(sessionmaker, shop, ["paid", "authorized"])
    assert (await reevaluate_open_orders(sessionmaker))["moved"] == 1
    before = [await snapshot(sessionmaker, order_id) for order_id in (still_open, moving)]
    events_before = await count(sessionmaker, OrderEvent)

    again = await reevaluate_open_orders(sessionmaker)

    assert again == {}
    assert [await snapshot(sessionmaker, order_id) for order_id in (still_open, moving)] == before
    assert await count(sessionmaker, OrderEvent) == events_before


async def test_a_processable_order_that_fails_its_checks_moves_to_failed(database_url, sessionmaker) -> None:
    shop = await make_shop(sessionmaker)
    wrong_total = await deliver(sessionmaker, shop, 1, "pending", total="60.00")
    await set_processable(sessionmaker, shop, ["pending"])

    counts = await reevaluate_open_orders(sessionmaker)

    assert counts == {"candidates": 1, "moved": 1, "failed": 1}
    async with sessionmaker() as session:
        stored = await session.get(Order, wrong_total)
    assert stored.state == "failed" and stored.error_code == "totals_mismatch"
    assert await timeline(sessionmaker, wrong_total) == ["received", "waiting", "reevaluated", "checks_failed"]
    assert await count(sessionmaker, OutboxJob) == 0


async def test_orders_go_in_small_batches_and_all_of_them_are_seen(database_url, sessionmaker) -> None:
    shop = await make_shop(sessionmaker)
    ids = [await deliver(sessionmaker, shop, k, "pending" if k % 2 else "on-hold") for k in range(7)]
    await set_processable(sessionmaker, shop, ["pending"])

    counts = await reevaluate_open_orders(sessionmaker, batch_size=2)

    assert counts == {"candidates": 3, "moved": 3, "queued": 3}
    async with sessionmaker() as session:
        states = dict((await session.execute(select(Order.id, Order.state).where(Order.id.in_(ids)))).all())
    assert [states[order_id] for order_id in ids] == ["open", "queued", "open", "queued", "open", "queued", "open"]


async def test_the_cron_job_pokes_the_relay_when_it_queued_something(database_url, sessionmaker) -> None:
    class Relay:
        pokes = 0

        def poke(self) -> None:
            self.pokes += 1

    shop = await make_shop(sessionmaker)
    await deliver(sessionmaker, shop, 1, "pending")
    relay = Relay()
    ctx = {"sessionmaker": sessionmaker, "relay": relay, "settings": Settings(job_timeout_seconds=60)}
    assert await reevaluate_open(ctx) == {}
    assert relay.pokes == 0
    await set_processable(sessionmaker, shop, ["pending"])
    assert await reevaluate_open(ctx) == {"candidates": 1, "moved": 1, "queued": 1}
    assert relay.pokes == 1


async def test_what_does_not_fit_in_the_budget_is_left_for_the_next_night(database_url, sessionmaker) -> None:
    shop = await make_shop(sessionmaker)
    ids = [await deliver(sessionmaker, shop, k, "pending") for k in range(5)]
    await set_processable(sessionmaker, shop, ["pending"])

    tonight = await reevaluate_open_orders(sessionmaker, batch_size=2, budget_seconds=0)
    tomorrow = await reevaluate_open_orders(sessionmaker, batch_size=2, budget_seconds=0)

    assert tonight == {"candidates": 5, "moved": 2, "queued": 2, "left_for_next_night": 3}
    assert tomorrow == {"candidates": 3, "moved": 2, "queued": 2, "left_for_next_night": 1}
    async with sessionmaker() as session:
        states = (await session.execute(select(Order.state).where(Order.id.in_(ids)).order_by(Order.id))).scalars()
        assert list(states) == ["queued", "queued", "queued", "queued", "open"]


async def test_an_open_order_changed_after_the_candidates_were_listed_is_left_alone(database_url, sessionmaker,
                                                                                   monkeypatch) -> None:
    import workers.reevaluate_open as job

    shop = await make_shop(sessionmaker)
    pending = await deliver(sessionmaker, shop, 1, "pending")
    await set_processable(sessionmaker, shop, ["pending"])
    listed = job._candidates

    async def then_the_settings_change(sm):  # type: ignore[no-untyped-def]
        found = await listed(sm)
        await set_processable(sessionmaker, shop, ["paid"])  # between the listing and the lock
        return found

    monkeypatch.setattr(job, "_candidates", then_the_settings_change)
    before = await snapshot(sessionmaker, pending)
    assert await reevaluate_open_orders(sessionmaker) == {"candidates": 1}
    assert await snapshot(sessionmaker, pending) == before
