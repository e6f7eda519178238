"""Extra divisions for benchmarks and multi-division tests."""

import httpx

from app.sandbox import SandboxState, create_sandbox_app


async def test_added_division_is_seeded_and_visible_to_the_user() -> None:
    state = SandboxState()
    app = create_sandbox_app(state)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sandbox") as client:
        added = await client.post("/sandbox/divisions", json={"code": 5550001, "description": "Filiaal Oost"})
        again = await client.post("/sandbox/divisions", json={"code": 5550001})
        token = state.issue_tokens()["access_token"]
        auth = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        divisions = (await client.get("/api/v1/1234567/system/Divisions", headers=auth)).json()["d"]["results"]
        vat = (await client.get("/api/v1/5550001/vat/VATCodes", headers=auth)).json()["d"]["results"]
    assert added.status_code == 201 and again.status_code == 409
    assert 5550001 in {row["Code"] for row in divisions}
    assert {row["Code"].strip() for row in vat} >= {"1", "2", "5"}
