"""`koppel orders list|reprocess` and `koppel admin …` against a real database (SQLite, and
PostgreSQL when KOPPEL_TEST_DATABASE_URL is set). The CLI runs in a thread: it makes its own
engine and event loop from KOPPEL_DATABASE_URL, exactly as it does in a shell."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner, Result

from app import crypto
from app.cli import cli
from app.connections.models import ReferenceItem
from app.db.base import utcnow
from app.integrations.models import Integration
from app.orders import repository as orders
from app.orders.models import Order, OutboxJob
from app.settings import get_settings
from app.tenancy.auth import authenticate
from app.tenancy.models import Tenant
from tests.api_client import running_app
from tests.factories import DIVISION, NL_VAT_CODES, SECRET_KEY, make_shop, order, signed


@pytest.fixture
def cli_env(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("KOPPEL_DATABASE_URL", database_url)
    monkeypatch.setenv("KOPPEL_SECRET_KEY", SECRET_KEY)
    monkeypatch.delenv("KOPPEL_REDIS_URL", raising=False)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


async def koppel(*args: str) -> Result:
    return await asyncio.to_thread(CliRunner().invoke, cli, list(args))


def rows_of(output: str) -> list[list[str]]:
    """The body rows of a printed table, cut at the columns its dashed line marks."""
    lines = output.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("--"))
    starts = [m.start() for m in re.finditer(r"-+", lines[at])]
    ends = [*starts[1:], None]
    body = [line for line in lines[at + 1:] if "  " in line]  # the summary line below has no column gaps
    return [[line[a:b].strip() for a, b in zip(starts, ends, strict=True)] for line in body]


async def deliver(client, shop, **changes) -> int:  # type: ignore[no-untyped-def]
    body, headers = signed(shop.secret, order(**changes))
    response = await client.post(f"/webhooks/generic/{shop.key}", content=body, headers=headers)
    assert response.status_code in (200, 202), response.text
    return int(response.json()["order_id"])


async def test_orders_list_filters_by_state_text_and_integration(cli_env, database_url, sessionmaker) -> None:
    shop = await make_shop(sessionmaker)
    async with running_app(database_url) as client:
        queued = await deliver(client, shop, source_order_id="1", order_number="A-100",
                               customer={"email": "anna@example.com", "name": "Anna"})
        failed = await deliver(client, shop, source_order_id="2", order_number="A-200", total="1.00")
        open_ = await deliver(client, shop, source_order_id="3", order_number="A-300", status="pending")

    everything = await koppel("orders", "list")
    only_failed = await koppel("orders", "list", "--state", "failed")
    by_text = await koppel("orders", "list", "--q", "ANNA@")
    other_integration = await koppel("orders", "list", "--integration", str(shop.integration_id + 1000))
    limited = await koppel("orders", "list", "--limit", "1")
    bad_state = await koppel("orders", "list", "--state", "lost")

    assert everything.exit_code == 0, everything.output
    ids = [int(row[0]) for row in rows_of(everything.output)]
    assert ids == [open_, failed, queued]  # newest first
    assert "3 orders" in everything.output
    failed_rows = rows_of(only_failed.output)
    assert [int(row[0]) for row in failed_rows] == [failed]
    assert "A-200" in only_failed.output and "totals_mismatch" in only_failed.output
    assert [int(row[0]) for row in rows_of(by_text.output)] == [queued]
    assert "0 orders" in other_integration.output and rows_of(other_integration.output) == []
    assert [int(row[0]) for row in rows_of(limited.output)] == [open_]
    assert bad_state.exit_code != 0 and "lost" in bad_state.output


async def _load_vat_codes(sessionmaker, connection_id: int) -> None:  # type: ignore[no-untyped-def]
    async with sessionmaker() as session, session.begin():
        for code, description, percentage, vat_type in NL_VAT_CODES:
            session.add(ReferenceItem(connection_id=connection_id, division=DIVISION, kind="vat_code", code=code,
                                      exact_id=str(uuid.uuid4()), description=description,
                                      data={"percentage": percentage, "type": vat_type}, refreshed_at=utcnow()))


async def test_reprocess_by_id_queues_fixed_orders_and_skips_the_rest(cli_env, database_url, sessionmaker) -> None:
    shop = await make_shop(sessionmaker, with_vat_codes=False)
    async with running_app(database_url) as client:
        stuck = await deliver(client, shop, source_order_id="1", order_number="B-1")
        still_wrong = await deliver(client, shop, source_order_id="2", order_number="B-2", total="9.99")
    async with sessionmaker() as session:
        assert (await orders.get_order(session, stuck)).error_code == "vat_codes_not_loaded"  # type: ignore[union-attr]
    await _load_vat_codes(sessionmaker, shop.connection_id)  # what "refresh reference data" does

    result = await koppel("orders", "reprocess", str(stuck), str(still_wrong), "999999")
    again = await koppel("orders", "reprocess", str(stuck))

    assert result.exit_code == 0, result.output
    rows = {int(row[0]): row for row in rows_of(result.output)}
    assert rows[stuck][1:3] == ["failed", "queued"]
    assert rows[still_wrong][1:3] == ["failed", "failed"] and "≠" in rows[still_wrong][3]
    assert rows[999999][1:] == ["", "skipped", "no such order"]
    assert "2 reprocessed (1 queued" in result.output and "1 skipped" in result.output
    again_rows = rows_of(again.output)
    assert again_rows[0][:3] == [str(stuck), "queued", "skipped"] and "only failed" in again_rows[0][3]
    async with sessionmaker() as session:
        order_row = await orders.get_order(session, stuck)
        assert order_row is not None and order_row.state == "queued"
        timeline = [(e.kind, e.message) for e in await orders.events(session, stuck)]
        assert ("reprocess", "reprocess requested by cli") in timeline
        jobs = (await session.execute(select(OutboxJob.job_id).where(OutboxJob.order_id == stuck))).scalars().all()
        assert jobs == [orders.book_job_id(stuck, order_row.revision)]  # a running relay enqueues it


async def test_reprocess_by_state_keeps_to_the_integration(cli_env, database_url, sessionmaker) -> None:
    mine = await make_shop(sessionmaker, name="Mine", with_vat_codes=False)
    theirs = await make_shop(sessionmaker, name="Theirs", with_vat_codes=False)
    async with running_app(database_url) as client:
        my_orders = [await deliver(client, mine, source_order_id=str(n), order_number=f"M-{n}") for n in range(3)]
        their_order = await deliver(client, theirs, source_order_id="1", order_number="T-1")
    await _load_vat_codes(sessionmaker, mine.connection_id)
    await _load_vat_codes(sessionmaker, theirs.connection_id)

    result = await koppel("orders", "reprocess", "--state", "failed", "--integration", str(mine.integration_id))
    both = await koppel("orders", "reprocess", "1", "--state", "failed")
    neither = await koppel("orders", "reprocess")
    booked_state = await koppel("orders", "reprocess", "--state", "booked")
    ids_and_integration = await koppel("orders", "reprocess", "1", "--integration", str(mine.integration_id))

    assert result.exit_code == 0, result.output
    assert sorted(int(row[0]) for row in rows_of(result.output)) == sorted(my_orders)
    async with sessionmaker() as session:
        states = dict((await session.execute(select(Order.id, Order.state))).all())
    assert all(states[o] == "queued" for o in my_orders) and states[their_order] == "failed"
    for wrong in (both, neither, booked_state, ids_and_integration):
        assert wrong.exit_code == 2, wrong.output


async def test_admin_commands_create_what_they_print(cli_env, database_url, sessionmaker) -> None:
    tenant = await koppel("admin", "create-tenant", "Voorbeeld Handel B.V.")
    assert tenant.exit_code == 0, tenant.output
    tenant_id = json.loads(tenant.output)["tenant_id"]
    integration = await koppel("admin", "create-integration", "Webshop", "--tenant", str(tenant_id),
                               "--source", "generic", "--division", str(DIVISION),
                               "--settings", json.dumps({"processable_statuses": ["paid", "completed"]}))
    key = await koppel("admin", "create-key", "--tenant", str(tenant_id), "--scope", "operator")
    unknown_source = await koppel("admin", "create-integration", "X", "--tenant", str(tenant_id), "--source", "nope")
    bad_scope = await koppel("admin", "create-key", "--scope", "root")

    made = json.loads(integration.output)
    api_key = json.loads(key.output)["api_key"]
    async with sessionmaker() as session:
        assert (await session.get(Tenant, tenant_id)).name == "Voorbeeld Handel B.V."  # type: ignore[union-attr]
        row = await session.get(Integration, made["integration_id"])
        assert row is not None and made["webhook_path"] == f"/webhooks/generic/{row.key}"
        assert crypto.decrypt(SECRET_KEY, row.webhook_secret_enc) == made["webhook_secret"]
        assert row.division == DIVISION and row.settings["processable_statuses"] == ["paid", "completed"]
        principal = await authenticate(session, api_key)
        assert principal is not None and principal.scope == "operator" and principal.tenant_id == tenant_id
        assert (await session.execute(select(func.count()).select_from(Integration))).scalar_one() == 1
    assert unknown_source.exit_code != 0 and "nope" in unknown_source.output
    assert bad_scope.exit_code != 0
