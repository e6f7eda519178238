"""The integration settings API: create (webhook URL and secret once), validation against the
division's reference data (a 422 naming what the division lacks), VAT defaults, the audit log,
and pausing (nothing lost) and enabling (parked orders re-evaluated)."""

from __future__ import annotations

from sqlalchemy import select

from app.integrations.models import Integration, IntegrationAudit
from app.orders.models import Order, OutboxJob
from app.sandbox.seed import DEFAULT_DIVISION, FOREIGN_DIVISION
from tests.connections.support import connect, installation_admin, koppel_api, new_connection, tenant
from tests.factories import order, signed


async def _setup(api, sessionmaker, sandbox_client):  # type: ignore[no-untyped-def]
    shop = await tenant(sessionmaker, "Winkel")
    install = await installation_admin(sessionmaker)
    connection_id = await new_connection(api, install, shop.tenant_id)
    assert (await connect(api, sandbox_client, connection_id, shop.admin)).status_code == 200
    return shop, connection_id


async def _create(api, shop, connection_id, **body):  # type: ignore[no-untyped-def]
    payload = {"name": "Webshop", "source": "generic", "connection_id": connection_id, "division": DEFAULT_DIVISION,
               **body}
    return await api.post("/api/v1/integrations", headers=shop.admin, json=payload)


async def deliver(api, created: dict, **changes) -> tuple[int, str]:  # type: ignore[no-untyped-def]
    body, headers = signed(created["webhook_secret"], order(**changes))
    response = await api.post(created["webhook_path"], content=body, headers=headers)
    assert response.status_code in (200, 202), response.text
    return int(response.json()["order_id"]), response.json()["state"]


async def test_create_answers_the_webhook_url_and_secret_once_with_eu_vat_defaults(
        database_url, sessionmaker, redis_client, redis_url, sandbox, sandbox_client) -> None:
    async with koppel_api(database_url, redis_url, sandbox_client) as api:
        shop, connection_id = await _setup(api, sessionmaker, sandbox_client)
        created = await _create(api, shop, connection_id)
        body = created.json()
        shown = await api.get(f"/api/v1/integrations/{body['id']}", headers=shop.viewer)
        listed = await api.get("/api/v1/integrations", headers=shop.viewer)
        order_id, state = await deliver(api, body)
        proposal = await api.get(f"/api/v1/divisions/{DEFAULT_DIVISION}/vat-rules/proposal", headers=shop.viewer)
    assert created.status_code == 201, created.text
    assert body["webhook_url"] == f"http://koppel.test{body['webhook_path']}"
    assert body["webhook_path"].startswith("/webhooks/generic/") and body["webhook_secret"].startswith("whsec_")
    assert "webhook_secret" not in shown.json() and body["webhook_secret"] not in shown.text
    assert body["webhook_secret"] not in listed.text and len(listed.json()["integrations"]) == 1
    rules = {(r["destination"], r["rate"]): (r["vat_code"], r["revenue_gl"]) for r in body["settings"]["vat_rules"]}
    assert rules[("NL", "21")] == ("1", "8000") and rules[("NL", "9")] == ("2", "8010")
    assert rules[("NL", "0")] == ("0", None)
    assert rules[("BE", "21")][0] == "B21" and rules[("DE", "19")][0] == "D19" and rules[("FR", "20")][0] == "F20"
    assert rules[("ICP", "0")] == ("5", "8100") and rules[("EXPORT", "0")] == ("6", "8110")
    assert ("AT", "20") not in rules and any("AT at 20 %" in note for note in body["notes"])
    assert state == "queued" and order_id > 0  # the webhook works at once
    assert proposal.status_code == 200
    assert {(r["destination"], r["vat_code"]) for r in proposal.json()["vat_rules"]} == {
        (d, c) for (d, _), (c, _) in rules.items()}


