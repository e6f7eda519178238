"""Webhook intake on SQLite and PostgreSQL: every answer the issue names."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url

from app.orders.models import Delivery, Order, OrderEvent, OutboxJob
from tests.api_client import running_app
from tests.factories import make_shop, order, signed


async def count(sessionmaker, model) -> int:  # type: ignore[no-untyped-def]
    async with sessionmaker() as session:
        return int((await session.execute(select(func.count()).select_from(model))).scalar_one())


async def post(client, shop, payload, **kwargs):  # type: ignore[no-untyped-def]
    body, headers = signed(shop.secret, payload, **kwargs)
    return await client.post(f"/webhooks/generic/{shop.key}", content=body, headers=headers)


async def test_new_order_is_stored_raw_checked_and_queued(database_url, sessionmaker) -> None:
    shop = await make_shop(sessionmaker)
    body, headers = signed(shop.secret, order())
    async with running_app(database_url) as client:
        response = await client.post(f"/webhooks/generic/{shop.key}", content=body, headers=headers)
    assert response.status_code == 202, response.text
    assert response.json() == {"order_id": response.json()["order_id"], "state": "queued"}
    async with sessionmaker() as session:
        stored = await session.get(Order, response.json()["order_id"])
        assert stored.raw_body == body  # byte for byte, as signed
        assert stored.raw_headers["webhook-id"] == headers["webhook-id"]
        assert stored.canonical["total"] == "52.05"
        assert stored.source_order_id == "5001" and stored.order_number == "1001"
        assert all(check["ok"] for check in stored.checks)
        outbox = (await session.execute(select(OutboxJob))).scalars().all()
        assert [job.job_id for job in outbox] == [f"book_order:{stored.id}:1"]
        kinds = (await session.execute(select(OrderEvent.kind).order_by(OrderEvent.id))).scalars().all()
        assert kinds == ["received", "queued"]


async def test_repeat_of_same_delivery_answers_200_with_same_order(database_url, sessionmaker) -> None:
    shop = await make_shop(sessionmaker)
    body, headers = signed(shop.secret, order())
    async with running_app(database_url) as client:
        first = await client.post(f"/webhooks/generic/{shop.key}", content=body, headers=headers)
        again = await client.post(f"/webhooks/generic/{shop.key}", content=body, headers=headers)
    assert (first.status_code, again.status_code) == (202, 200)
    assert again.json()["order_id"] == first.json()["order_id"]
    assert await count(sessionmaker, Order) == 1
    assert await count(sessionmaker, Delivery) == 1
    assert await count(sessionmaker, OutboxJob) == 1


async def test_same_source_order_in_a_new_delivery_is_not_a_second_order(database_url, sessionmaker) -> None:
    shop = await make_shop(sessionmaker)
    async with running_app(database_url) as client:
        first = await post(client, shop, order())
        resent = await post(client, shop, order())  # e.g. WooCommerce's created+updated pair
    assert (first.status_code, resent.status_code) == (202, 200)
    assert resent.json() == first.json()
    assert await count(sessionmaker, Order) == 1
    assert await count(sessionmaker, Delivery) == 2  # both kept raw
    assert await count(sessionmaker, OutboxJob) == 1


async def test_duplicate_storm_makes_one_order_and_one_job(database_url, sessionmaker) -> None:
    shop = await make_shop(sessionmaker)
    body, headers = signed(shop.secret, order())
    async with running_app(database_url) as client:
        responses = await asyncio.gather(*[
            client.post(f"/webhooks/generic/{shop.key}", content=body, headers=headers) for _ in range(50)
        ])
    codes = sorted(r.status_code for r in responses)
    assert codes == [200] * 49 + [202], codes
    assert len({r.json()["order_id"] for r in responses}) == 1
    assert await count(sessionmaker, Order) == 1
    assert await count(sessionmaker, OutboxJob) == 1


@pytest.mark.parametrize("mangle, reason", [
    (lambda h: h.pop("webhook-signature"), "missing"),
    (lambda h: h.update({"webhook-signature": "v1,AAAA"}), "no webhook-signature matches"),
    (lambda h: h.update({"webhook-id": "another-id"}), "no webhook-signature matches"),
])
async def test_bad_signatures_are_401(database_url, sessionmaker, mangle, reason) -> None:
    shop = await make_shop(sessionmaker)
    body, headers = signed(shop.secret, order())
    mangle(headers)
    async with running_app(database_url) as client:
        response = await client.post(f"/webhooks/generic/{shop.key}", content=body, headers=headers)
    assert response.status_code == 401
    assert reason in response.json()["detail"]
    assert await count(sessionmaker, Delivery) == 0


async def test_body_changed_after_signing_is_401(database_url, sessionmaker) -> None:
    shop = await make_shop(sessionmaker)
    body, headers = signed(shop.secret, order())
    async with running_app(database_url) as client:
        response = await client.post(f"/webhooks/generic/{shop.key}", content=body.replace(b"52.05", b"52.06"),
                                     headers=headers)
    assert response.status_code == 401


@pytest.mark.parametrize("offset", [-301, 301])
async def test_stale_or_future_timestamp_is_401(database_url, sessionmaker, offset) -> None:
    shop = await make_shop(sessionmaker)
    async with running_app(database_url) as client:
        response = await post(client, shop, order(), timestamp=int(time.time()) + offset)
    assert response.status_code == 401
    assert "5 minutes" in response.json()["detail"]


async def test_one_of_several_signatures_matching_is_enough(database_url, sessionmaker) -> None:
    shop = await make_shop(sessionmaker)
    body, headers = signed(shop.secret, order())
    headers["webhook-signature"] = "v1,b2xkLWtleS1zaWduYXR1cmU= " + headers["webhook-signature"]
    async with running_app(database_url) as client:
        response = await client.post(f"/webhooks/generic/{shop.key}", content=body, headers=headers)
    assert response.status_code == 202


async def test_unknown_integration_or_source_is_404(database_url, sessionmaker) -> None:
    shop = await make_shop(sessionmaker)
    body, headers = signed(shop.secret, order())
    async with running_app(database_url) as client:
        unknown_key = await client.post("/webhooks/generic/nope", content=body, headers=headers)
        unknown_source = await client.post(f"/webhooks/magento2/{shop.key}", content=body, headers=headers)
        wrong_source = await client.post(f"/webhooks/shopify/{shop.key}", content=body, headers=headers)
    assert unknown_key.status_code == 404 and unknown_key.json()["detail"] == "unknown integration"
    assert unknown_source.status_code == 404 and "unknown source" in unknown_source.json()["detail"]
    assert wrong_source.status_code == 404


async def test_body_over_one_mebibyte_is_413(database_url, sessionmaker) -> None:
    shop = await make_shop(sessionmaker)
    payload = order(padding="x" * (1024 * 1024))
    async with running_app(database_url) as client:
        response = await post(client, shop, payload)
    assert response.status_code == 413
    assert await count(sessionmaker, Delivery) == 0


async def test_body_that_is_not_json_is_400_and_kept_as_rejected(database_url, sessionmaker) -> None:
    shop = await make_shop(sessionmaker)
    async with running_app(database_url) as client:
        response = await post(client, shop, b"order=1001&total=52.05")
        detail = await client.get(f"/api/v1/orders/{response.json()['order_id']}",
                                  headers={"Authorization": f"Bearer {shop.viewer_key}"})
    assert response.status_code == 400
    assert response.json()["state"] == "rejected"
    assert "not JSON" in response.json()["detail"]
    assert detail.json()["raw_body"] == "order=1001&total=52.05"
    assert detail.json()["error_code"] == "not_json"


async def test_json_that_is_not_an_order_is_422_and_kept_as_rejected(database_url, sessionmaker) -> None:
    shop = await make_shop(sessionmaker)
    bad = order()
    del bad["lines"]
    async with running_app(database_url) as client:
        response = await post(client, shop, bad)
    assert response.status_code == 422
    assert response.json()["state"] == "rejected"
    assert "lines" in response.json()["detail"]
    async with sessionmaker() as session:
        stored = await session.get(Order, response.json()["order_id"])
        assert stored.state == "rejected" and stored.error_code == "not_an_order"
        assert stored.source_order_id == "5001"  # so a corrected delivery updates this row
        assert json.loads(stored.raw_body)["order_number"] == "1001"


async def test_corrected_delivery_after_rejection_moves_the_same_order_on(database_url, sessionmaker) -> None:
    shop = await make_shop(sessionmaker)
    bad = order()
    bad["lines"][0]["quantity"] = "two"
    async with running_app(database_url) as client:
        rejected = await post(client, shop, bad)
        fixed = await post(client, shop, order())
    assert rejected.status_code == 422 and fixed.status_code == 200
    assert fixed.json() == {"order_id": rejected.json()["order_id"], "state": "queued"}


async def test_unprocessable_status_waits_open_until_an_update_makes_it_processable(database_url, sessionmaker) -> None:
    shop = await make_shop(sessionmaker)
    async with running_app(database_url) as client:
        pending = await post(client, shop, order(status="pending"))
        paid = await post(client, shop, order(status="paid"))
    assert pending.status_code == 202 and pending.json()["state"] == "open"
    assert paid.status_code == 200 and paid.json() == {"order_id": pending.json()["order_id"], "state": "queued"}
    assert await count(sessionmaker, OutboxJob) == 1


async def test_change_after_booking_is_recorded_not_booked(database_url, sessionmaker) -> None:
    shop = await make_shop(sessionmaker)
    async with running_app(database_url) as client:
        first = await post(client, shop, order())
        async with sessionmaker() as session, session.begin():
            await session.execute(text("UPDATE orders SET state = 'booked'"))
        changed = await post(client, shop, order(total="60.00", status="refunded"))
    assert changed.status_code == 200
    assert changed.json() == {"order_id": first.json()["order_id"], "state": "booked"}
    async with sessionmaker() as session:
        stored = await session.get(Order, first.json()["order_id"])
        assert stored.canonical["total"] == "52.05"  # the booked version stays
        kinds = (await session.execute(select(OrderEvent.kind).order_by(OrderEvent.id))).scalars().all()
        assert kinds[-1] == "changed_after_booking"
    assert await count(sessionmaker, OutboxJob) == 1


async def test_failed_precheck_is_answered_with_the_state_and_kept_with_its_reason(database_url, sessionmaker) -> None:
    shop = await make_shop(sessionmaker)
    async with running_app(database_url) as client:
        response = await post(client, shop, order(total="60.00"))
        detail = await client.get(f"/api/v1/orders/{response.json()['order_id']}",
                                  headers={"Authorization": f"Bearer {shop.viewer_key}"})
    assert response.status_code == 202 and response.json()["state"] == "failed"
    body = detail.json()
    assert body["error_code"] == "totals_mismatch"
    assert "60.00" in body["error_message"] and "52.05" in body["error_message"]
    assert await count(sessionmaker, OutboxJob) == 0


async def test_database_that_cannot_take_the_write_answers_503(database_url, sessionmaker, engine) -> None:
    shop = await make_shop(sessionmaker)
    body, headers = signed(shop.secret, order())
    async with running_app(database_url, database_lock_timeout_ms=300) as client:
        if engine.dialect.name == "sqlite":
            blocker = sqlite3.connect(make_url(database_url).database, isolation_level=None)
            blocker.execute("BEGIN EXCLUSIVE")
            try:
                response = await client.post(f"/webhooks/generic/{shop.key}", content=body, headers=headers)
            finally:
                blocker.execute("ROLLBACK")
                blocker.close()
        else:
            async with engine.connect() as blocker:
                await blocker.execute(text("LOCK TABLE deliveries IN EXCLUSIVE MODE"))
                response = await client.post(f"/webhooks/generic/{shop.key}", content=body, headers=headers)
                await blocker.rollback()
        assert response.status_code == 503
        assert response.headers["retry-after"] == "30"
        assert await count(sessionmaker, Delivery) == 0
        retried = await client.post(f"/webhooks/generic/{shop.key}", content=body, headers=headers)
    assert retried.status_code == 202


async def test_timeline_of_an_update_is_in_order(database_url, sessionmaker) -> None:
    shop = await make_shop(sessionmaker)
    async with running_app(database_url) as client:
        pending = await post(client, shop, order(status="pending"))
        await post(client, shop, order(status="paid"))
    async with sessionmaker() as session:
        kinds = (await session.execute(select(OrderEvent.kind).where(
            OrderEvent.order_id == pending.json()["order_id"]).order_by(OrderEvent.id))).scalars().all()
    assert kinds == ["received", "waiting", "updated", "queued"]


async def test_an_adapter_that_crashes_keeps_the_delivery_and_answers_422(database_url, sessionmaker,
                                                                          monkeypatch) -> None:
    from app.sources.generic import GenericAdapter

    def broken(self, payload, settings):  # type: ignore[no-untyped-def]
        raise TypeError("a bug in the adapter")

    monkeypatch.setattr(GenericAdapter, "to_order", broken)
    shop = await make_shop(sessionmaker)
    async with running_app(database_url) as client:
        response = await post(client, shop, order())
    assert response.status_code == 422 and response.json()["state"] == "rejected"
    assert "TypeError" in response.json()["detail"]
    assert await count(sessionmaker, Delivery) == 1 and await count(sessionmaker, Order) == 1
