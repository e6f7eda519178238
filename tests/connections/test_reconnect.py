"""A connection that lost its consent parks its orders as `waiting`; consenting again queues
them and they are booked. End to end: API, arq worker, Redis, database and the sandbox."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import update

from app.connections.models import ExactConnection
from app.sandbox.seed import DEFAULT_DIVISION
from tests.booking.harness import e2e_settings, running_worker, wait_for_states
from tests.connections.support import connect, installation_admin, koppel_api, new_connection, tenant
from tests.factories import order, signed


async def deliver(api, key: str, secret: str, payload) -> int:  # type: ignore[no-untyped-def]
    body, headers = signed(secret, payload)
    response = await api.post(f"/webhooks/generic/{key}", content=body, headers=headers)
    assert response.status_code in (200, 202), response.text
    return int(response.json()["order_id"])


async def test_reconnecting_requeues_the_orders_that_waited_for_consent(
        database_url, sessionmaker, redis_client, redis_url, sandbox, sandbox_client) -> None:
    settings = e2e_settings(database_url, redis_url)
    shop = await tenant(sessionmaker, "Winkel")
    install = await installation_admin(sessionmaker)
    async with koppel_api(database_url, redis_url, sandbox_client) as api:
        connection_id = await new_connection(api, install, shop.tenant_id)
        assert (await connect(api, sandbox_client, connection_id, shop.admin)).status_code == 200
        created = await api.post("/api/v1/integrations", headers=shop.admin, json={
            "name": "Webshop", "source": "generic", "connection_id": connection_id, "division": DEFAULT_DIVISION})
        assert created.status_code == 201, created.text
        key = created.json()["webhook_path"].rsplit("/", 1)[1]
        secret = created.json()["webhook_secret"]

        # 30 idle days later: Exact has forgotten the refresh token.
        async with sessionmaker() as session, session.begin():
            await session.execute(update(ExactConnection).where(ExactConnection.id == connection_id)
                                  .values(access_expires_at=datetime.now(UTC)))
        sandbox.expire_access_tokens()
        sandbox.expire_refresh_tokens()
        ids = [await deliver(api, key, secret, order(source_order_id=f"R-{n}", order_number=f"RECON-{n}"))
               for n in range(2)]
        async with running_worker(settings, sandbox_client):
            parked = await wait_for_states(sessionmaker, ids)
            before = (await api.get("/api/v1/stats", headers=shop.viewer)).json()
            again = await connect(api, sandbox_client, connection_id, shop.admin)
            booked = await wait_for_states(sessionmaker, ids, states={"booked", "failed"})
        after = (await api.get("/api/v1/stats", headers=shop.viewer)).json()

    assert {row.state for row in parked.values()} == {"waiting"}
    assert before["connections_needing_consent"] == 1
    assert again.status_code == 200, again.text
    assert again.json()["reconnected"] is True and sorted(again.json()["requeued_orders"]) == sorted(ids)
    assert {row.state for row in booked.values()} == {"booked"}, [r.error_message for r in booked.values()]
    assert after["connections_needing_consent"] == 0
    assert {entry["YourRef"] for entry in sandbox.sales_entries(DEFAULT_DIVISION)} >= {"RECON-0", "RECON-1"}
