"""Reference data per division: the refresh action (API, CLI, nightly job), the cached fields the
configuration screens need, and who may see them."""

from __future__ import annotations

import asyncio
import types

import httpx
import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from app.cli import cli
from app.connections import service
from app.connections.models import ReferenceItem
from app.connections.service import make_exact_client
from app.sandbox import create_sandbox_app
from app.sandbox.seed import DEFAULT_DIVISION, FOREIGN_DIVISION, SECOND_DIVISION
from app.settings import get_settings
from tests.booking.harness import SANDBOX_URL, e2e_settings
from tests.connections.support import connect, installation_admin, koppel_api, new_connection, tenant
from tests.factories import SECRET_KEY
from workers.refresh_reference import REFERENCE_JOBS, refresh_all_reference

SEEDED = {"vat_code": 13, "gl_account": 18, "journal": 6, "payment_condition": 4, "warehouse": 2,
          "cost_center": 3, "cost_unit": 3, "project": 2}


async def _connected(api, sessionmaker, sandbox_client):  # type: ignore[no-untyped-def]
    firm = await tenant(sessionmaker, "Kantoor")
    install = await installation_admin(sessionmaker)
    connection_id = await new_connection(api, install, firm.tenant_id)
    assert (await connect(api, sandbox_client, connection_id, firm.admin)).status_code == 200
    return firm, connection_id


async def test_refresh_loads_every_kind_with_the_fields_screens_need(database_url, sessionmaker, redis_client,
                                                                    redis_url, sandbox, sandbox_client) -> None:
    async with koppel_api(database_url, redis_url, sandbox_client) as api:
        firm, connection_id = await _connected(api, sessionmaker, sandbox_client)
        base = f"/api/v1/divisions/{DEFAULT_DIVISION}/reference"
        empty = await api.get(f"{base}/vat_codes", headers=firm.viewer)
        refreshed = await api.post(f"{base}/refresh?connection_id={connection_id}", headers=firm.operator)
        vat = (await api.get(f"{base}/vat-codes", headers=firm.viewer)).json()
        vat_all = (await api.get(f"{base}/vat_code?include_blocked=true", headers=firm.viewer)).json()
        revenue = (await api.get(f"{base}/gl_accounts?revenue_only=true", headers=firm.viewer)).json()
        every_gl = (await api.get(f"{base}/gl_accounts", headers=firm.viewer)).json()
        sales = (await api.get(f"{base}/journals?type=sales", headers=firm.viewer)).json()
        journals = (await api.get(f"{base}/journals", headers=firm.viewer)).json()
        centres = (await api.get(f"{base}/cost-centres", headers=firm.viewer)).json()
        others = {kind: (await api.get(f"{base}/{kind}", headers=firm.viewer)).json()
                  for kind in ("warehouses", "cost_units", "projects", "payment_conditions")}
        unknown = await api.get(f"{base}/items", headers=firm.viewer)
    assert empty.status_code == 200 and empty.json()["loaded"] is False and empty.json()["items"] == []
    assert refreshed.status_code == 200, refreshed.text
    assert refreshed.json()["counts"] == SEEDED

    codes = {item["code"]: item for item in vat["items"]}
    assert codes["1"]["percentage"] == "21" and codes["1"]["vat_type"] == "excl"  # percent, not 0.21
    assert codes["3"]["vat_type"] == "incl" and codes["2"]["percentage"] == "9"
    assert codes["5"]["icp"] is True and codes["5"]["eu_listing"] == "goods" and codes["1"]["icp"] is False
    assert codes["B21"]["oss_country"] == "BE" and codes["D19"]["percentage"] == "19"
    assert codes["7"]["sales"] is False  # a purchase code
    assert "9" not in codes and "9" in {item["code"] for item in vat_all["items"]}  # blocked: hidden by default
    assert vat["refreshed_at"] is not None and vat["loaded"] is True

    revenue_codes = [item["code"] for item in revenue["items"]]
    assert revenue_codes == ["8000", "8010", "8020", "8030", "8040", "8100", "8110", "8200", "8500", "8990"]
    assert {"1000", "1300", "1500", "4000", "7000"} <= {item["code"] for item in every_gl["items"]}
    assert [item["code"] for item in sales["items"]] == ["70", "71"]
    assert {item["code"]: item["type_name"] for item in journals["items"]} == {
        "10": "cash", "20": "bank", "60": "purchase", "70": "sales", "71": "sales", "90": "general"}
    assert [item["code"] for item in centres["items"]] == ["100", "200"]  # 900 is inactive
    assert [i["code"] for i in others["warehouses"]["items"]] == ["1", "2"]
    assert [i["code"] for i in others["cost_units"]["items"]] == ["B2B", "POS", "WEB"]
    assert [i["code"] for i in others["projects"]["items"]] == ["P2024-001", "P2024-002"]
    assert {i["code"]: i["payment_days"] for i in others["payment_conditions"]["items"]}["30"] == 30
    assert unknown.status_code == 404 and "vat_code" in unknown.json()["detail"]