async def test_settings_naming_what_the_division_lacks_are_a_422_naming_it(
        database_url, sessionmaker, redis_client, redis_url, sandbox, sandbox_client) -> None:
    async with koppel_api(database_url, redis_url, sandbox_client) as api:
        shop, connection_id = await _setup(api, sessionmaker, sandbox_client)
        created = (await _create(api, shop, connection_id)).json()
        url = f"/api/v1/integrations/{created['id']}"
        bad = await api.patch(url, headers=shop.operator, json={"settings": {
            "journal_code": "99",
            "payment_condition": "77",
            "revenue_gl": "1300",
            "rounding_gl": "1100",
            "warehouse": "9",
            "vat_rules": [
                {"destination": "NL", "rate": "21", "vat_code": "2"},
                {"destination": "NL", "rate": "9", "vat_code": "X9"},
                {"destination": "DE", "rate": "19", "vat_code": "B21"},
                {"destination": "ICP", "rate": "21", "vat_code": "5"},
                {"destination": "EXPORT", "rate": "0", "vat_code": "7", "revenue_gl": "4000"},
            ],
            "fixed_debtors": {"icp": "1", "cash": "424242"},
        }})
        purchase = await api.patch(url, headers=shop.operator, json={"settings": {"journal_code": "60"}})
        shape = await api.patch(url, headers=shop.operator, json={"settings": {"target_document": "fax"}})
        created_bad = await _create(api, shop, connection_id, name="Kapot", settings={"journal_code": "99"})
        wrong_division = await _create(api, shop, connection_id, division=FOREIGN_DIVISION)
        good = await api.patch(url, headers=shop.operator, json={"settings": {
            "journal_code": "71", "fixed_debtors": {"cash": "1"}, "payment_condition": "14", "warehouse": "2"}})
    assert bad.status_code == 422
    reasons: dict[str, str] = {}
    for error in bad.json()["errors"]:  # a field may have several problems
        reasons[error["field"]] = " | ".join(filter(None, [reasons.get(error["field"]), error["reason"]]))
    detail = bad.json()["detail"]
    assert "journal 99 does not exist in division 1234567" in detail
    assert reasons["settings.payment_condition"] == "payment condition 77 does not exist in division 1234567"
    assert "not a profit-and-loss revenue account" in reasons["settings.revenue_gl"]
    assert "balance sheet" in reasons["settings.rounding_gl"]
    assert reasons["settings.warehouse"] == "warehouse 9 does not exist in division 1234567"
    assert "is 9 %, but the row is for 21 %" in reasons["settings.vat_rules[0].vat_code"]
    assert reasons["settings.vat_rules[1].vat_code"] == "VAT code X9 does not exist in division 1234567"
    assert "OSS code for BE, not for DE" in reasons["settings.vat_rules[2].vat_code"]
    assert "must be 0 %" in reasons["settings.vat_rules[3].rate"]
    assert "purchase VAT code" in reasons["settings.vat_rules[4].vat_code"]
    assert "not a profit-and-loss revenue account" in reasons["settings.vat_rules[4].revenue_gl"]
    assert "cannot apply to ICP" in reasons["settings.fixed_debtors.icp"]
    assert reasons["settings.fixed_debtors.cash"] == "fixed debtor 424242 does not exist in division 1234567"
    assert purchase.status_code == 422 and "purchase journal, not a sales journal" in purchase.json()["detail"]
    assert shape.status_code == 422 and shape.json()["errors"][0]["field"] == "settings.target_document"
    assert created_bad.status_code == 422 and "journal 99" in created_bad.json()["detail"]
    assert wrong_division.status_code == 422 and "division 3333333 is not one of" in wrong_division.json()["detail"]
    assert good.status_code == 200, good.text
    assert good.json()["settings"]["journal_code"] == "71" and good.json()["settings"]["fixed_debtors"] == {"cash": "1"}
    async with sessionmaker() as session:
        names = (await session.execute(select(Integration.name))).scalars().all()
        audit_actions = (await session.execute(select(IntegrationAudit.action).order_by(IntegrationAudit.id))
                         ).scalars().all()
    assert names == ["Webshop"]  # the refused create left nothing behind
    assert audit_actions == ["created", "updated"]  # refused changes are not changes


async def test_every_change_is_in_the_audit_log(database_url, sessionmaker, redis_client, redis_url, sandbox,
                                                sandbox_client) -> None:
    async with koppel_api(database_url, redis_url, sandbox_client) as api:
        shop, connection_id = await _setup(api, sessionmaker, sandbox_client)
        created = (await _create(api, shop, connection_id)).json()
        url = f"/api/v1/integrations/{created['id']}"
        await api.patch(url, headers=shop.operator, json={"settings": {"journal_code": "71"}, "name": "Webwinkel"})
        same = await api.patch(url, headers=shop.operator, json={"settings": {"journal_code": "71"}})
        await api.post(f"{url}/pause", headers=shop.operator)
        await api.post(f"{url}/pause", headers=shop.operator)  # already paused: no change
        await api.post(f"{url}/enable", headers=shop.operator)
        log = (await api.get(f"{url}/audit", headers=shop.viewer)).json()["entries"]
        as_viewer = await api.patch(url, headers=shop.viewer, json={"name": "x"})
    assert same.status_code == 200
    assert [e["action"] for e in log] == ["enabled", "paused", "updated", "created"]  # newest first
    created_entry, updated = log[3], log[2]
    assert created_entry["before"] is None and created_entry["after"]["settings"]["journal_code"] == "70"
    assert created_entry["actor"] == f"API key {created_entry['api_key_id']} (admin of Winkel)"
    assert updated["actor"].endswith("(operator of Winkel)")
    assert updated["changed"] == ["name", "settings.journal_code"]
    assert updated["before"]["settings"]["journal_code"] == "70"
    assert updated["after"]["settings"]["journal_code"] == "71"
    assert updated["before"]["name"] == "Webshop" and updated["after"]["name"] == "Webwinkel"
    assert log[1]["changed"] == ["enabled"] and log[1]["after"]["enabled"] is False
    assert all(e["at"] for e in log)
    assert as_viewer.status_code == 403


