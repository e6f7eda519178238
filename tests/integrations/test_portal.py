"""The accountant portal: one connection, many divisions, each with its own integrations and
settings, booked separately; and tenants kept apart (two firms, a firm and its client)."""

from __future__ import annotations

from decimal import Decimal

from app.sandbox.seed import DEFAULT_DIVISION, FOREIGN_DIVISION, OTHER_USER_EMAIL, SECOND_DIVISION
from tests.booking.harness import e2e_settings, running_worker, wait_for_states
from tests.connections.support import connect, installation_admin, koppel_api, new_connection, tenant
from tests.factories import order, signed

RETAIL_RULES = [
    {"destination": "NL", "rate": "21", "vat_code": "1", "revenue_gl": "8200"},
    {"destination": "NL", "rate": "9", "vat_code": "2", "revenue_gl": "8200"},
    {"destination": "NL", "rate": "0", "vat_code": "0"},
    {"destination": "ICP", "rate": "0", "vat_code": "5", "revenue_gl": "8100"},
    {"destination": "EXPORT", "rate": "0", "vat_code": "6", "revenue_gl": "8110"},
]


async def deliver(api, created: dict, **changes) -> int:  # type: ignore[no-untyped-def]
    body, headers = signed(created["webhook_secret"], order(**changes))
    response = await api.post(created["webhook_path"], content=body, headers=headers)
    assert response.status_code == 202, response.text
    return int(response.json()["order_id"])


async def test_two_divisions_under_one_connection_book_separately_with_their_own_settings(
        database_url, sessionmaker, redis_client, redis_url, sandbox, sandbox_client) -> None:
    settings = e2e_settings(database_url, redis_url)
    firm = await tenant(sessionmaker, "Kantoor")
    install = await installation_admin(sessionmaker)
    async with koppel_api(database_url, redis_url, sandbox_client) as api:
        connection_id = await new_connection(api, install, firm.tenant_id)
        assert (await connect(api, sandbox_client, connection_id, firm.admin)).status_code == 200
        handel = await api.post("/api/v1/integrations", headers=firm.admin, json={
            "name": "Handel webshop", "source": "generic", "connection_id": connection_id,
            "division": DEFAULT_DIVISION, "settings": {"journal_code": "70"}})
        retail = await api.post("/api/v1/integrations", headers=firm.admin, json={
            "name": "Retail webshop", "source": "generic", "connection_id": connection_id,
            "division": SECOND_DIVISION,
            "settings": {"journal_code": "71", "revenue_gl": "8200", "vat_rules": RETAIL_RULES}})
        assert handel.status_code == 201 and retail.status_code == 201, (handel.text, retail.text)
        portal = (await api.get(f"/api/v1/connections/{connection_id}/divisions", headers=firm.viewer)).json()
        first = await deliver(api, handel.json(), source_order_id="H-1", order_number="HANDEL-1")
        second = await deliver(api, retail.json(), source_order_id="R-1", order_number="RETAIL-1")
        async with running_worker(settings, sandbox_client):
            done = await wait_for_states(sessionmaker, [first, second])
    assert {row.state for row in done.values()} == {"booked"}, [r.error_message for r in done.values()]
    on_division = {d["division"]: [i["name"] for i in d["integrations"]] for d in portal["divisions"]}
    assert on_division == {DEFAULT_DIVISION: ["Handel webshop"], SECOND_DIVISION: ["Retail webshop"]}

    [handel_entry] = sandbox.sales_entries(DEFAULT_DIVISION)
    [retail_entry] = sandbox.sales_entries(SECOND_DIVISION)
    assert handel_entry["YourRef"] == "HANDEL-1" and handel_entry["Journal"].strip() == "70"
    assert retail_entry["YourRef"] == "RETAIL-1" and retail_entry["Journal"].strip() == "71"
    handel_gls = {line["GLAccountCode"] for line in handel_entry["SalesEntryLines"]}
    retail_gls = {line["GLAccountCode"] for line in retail_entry["SalesEntryLines"]}
    assert "8200" not in handel_gls and "8000" in handel_gls
    assert retail_gls == {"8200"}
    assert Decimal(str(retail_entry["AmountDC"])) == Decimal(order()["total"])


