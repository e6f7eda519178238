"""kill -9 of a worker in the middle of a batch: every order is booked, and booked once.

Real processes: the sandbox served by `koppel sandbox`, workers run by `koppel worker`.
Each sales entry create is slowed down in the sandbox so the kill lands while requests
are in flight; the killed worker's jobs come back after arq's in-progress TTL (job
timeout + 10 s) and find their entries by YourRef instead of creating them again.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time

import httpx
from sqlalchemy import func, select

from app.embedded_redis import free_port
from app.orders.models import Order
from tests.api_client import running_app
from tests.booking.harness import connect_sandbox, e2e_settings, wait_for_states
from tests.factories import SECRET_KEY, order, signed

JOB_TIMEOUT = 6


def start(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "app.cli", *args], env={**os.environ, **env},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


async def wait_http(url: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            try:
                if (await client.get(url)).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError(f"{url} did not come up")


async def in_flight(sessionmaker) -> int:  # type: ignore[no-untyped-def]
    async with sessionmaker() as session:
        return int((await session.execute(select(func.count()).select_from(Order).where(
            Order.state == "booking", Order.create_sent_at.is_not(None)))).scalar_one())


async def test_kill_9_mid_batch_books_every_order_once(database_url, sessionmaker, redis_client, redis_url) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {"KOPPEL_DATABASE_URL": database_url, "KOPPEL_REDIS_URL": redis_url, "KOPPEL_SECRET_KEY": SECRET_KEY,
           "KOPPEL_JOB_TIMEOUT_SECONDS": str(JOB_TIMEOUT), "KOPPEL_LOG_LEVEL": "WARNING",
           "KOPPEL_BOOKING_RETRY_BASE_SECONDS": "0.1"}
    sandbox = start(["sandbox", "--port", str(port)], env)
    workers: list[subprocess.Popen[bytes]] = []
    try:
        await wait_http(f"{base}/sandbox/state")
        settings = e2e_settings(database_url, redis_url, job_timeout_seconds=JOB_TIMEOUT)
        async with httpx.AsyncClient(timeout=10) as http:
            shop = await connect_sandbox(sessionmaker, None, http, redis_client, settings, base_url=base)
            await http.post(f"{base}/sandbox/faults", json={"method": "POST", "path_regex": "salesentry/SalesEntries",
                                                           "delay_seconds": 0.4, "times": None})
            async with running_app(database_url, redis_url) as api:
                ids = []
                for n in range(20):
                    body, headers = signed(shop.secret, order(source_order_id=f"K-{n}", order_number=f"KILL-{n}"))
                    response = await api.post(f"/webhooks/generic/{shop.key}", content=body, headers=headers)
                    ids.append(response.json()["order_id"])
                workers.append(start(["worker"], env))
                # Kill once some entries exist and creates are in flight (sent, not answered).
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline:
                    state = (await http.get(f"{base}/sandbox/state")).json()
                    if state["divisions"]["1234567"]["counts"]["sales_entries"] >= 1 and await in_flight(sessionmaker):
                        break
                    await asyncio.sleep(0.02)
                os.killpg(workers[0].pid, signal.SIGKILL)
                workers[0].wait(5)
                killed_at = (await http.get(f"{base}/sandbox/state")).json()
                assert killed_at["divisions"]["1234567"]["counts"]["sales_entries"] < 20
                workers.append(start(["worker"], env))
                done = await wait_for_states(sessionmaker, ids, timeout=JOB_TIMEOUT + 60)
            state = (await http.get(f"{base}/sandbox/state")).json()
    finally:
        for process in [sandbox, *workers]:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
    assert {row.state for row in done.values()} == {"booked"}
    assert any(row.attempts >= 2 for row in done.values())
    refs = [entry["YourRef"] for entry in state["divisions"]["1234567"]["sales_entries"]]
    assert sorted(refs) == sorted(f"KILL-{n}" for n in range(20))  # each exactly once