async def test_paused_integration_keeps_every_order_and_enabling_queues_them(
        database_url, sessionmaker, redis_client, redis_url, sandbox, sandbox_client) -> None:
    async with koppel_api(database_url, redis_url, sandbox_client) as api:
        shop, connection_id = await _setup(api, sessionmaker, sandbox_client)
        created = (await _create(api, shop, connection_id)).json()
        url = f"/api/v1/integrations/{created['id']}"
        queued_id, queued_state = await deliver(api, created, source_order_id="P-1", order_number="P-1")
        paused = await api.post(f"{url}/pause", headers=shop.operator)
        during_id, during_state = await deliver(api, created, source_order_id="P-2", order_number="P-2")
        failing_id, failing_state = await deliver(api, created, source_order_id="P-3", order_number="P-3",
                                                  total="1.00")
        shown = (await api.get(url, headers=shop.viewer)).json()
        detail = (await api.get(f"/api/v1/orders/{during_id}", headers=shop.viewer)).json()
        enabled = await api.post(f"{url}/enable", headers=shop.operator)
    assert queued_state == "queued" and paused.status_code == 200
    assert paused.json()["orders_parked"] == [queued_id] and shown["enabled"] is False
    assert during_state == "waiting" and detail["error_code"] == "integration_paused"
    assert "paused" in detail["error_message"]
    assert failing_state == "failed"  # the checks still run while paused: problems show at once
    assert enabled.json()["orders_reevaluated"] == {"queued": 2}
    async with sessionmaker() as session:
        states = dict((await session.execute(select(Order.id, Order.state))).all())
        jobs = (await session.execute(select(OutboxJob.order_id, OutboxJob.job_id))).all()
    assert states == {queued_id: "queued", during_id: "queued", failing_id: "failed"}
    # A fresh job (new revision) for each re-queued order; the parked one's old job is a no-op.
    assert sorted(order_id for order_id, _ in jobs) == sorted([queued_id, queued_id, during_id])
    assert len({job_id for _, job_id in jobs}) == 3


async def test_a_shop_issued_webhook_secret_is_set_on_create_and_replaced_by_patch(
        database_url, sessionmaker, redis_client, redis_url, sandbox, sandbox_client) -> None:
    from app.sources.shopify import sign as shopify_sign

    payload = b'{"id": 450789469, "name": "#1001"}'
    async with koppel_api(database_url, redis_url, sandbox_client) as api:
        shop, connection_id = await _setup(api, sessionmaker, sandbox_client)
        created = (await _create(api, shop, connection_id, source="shopify",
                                 webhook_secret="shpss_issued_by_shopify_1")).json()
        path = created["webhook_path"]

        async def post(secret: str) -> int:
            headers = {"X-Shopify-Hmac-Sha256": shopify_sign(secret, payload), "X-Shopify-Event-Id": secret}
            return (await api.post(path, content=payload, headers=headers)).status_code

        first = await post("shpss_issued_by_shopify_1")
        patched = await api.patch(f"/api/v1/integrations/{created['id']}", headers=shop.admin,
                                  json={"webhook_secret": "shpss_rotated_secret_2"})
        old, new = await post("shpss_issued_by_shopify_1"), await post("shpss_rotated_secret_2")
        audit = (await api.get(f"/api/v1/integrations/{created['id']}/audit", headers=shop.viewer)).json()
    assert created["webhook_secret"] == "shpss_issued_by_shopify_1"  # shown once, as given
    assert first == 422  # authentic, but not an order: stored as rejected
    assert patched.status_code == 200 and "shpss_rotated_secret_2" not in patched.text
    assert (old, new) == (401, 422)  # only the new key is accepted now
    entries = audit["entries"] if isinstance(audit, dict) else audit
    replaced = [e for e in entries if e["action"] == "webhook_secret_replaced"]
    assert len(replaced) == 1 and "shpss" not in str(replaced)