async def test_firms_see_their_clients_merchants_only_themselves_strangers_nothing(
        database_url, sessionmaker, redis_client, redis_url, sandbox, sandbox_client) -> None:
    firm_one = await tenant(sessionmaker, "Kantoor Een")
    firm_two = await tenant(sessionmaker, "Kantoor Twee")
    client_one = await tenant(sessionmaker, "Bakkerij", parent_id=firm_one.tenant_id)
    install = await installation_admin(sessionmaker)
    async with koppel_api(database_url, redis_url, sandbox_client) as api:
        one = await new_connection(api, install, firm_one.tenant_id)
        assert (await connect(api, sandbox_client, one, firm_one.admin)).status_code == 200
        two = await new_connection(api, install, firm_two.tenant_id)
        assert (await connect(api, sandbox_client, two, firm_two.admin, sandbox_user=OTHER_USER_EMAIL)
                ).status_code == 200

        def body(name: str, connection_id: int, division: int, **more: object) -> dict:
            return {"name": name, "source": "generic", "connection_id": connection_id, "division": division, **more}

        bakery = await api.post("/api/v1/integrations", headers=firm_one.admin,
                                json=body("Bakkerij shop", one, DEFAULT_DIVISION, tenant_id=client_one.tenant_id))
        own = await api.post("/api/v1/integrations", headers=firm_one.admin,
                             json=body("Kantoor shop", one, SECOND_DIVISION))
        theirs = await api.post("/api/v1/integrations", headers=firm_two.admin,
                                json=body("Andere shop", two, FOREIGN_DIVISION))
        assert {bakery.status_code, own.status_code, theirs.status_code} == {201}, (bakery.text, own.text, theirs.text)
        bakery_id, own_id, theirs_id = bakery.json()["id"], own.json()["id"], theirs.json()["id"]

        def ids(response) -> set[int]:  # type: ignore[no-untyped-def]
            return {i["id"] for i in response.json()["integrations"]}

        seen_by = {name: ids(await api.get("/api/v1/integrations", headers=keys.viewer))
                   for name, keys in (("firm one", firm_one), ("client", client_one), ("firm two", firm_two))}
        # Another firm: everything of firm one is a 404, whatever it tries.
        probes = [
            await api.get(f"/api/v1/integrations/{bakery_id}", headers=firm_two.viewer),
            await api.patch(f"/api/v1/integrations/{bakery_id}", headers=firm_two.operator, json={"name": "x"}),
            await api.post(f"/api/v1/integrations/{bakery_id}/pause", headers=firm_two.operator),
            await api.get(f"/api/v1/integrations/{bakery_id}/audit", headers=firm_two.viewer),
            await api.get(f"/api/v1/connections/{one}", headers=firm_two.viewer),
            await api.get(f"/api/v1/connections/{one}/divisions", headers=firm_two.viewer),
            await api.get(f"/api/v1/divisions/{DEFAULT_DIVISION}/reference/journals?connection_id={one}",
                          headers=firm_two.viewer),
            await api.post("/api/v1/integrations", headers=firm_two.admin,
                           json=body("Kaper", one, DEFAULT_DIVISION)),
            await api.post("/api/v1/integrations", headers=firm_two.admin,
                           json=body("Kaper", two, FOREIGN_DIVISION, tenant_id=client_one.tenant_id)),
        ]
        # The firm's client: its own integration (and its division's reference data), nothing else.
        client_view = {
            "own": await api.get(f"/api/v1/integrations/{bakery_id}", headers=client_one.viewer),
            "firm's": await api.get(f"/api/v1/integrations/{own_id}", headers=client_one.viewer),
            "connection": await api.get(f"/api/v1/connections/{one}", headers=client_one.viewer),
            "its division": await api.get(f"/api/v1/divisions/{DEFAULT_DIVISION}/reference/journals",
                                          headers=client_one.viewer),
            "firm's division": await api.get(f"/api/v1/divisions/{SECOND_DIVISION}/reference/journals",
                                             headers=client_one.viewer),
            "patch": await api.patch(f"/api/v1/integrations/{bakery_id}", headers=client_one.operator,
                                     json={"settings": {"journal_code": "71"}}),
            "new on firm's connection": await api.post("/api/v1/integrations", headers=client_one.admin,
                                                       json=body("Zelf", one, DEFAULT_DIVISION)),
        }
        portal = (await api.get(f"/api/v1/connections/{one}/divisions", headers=firm_one.viewer)).json()
    assert seen_by == {"firm one": {bakery_id, own_id}, "client": {bakery_id}, "firm two": {theirs_id}}
    assert [p.status_code for p in probes] == [404] * len(probes)
    assert bakery.json()["tenant_id"] == client_one.tenant_id
    assert client_view["own"].status_code == 200 and client_view["firm's"].status_code == 404
    assert client_view["connection"].status_code == 404
    assert client_view["its division"].status_code == 200
    assert [j["code"] for j in client_view["its division"].json()["items"]] == ["10", "20", "60", "70", "71", "90"]
    assert client_view["firm's division"].status_code == 404
    assert client_view["patch"].status_code == 200 and client_view["patch"].json()["settings"]["journal_code"] == "71"
    assert client_view["new on firm's connection"].status_code == 404
    integrations_on = {d["division"]: {i["tenant_id"] for i in d["integrations"]} for d in portal["divisions"]}
    assert integrations_on == {DEFAULT_DIVISION: {client_one.tenant_id}, SECOND_DIVISION: {firm_one.tenant_id}}
