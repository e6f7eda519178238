"""The reconcile cron job: every shop with credentials, one failing shop stopping no other."""

from __future__ import annotations

from datetime import timedelta

import httpx
import respx
from sqlalchemy import select, update

from app.db.base import utcnow
from app.orders.models import Order
from app.reconcile.models import ShopApiCredentials
from app.reconcile.service import integrations_to_reconcile
from app.settings import Settings
from tests.factories import SECRET_KEY, make_shop
from tests.reconcile.support import (
    SHOPIFY_ORDERS,
    WOO_ORDERS,
    FakeShopApi,
    company_order,
    count,
    reconcile,
    shop_with_api,
)
from workers.reconcile import reconcile_shops


class Poked:
    def __init__(self) -> None:
        self.pokes = 0

    def poke(self) -> None:
        self.pokes += 1


async def test_the_job_reconciles_every_shop_and_a_failing_one_stops_no_other(database_url, sessionmaker) -> None:
    shopify = await shop_with_api(sessionmaker, "shopify")
    woo = await shop_with_api(sessionmaker, "woocommerce")
    await make_shop(sessionmaker, source="lightspeed", name="Till")  # no credentials: never listed
    refusing = FakeShopApi("shopify", [company_order("shopify")], fail_on_page=1, fail_status=401)
    serving = FakeShopApi("woocommerce", [company_order("woocommerce")])
    relay = Poked()
    async with httpx.AsyncClient() as http:
        with respx.mock(assert_all_called=True) as router:
            router.get(url__startswith=SHOPIFY_ORDERS).mock(side_effect=refusing.handle)
            router.get(url__startswith=WOO_ORDERS).mock(side_effect=serving.handle)
            result = await reconcile_shops({"sessionmaker": sessionmaker, "shop_http": http, "relay": relay,
                                            "settings": Settings(secret_key=SECRET_KEY, database_url=database_url)})
    assert result == {"shops": 2, "failed": 1, "unfinished": 0, "taken_in": 1, "queued": 1}
    assert relay.pokes == 1
    assert await count(sessionmaker, Order, Order.integration_id == woo.integration_id) == 1
    assert await count(sessionmaker, Order, Order.integration_id == shopify.integration_id) == 0
    async with sessionmaker() as session:
        errors = dict((await session.execute(select(ShopApiCredentials.integration_id,
                                                    ShopApiCredentials.last_error))).all())
    assert "401" in errors[shopify.integration_id] and errors[woo.integration_id] is None


async def test_disabled_credentials_are_not_reconciled(database_url, sessionmaker) -> None:
    on = await shop_with_api(sessionmaker, "shopify")
    off = await shop_with_api(sessionmaker, "woocommerce", name="Other")
    async with sessionmaker() as session, session.begin():
        await session.execute(update(ShopApiCredentials).where(
            ShopApiCredentials.integration_id == off.integration_id).values(enabled=False))
    assert await integrations_to_reconcile(sessionmaker) == [on.integration_id]


async def test_the_shops_that_waited_longest_go_first(database_url, sessionmaker) -> None:
    shops = [await shop_with_api(sessionmaker, "shopify", name=f"Shop {k}") for k in range(3)]
    async with sessionmaker() as session, session.begin():
        for shop, minutes in ((shops[0], 5), (shops[1], 30)):  # shops[2] never ran
            await session.execute(update(ShopApiCredentials).where(
                ShopApiCredentials.integration_id == shop.integration_id).values(
                last_run_at=utcnow() - timedelta(minutes=minutes)))
    assert await integrations_to_reconcile(sessionmaker) == [shops[2].integration_id, shops[1].integration_id,
                                                             shops[0].integration_id]


async def test_a_next_page_on_another_host_is_not_followed(database_url, sessionmaker) -> None:
    shop = await shop_with_api(sessionmaker, "shopify")
    with respx.mock(assert_all_called=False) as router:
        router.get(url__startswith=SHOPIFY_ORDERS).mock(return_value=httpx.Response(
            200, json={"orders": [company_order("shopify")]},
            headers={"Link": '<https://attacker.example/orders.json?page_info=x>; rel="next"'}))
        stolen = router.get(url__startswith="https://attacker.example")
        run = await reconcile(sessionmaker, shop)
    assert not stolen.called
    assert run.error is not None and "another host (attacker.example)" in run.error
    assert run.counts["new"] == 0 and await count(sessionmaker, Order) == 0
    async with sessionmaker() as session:
        row = (await session.execute(select(ShopApiCredentials))).scalar_one()
    assert row.resume is None and row.last_error == run.error  # the foreign URL is never kept


async def test_a_spent_budget_leaves_the_other_shops_for_the_next_tick(database_url, sessionmaker) -> None:
    from app.reconcile.service import reconcile_all

    first = await shop_with_api(sessionmaker, "woocommerce", name="First")
    second = await shop_with_api(sessionmaker, "woocommerce", name="Second")
    serving = FakeShopApi("woocommerce", [])
    async with httpx.AsyncClient() as http:
        with respx.mock() as router:
            router.get(url__startswith=WOO_ORDERS).mock(side_effect=serving.handle)
            tick = await reconcile_all(sessionmaker, http, SECRET_KEY, budget_seconds=0)
            next_tick = await reconcile_all(sessionmaker, http, SECRET_KEY, budget_seconds=0)
    assert [run.integration_id for run in tick] == [first.integration_id]
    assert [run.integration_id for run in next_tick] == [second.integration_id]
    assert all(run.finished for run in tick + next_tick)
