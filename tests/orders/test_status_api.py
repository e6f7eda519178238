"""The status API: filters, cursor pages, one order with its timeline, counts, scopes, tenancy."""

from __future__ import annotations

from tests.api_client import running_app
from tests.factories import make_shop, order, signed


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def deliver(client, shop, **changes):  # type: ignore[no-untyped-def]
    body, headers = signed(shop.secret, order(**changes))
    response = await client.post(f"/webhooks/generic/{shop.key}", content=body, headers=headers)
    assert response.status_code in (200, 202), response.text
    return response.json()["order_id"]


async def test_orders_list_filters_and_pages(database_url, sessionmaker) -> None:
    shop = await make_shop(sessionmaker)
    async with running_app(database_url) as client:
        ids = [await deliver(client, shop, source_order_id=str(n), order_number=f"10{n:02d}",
                             customer={"email": f"buyer{n}@example.com"}) for n in range(7)]
        failed = await deliver(client, shop, source_order_id="99", order_number="1099", total="1.00")
        open_ = await deliver(client, shop, source_order_id="98", order_number="1098", status="pending")

        first = (await client.get("/api/v1/orders?limit=4", headers=auth(shop.viewer_key))).json()
        second = (await client.get(f"/api/v1/orders?limit=4&cursor={first['next_cursor']}",
                                   headers=auth(shop.viewer_key))).json()
        third = (await client.get(f"/api/v1/orders?limit=4&cursor={second['next_cursor']}",
                                  headers=auth(shop.viewer_key))).json()
        by_state = (await client.get("/api/v1/orders?state=failed&state=open", headers=auth(shop.viewer_key))).json()
        by_text = (await client.get("/api/v1/orders?q=BUYER3@", headers=auth(shop.viewer_key))).json()
        by_integration = (await client.get(f"/api/v1/orders?integration_id={shop.integration_id + 1000}",
                                           headers=auth(shop.viewer_key))).json()
        future = (await client.get("/api/v1/orders?since=2100-01-01T00:00:00Z", headers=auth(shop.viewer_key))).json()
        bad_state = await client.get("/api/v1/orders?state=lost", headers=auth(shop.viewer_key))
        bad_cursor = await client.get("/api/v1/orders?cursor=zzz", headers=auth(shop.viewer_key))

    paged = [o["id"] for page in (first, second, third) for o in page["orders"]]
    assert paged == sorted([*ids, failed, open_], reverse=True)  # newest first, no gaps, no repeats
    assert third["next_cursor"] is None
    assert sorted(o["id"] for o in by_state["orders"]) == sorted([failed, open_])
    assert [o["id"] for o in by_text["orders"]] == [ids[3]]
    assert by_integration["orders"] == [] and future["orders"] == []
    assert bad_state.status_code == 422 and "lost" in bad_state.json()["detail"]
    assert bad_cursor.status_code == 400


async def test_one_order_shows_canonical_checks_timeline_and_money_as_text(database_url, sessionmaker) -> None:
    shop = await make_shop(sessionmaker)
    async with running_app(database_url) as client:
        order_id = await deliver(client, shop)
        body = (await client.get(f"/api/v1/orders/{order_id}", headers=auth(shop.viewer_key))).json()
    assert body["state"] == "queued"
    assert body["total"] == "52.05"
    assert body["canonical"]["lines"][0]["unit_price"] == "12.10"
    assert {check["check"] for check in body["checks"]} >= {"totals", "vat_mapping"}
    assert [event["kind"] for event in body["timeline"]] == ["received", "queued"]
    assert body["exact_document_id"] is None and body["revision"] == 1


async def test_stats_count_per_state_and_integration(database_url, sessionmaker) -> None:
    shop = await make_shop(sessionmaker)
    async with running_app(database_url) as client:
        await deliver(client, shop, source_order_id="1")
        await deliver(client, shop, source_order_id="2", order_number="2", total="3.00")
        await deliver(client, shop, source_order_id="3", order_number="3", status="pending")
        stats = (await client.get("/api/v1/stats", headers=auth(shop.viewer_key))).json()
    assert stats["counts"]["queued"] == 1 and stats["counts"]["failed"] == 1 and stats["counts"]["open"] == 1
    assert stats["integrations"] == [{"integration_id": shop.integration_id,
                                      "counts": stats["counts"]}]


async def test_api_keys_are_required_and_tenants_are_isolated(database_url, sessionmaker) -> None:
    mine = await make_shop(sessionmaker, name="Mine")
    theirs = await make_shop(sessionmaker, name="Theirs")
    async with running_app(database_url) as client:
        my_order = await deliver(client, mine)
        their_order = await deliver(client, theirs)
        no_key = await client.get("/api/v1/orders")
        bad_key = await client.get("/api/v1/orders", headers=auth("kpl_not-a-key"))
        own = await client.get(f"/api/v1/orders/{my_order}", headers=auth(mine.viewer_key))
        other = await client.get(f"/api/v1/orders/{their_order}", headers=auth(mine.viewer_key))
        missing = await client.get("/api/v1/orders/999999", headers=auth(mine.viewer_key))
        listed = (await client.get("/api/v1/orders", headers=auth(mine.api_key))).json()
        stats = (await client.get("/api/v1/stats", headers=auth(mine.viewer_key))).json()
    assert no_key.status_code == 401 and bad_key.status_code == 401
    assert own.status_code == 200
    assert other.status_code == 404 and other.json() == missing.json() | {"detail": f"order {their_order} not found"}
    assert [o["id"] for o in listed["orders"]] == [my_order]
    assert [i["integration_id"] for i in stats["integrations"]] == [mine.integration_id]


async def test_openapi_docs_health_and_readiness(database_url, sessionmaker) -> None:
    async with running_app(database_url) as client:
        docs = await client.get("/docs")
        spec = (await client.get("/openapi.json")).json()
        health = await client.get("/healthz")
        ready = await client.get("/readyz")
        metrics = await client.get("/metrics")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    assert "/webhooks/{source}/{integration_key}" in spec["paths"] and "/api/v1/orders" in spec["paths"]
    assert health.json() == {"status": "ok"}
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    assert "koppel_deliveries_total" in metrics.text and "koppel_orders{state=\"queued\"}" in metrics.text