async def test_refresh_needs_operator_and_the_right_tenant_and_division(database_url, sessionmaker, redis_client,
                                                                       redis_url, sandbox, sandbox_client) -> None:
    stranger = await tenant(sessionmaker, "Vreemde")
    async with koppel_api(database_url, redis_url, sandbox_client) as api:
        firm, connection_id = await _connected(api, sessionmaker, sandbox_client)
        base = f"/api/v1/divisions/{DEFAULT_DIVISION}/reference"
        as_viewer = await api.post(f"{base}/refresh", headers=firm.viewer)
        foreign = await api.post(f"{base}/refresh?connection_id={connection_id}", headers=stranger.operator)
        foreign_read = await api.get(f"{base}/vat_codes?connection_id={connection_id}", headers=stranger.viewer)
        not_ours = await api.post(f"/api/v1/divisions/{FOREIGN_DIVISION}/reference/refresh", headers=firm.operator)
        wrong_division = await api.post(
            f"/api/v1/divisions/{FOREIGN_DIVISION}/reference/refresh?connection_id={connection_id}",
            headers=firm.operator)
        sandbox.set_limits(minutely=3)
        limited = await api.post(f"/api/v1/divisions/{SECOND_DIVISION}/reference/refresh", headers=firm.operator)
    assert as_viewer.status_code == 403
    assert foreign.status_code == 404 and foreign_read.status_code == 404
    assert not_ours.status_code == 404 and wrong_division.status_code == 404
    assert "not one of connection" in wrong_division.json()["detail"]
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1


async def test_nightly_job_refreshes_divisions_in_use(database_url, sessionmaker, redis_client, redis_url, sandbox,
                                                      sandbox_client) -> None:
    settings = e2e_settings(database_url, redis_url)
    async with koppel_api(database_url, redis_url, sandbox_client) as api:
        firm, connection_id = await _connected(api, sessionmaker, sandbox_client)
        created = await api.post("/api/v1/integrations", headers=firm.admin, json={
            "name": "Retail", "source": "generic", "connection_id": connection_id, "division": SECOND_DIVISION})
        assert created.status_code == 201, created.text
    enqueued: list[tuple] = []

    class Queue:
        async def enqueue_job(self, name, *args, _job_id=None):  # type: ignore[no-untyped-def]
            enqueued.append((name, *args, _job_id))
            return object()

    exact = make_exact_client(sandbox_client, redis_client, sessionmaker, settings)
    ctx = {"sessionmaker": sessionmaker, "settings": settings, "exact": exact, "redis": Queue()}
    result = await refresh_all_reference(ctx)
    assert result == {"divisions": 1, "reference": 1}
    [(divisions_job, conn_a, divisions_id), (reference_job, conn_b, division, reference_id)] = enqueued
    assert (divisions_job, conn_a) == ("refresh_divisions", connection_id)
    assert (reference_job, conn_b, division) == ("refresh_reference", connection_id, SECOND_DIVISION)
    assert reference_id.startswith(f"reference:{connection_id}:{SECOND_DIVISION}:")
    assert divisions_id.startswith(f"divisions:{connection_id}:")
    # What the enqueued jobs then do, each within one job timeout:
    assert await REFERENCE_JOBS["refresh_reference"](ctx, connection_id, SECOND_DIVISION) == SEEDED
    assert await REFERENCE_JOBS["refresh_divisions"](ctx, connection_id) == [DEFAULT_DIVISION, SECOND_DIVISION]
    assert (await REFERENCE_JOBS["refresh_reference"](ctx, 999999, SECOND_DIVISION)).startswith("skipped")


@pytest.fixture
def cli_env(database_url: str, redis_url: str, monkeypatch: pytest.MonkeyPatch,  # type: ignore[no-untyped-def]
            sandbox):
    monkeypatch.setenv("KOPPEL_DATABASE_URL", database_url)
    monkeypatch.setenv("KOPPEL_SECRET_KEY", SECRET_KEY)
    monkeypatch.setenv("KOPPEL_REDIS_URL", redis_url)
    real = httpx.AsyncClient

    def to_sandbox(**options):  # type: ignore[no-untyped-def]
        # The CLI's own HTTP client, pointed at the in-process sandbox instead of the network.
        return real(transport=httpx.ASGITransport(app=create_sandbox_app(sandbox)), base_url=SANDBOX_URL, **options)

    monkeypatch.setattr(service, "httpx", types.SimpleNamespace(AsyncClient=to_sandbox))
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


async def test_cli_refreshes_one_division(cli_env, database_url, sessionmaker, redis_client, redis_url, sandbox,
                                          sandbox_client, monkeypatch) -> None:
    async with koppel_api(database_url, redis_url, sandbox_client) as api:
        _, connection_id = await _connected(api, sessionmaker, sandbox_client)
    runner = CliRunner()
    done = await asyncio.to_thread(runner.invoke, cli, ["reference", "refresh", "--connection", str(connection_id),
                                                        "--division", str(SECOND_DIVISION)])
    unknown = await asyncio.to_thread(runner.invoke, cli, ["reference", "refresh", "--connection", "999999",
                                                           "--division", str(SECOND_DIVISION)])
    monkeypatch.delenv("KOPPEL_REDIS_URL")
    get_settings.cache_clear()
    no_redis = await asyncio.to_thread(runner.invoke, cli, ["reference", "refresh", "--connection",
                                                            str(connection_id), "--division", str(SECOND_DIVISION)])
    assert done.exit_code == 0, done.output
    assert '"warehouse": 2' in done.output and '"vat_code": 13' in done.output
    async with sessionmaker() as session:
        cached = (await session.execute(select(func.count()).select_from(ReferenceItem).where(
            ReferenceItem.division == SECOND_DIVISION))).scalar_one()
    assert cached == sum(SEEDED.values())
    assert unknown.exit_code == 1 and "not found" in unknown.output
    assert no_redis.exit_code == 1 and "KOPPEL_REDIS_URL" in no_redis.output
