"""Injected faults: status without work, delay, after-work 502, countdown, matching."""

from __future__ import annotations

import time

from tests.sandbox.support import DIV, account_id, gl, url

ENTRIES = "salesentry/SalesEntries"


def sales_entry(ref: str) -> dict:
    return {
        "Journal": "70",
        "Customer": account_id(1),
        "YourRef": ref,
        "SalesEntryLines": [{"GLAccount": gl("8000"), "AmountFC": "10.00", "VATCode": "1"}],
    }


async def test_status_fault_answers_without_doing_the_work(client, auth, state):
    state.add_fault(method="POST", path_regex=r"/salesentry/SalesEntries$", status=503)
    response = await client.post(url(ENTRIES), headers=auth, json=sales_entry("F-1"))
    assert response.status_code == 503
    assert state.sales_entries(DIV) == []
    # times=1 by default: the retry goes through.
    retry = await client.post(url(ENTRIES), headers=auth, json=sales_entry("F-1"))
    assert retry.status_code == 201
    assert len(state.sales_entries(DIV)) == 1


async def test_after_work_fault_books_the_entry_then_answers_502(client, auth, state):
    response = await client.post(
        "/sandbox/faults", json={"method": "POST", "path_regex": "SalesEntries", "after_work": True}
    )
    assert response.status_code == 201
    failed = await client.post(url(ENTRIES), headers=auth, json=sales_entry("F-2"))
    assert failed.status_code == 502
    # The work happened: a client that looks up by YourRef finds it instead of re-posting.
    lookup = await client.get(url(ENTRIES), headers=auth, params={"$filter": "YourRef eq 'F-2'"})
    assert len(lookup.json()["d"]["results"]) == 1
    assert state.snapshot()["divisions"]["1234567"]["counts"]["sales_entries"] == 1


async def test_delay_fault_sleeps_then_proceeds(client, auth, state):
    state.add_fault(method="GET", path_regex="VATCodes", delay_seconds=0.2)
    started = time.perf_counter()
    response = await client.get(url("vat/VATCodes"), headers=auth)
    assert time.perf_counter() - started >= 0.2
    assert response.status_code == 200
    started = time.perf_counter()
    await client.get(url("vat/VATCodes"), headers=auth)
    assert time.perf_counter() - started < 0.2


async def test_times_counts_down_and_method_must_match(client, auth, state):
    state.add_fault(method="GET", path_regex="GLAccounts", status=500, times=2)
    assert (await client.get(url("financial/GLAccounts"), headers=auth)).status_code == 500
    assert (await client.get(url("vat/VATCodes"), headers=auth)).status_code == 200  # other path
    assert (await client.get(url("financial/GLAccounts"), headers=auth)).status_code == 500
    assert (await client.get(url("financial/GLAccounts"), headers=auth)).status_code == 200
    assert state.faults.snapshot()["active"] == []
    assert state.faults.served == 2


async def test_unlimited_fault_and_clear(client, auth, state):
    await client.post("/sandbox/faults", json={"path_regex": "oauth2/token", "status": 503, "times": None})
    for _ in range(3):
        assert (await client.post("/api/oauth2/token", data={"grant_type": "refresh_token"})).status_code == 503
    cleared = await client.delete("/sandbox/faults")
    assert cleared.json() == {"cleared": 1}
    assert (await client.post("/api/oauth2/token", data={"grant_type": "refresh_token"})).status_code == 400


async def test_fault_with_custom_headers_and_admin_is_never_faulted(client, auth, state):
    state.add_fault(path_regex=".*", status=429, headers={"Retry-After": "7"}, times=None)
    faulted = await client.get(url("vat/VATCodes"), headers=auth)
    assert faulted.status_code == 429 and faulted.headers["Retry-After"] == "7"
    assert (await client.get("/sandbox/state")).status_code == 200


async def test_bad_fault_rule_is_refused(client):
    response = await client.post("/sandbox/faults", json={"path_regex": "(", "status": 500})
    assert response.status_code == 422
