"""Booking throughput, Exact calls per order, and draining a backlog under Exact's real limit.

Everything is real but Exact: PostgreSQL, a private Redis, `koppel worker` processes, and
the bundled sandbox served by `koppel sandbox`. Orders go in through the webhook intake
(`app.webhooks.service.receive`, the production path) while no worker runs; then workers
start and the clock runs until every order is booked.

Phase 1, sandbox rate limit raised: orders/s with 1 and 2 worker processes, and Exact calls
per order for a mix of 70 % returning customers (their debtor is known) and 30 % new ones
(e-mail look-up + create + entry). Also per booking target (entry, invoice, order).
Phase 2, the real limit (60/min per division) over 5 divisions: the time to drain a
backlog against the theoretical minimum (the calls must wait for minute windows), and the
number of 429s Exact (the sandbox) answered.

Usage: .venv/bin/python bench/booking.py [--orders 600] [--backlog 150] [--skip-drain] [--skip-throughput]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import random
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import httpx  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from app.db.engine import create_engine, create_sessionmaker  # noqa: E402
from app.db.migrate import upgrade  # noqa: E402
from app.embedded_redis import free_port, start_private_redis  # noqa: E402
from app.orders.models import Order  # noqa: E402
from app.orders.outbox import relay_once  # noqa: E402
from app.queue import connect  # noqa: E402
from app.webhooks.config_cache import IntakeConfigCache  # noqa: E402
from app.webhooks.service import receive  # noqa: E402
from tests.booking.harness import connect_sandbox, e2e_settings  # noqa: E402
from tests.conftest import _admin_execute, _fresh_postgres  # noqa: E402
from tests.factories import SECRET_KEY, order, signed  # noqa: E402

DIVISIONS = [1234567, 7654321, 5550001, 5550002, 5550003]


def child(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    os.makedirs("var", exist_ok=True)
    log = open(f"var/bench-booking-{args[0]}-{time.time_ns()}.log", "wb")
    return subprocess.Popen([sys.executable, "-m", "app.cli", *args], env={**os.environ, **env},
                            stdout=log, stderr=log, start_new_session=True)


def stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
    for process in processes:
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


class Bench:
    def __init__(self, db_url: str, redis_url: str, sandbox_url: str, env: dict[str, str]) -> None:
        self.db_url, self.redis_url, self.sandbox_url, self.env = db_url, redis_url, sandbox_url, env
        self.engine = create_engine(db_url, pool_size=10)
        self.sessionmaker = create_sessionmaker(self.engine)
        self.cache = IntakeConfigCache(SECRET_KEY, ttl=0)
        self.counter = 0
        self.started_epoch = 0.0

    async def deliver(self, shop, **changes) -> int:  # type: ignore[no-untyped-def]
        self.counter += 1
        n = self.counter
        payload = order(source_order_id=f"b{n}", order_number=f"BENCH-{n:06d}", **changes)
        body, headers = signed(shop.secret, payload)
        result = await receive(self.sessionmaker, self.cache, "generic", shop.key, body, headers)
        assert result.status_code == 202 and result.state == "queued", result
        return int(result.order_id)  # type: ignore[arg-type]

    async def book(self, ids: list[int], workers: int, timeout: float = 900) -> float:
        """Enqueue, start `workers` processes, and time until every order in `ids` is booked."""
        redis = await connect(self.redis_url, "koppel:queue")
        while await relay_once(self.sessionmaker, redis):
            pass
        await redis.aclose()
        started = time.perf_counter()
        self.started_epoch = time.time()
        processes = [child(["worker"], self.env) for _ in range(workers)]
        try:
            while True:
                async with self.sessionmaker() as session:
                    booked = (await session.execute(select(func.count()).where(
                        Order.id.in_(ids), Order.state == "booked"))).scalar_one()
                    failed = (await session.execute(select(func.count()).where(
                        Order.id.in_(ids), Order.state == "failed"))).scalar_one()
                if failed:
                    raise RuntimeError(f"{failed} orders failed; see var/bench-booking-worker-*.log")
                if booked == len(ids):
                    return time.perf_counter() - started
                if time.perf_counter() - started > timeout:
                    raise RuntimeError(f"only {booked}/{len(ids)} booked in {timeout} s")
                await asyncio.sleep(0.1)
        finally:
            stop(processes)

    async def calls(self, ids: list[int]) -> float:
        async with self.sessionmaker() as session:
            total = (await session.execute(select(func.sum(Order.exact_calls)).where(Order.id.in_(ids)))).scalar_one()
        return float(total or 0) / len(ids)


async def phase_throughput(bench: Bench, http: httpx.AsyncClient, redis, settings, n: int) -> None:  # type: ignore[no-untyped-def]
    await http.put(f"{bench.sandbox_url}/sandbox/limits", json={"minutely": 1_000_000, "daily": 10_000_000})
    shop = await connect_sandbox(bench.sessionmaker, None, http, redis, settings, base_url=bench.sandbox_url)
    customers = [f"klant{i}@example.com" for i in range(200)]
    warmup = [await bench.deliver(shop, customer={"email": email, "name": "Klant"}) for email in customers]
    seconds = await bench.book(warmup, workers=2)
    cold = await bench.calls(warmup)
    print(f"warm-up: {len(warmup)} orders of new customers in {seconds:.1f} s, {cold:.2f} Exact calls per order")
    print(f"\n{'workers':>8} {'orders':>7} {'seconds':>8} {'orders/s':>9} {'calls/order (mix)':>18} "
          f"{'returning':>10} {'new':>6}")
    rates = {}
    for workers in (1, 2):
        returning, new = [], []
        for i in range(n):
            if random.random() < 0.7:
                returning.append(await bench.deliver(shop, customer={"email": random.choice(customers)}))
            else:
                new.append(await bench.deliver(shop, customer={"email": f"nieuw{workers}-{i}@example.com"}))
        ids = returning + new
        seconds = await bench.book(ids, workers)
        rates[workers] = len(ids) / seconds
        print(f"{workers:>8} {len(ids):>7} {seconds:>8.1f} {rates[workers]:>9.1f} {await bench.calls(ids):>18.3f} "
              f"{await bench.calls(returning):>10.3f} {await bench.calls(new):>6.2f}")
    print(f"\nscaling 2 workers / 1 worker: {rates[2] / rates[1]:.2f}")
    await phase_targets(bench, http, redis, settings, customers)


async def phase_targets(bench: Bench, http, redis, settings, customers: list[str]) -> None:  # type: ignore[no-untyped-def]
    from app.booking.targets import TARGETS

    print(f"\n{'target':<15} {'cold calls/order':>17} {'warm calls/order':>17}")
    for target in TARGETS:
        extra = {"warehouse": "1"} if target != "sales_entry" else {}
        try:
            shop = await connect_sandbox(bench.sessionmaker, None, http, redis, settings, base_url=bench.sandbox_url,
                                         name=f"Shop {target}", integration_settings={"target_document": target,
                                                                                     **extra})
        except Exception as exc:  # noqa: BLE001 - a target's settings may not exist yet
            print(f"{target:<15} skipped ({exc})")
            continue
        first = [await bench.deliver(shop, customer={"email": email}) for email in customers[:30]]
        await bench.book(first, workers=2)
        again = [await bench.deliver(shop, customer={"email": email}) for email in customers[:30]]
        await bench.book(again, workers=2)
        print(f"{target:<15} {await bench.calls(first):>17.2f} {await bench.calls(again):>17.2f}")


async def phase_drain(bench: Bench, http: httpx.AsyncClient, redis, settings, per_division: int) -> None:  # type: ignore[no-untyped-def]
    await http.put(f"{bench.sandbox_url}/sandbox/limits", json={"minutely": 60, "daily": 5000})
    # Lowering the limit mid-window is not something Exact does: start from a fresh window,
    # with no budget learned under the raised limit (as a new installation would).
    for key in await redis.keys("koppel:exact:ratelimit:*"):
        await redis.delete(key)
    await asyncio.sleep(60 - time.time() % 60 + 0.5)
    for code in DIVISIONS[2:]:
        await http.post(f"{bench.sandbox_url}/sandbox/divisions", json={"code": code})
    first = await connect_sandbox(bench.sessionmaker, None, http, redis, settings, base_url=bench.sandbox_url,
                                  division=DIVISIONS[0], name="Drain 0")
    shops = [first]
    for i, division in enumerate(DIVISIONS[1:], start=1):
        shops.append(await connect_sandbox(bench.sessionmaker, None, http, redis, settings,
                                           base_url=bench.sandbox_url, division=division, name=f"Drain {i}",
                                           tenant_id=first.tenant_id, connection_id=first.connection_id))
    # Warm each division's debtor cache with the seeded customer, so each backlog order is
    # one call (the entry) and the minimum is easy to state.
    warm = [await bench.deliver(shop, customer={"email": "bestaande.klant@example.com"}) for shop in shops]
    await bench.book(warm, workers=2)
    before = (await http.get(f"{bench.sandbox_url}/sandbox/state")).json()
    await asyncio.sleep(60 - time.time() % 60 + 0.5)  # start on a fresh minute window
    backlog = [await bench.deliver(shop, customer={"email": "bestaande.klant@example.com"})
               for shop in shops for _ in range(per_division)]
    seconds = await bench.book(backlog, workers=2)
    after = (await http.get(f"{bench.sandbox_url}/sandbox/state")).json()
    calls = await bench.calls(backlog)
    per_division_calls = calls * per_division
    windows = math.ceil(per_division_calls / 60)
    # The budget is fresh in the minute the drain starts; the last call can go no earlier
    # than the start of window number `windows`, counted from that minute.
    last_window_opens = (bench.started_epoch // 60 + windows - 1) * 60
    minimum = max(last_window_opens - bench.started_epoch, 0.0)
    too_many = sum(after.get("rate_limited", {}).values()) - sum(before.get("rate_limited", {}).values())
    print(f"\ndrain: {len(backlog)} orders over {len(DIVISIONS)} divisions at 60 calls/min each, "
          f"{calls:.2f} calls per order")
    print(f"  took {seconds:.1f} s; theoretical minimum {minimum:.1f} s "
          f"({windows} minute windows of 60 calls per division; the last opens {minimum:.1f} s after the start)")
    if minimum:
        print(f"  ratio {seconds / minimum:.3f}  (target ≤ 1.10)")
    print(f"  429s answered by Exact during the drain: {too_many}  (target 0)")


async def run(args: argparse.Namespace) -> None:
    db_url, db_name = await asyncio.to_thread(_fresh_postgres, args.pg)
    redis_server = start_private_redis()
    port = free_port()
    sandbox_url = f"http://127.0.0.1:{port}"
    env = {"KOPPEL_DATABASE_URL": db_url, "KOPPEL_REDIS_URL": redis_server.url, "KOPPEL_SECRET_KEY": SECRET_KEY,
           "KOPPEL_LOG_LEVEL": "WARNING"}
    sandbox = child(["sandbox", "--port", str(port)], env)
    bench = None
    try:
        await asyncio.to_thread(upgrade, db_url)
        async with httpx.AsyncClient(timeout=30) as http:
            for _ in range(100):
                try:
                    await http.get(f"{sandbox_url}/sandbox/state")
                    break
                except httpx.HTTPError:
                    await asyncio.sleep(0.1)
            bench = Bench(db_url, redis_server.url, sandbox_url, env)
            settings = e2e_settings(db_url, redis_server.url)
            redis = await connect(redis_server.url, "koppel:queue")
            if not args.skip_throughput:
                await phase_throughput(bench, http, redis, settings, args.orders)
            if not args.skip_drain:
                await phase_drain(bench, http, redis, settings, args.backlog)
            await redis.aclose()
    finally:
        if bench is not None:
            await bench.engine.dispose()
        stop([sandbox])
        redis_server.stop()
        await _admin_execute(args.pg, f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pg", default=os.environ.get("KOPPEL_TEST_DATABASE_URL",
                                                       "postgresql://postgres@127.0.0.1:5432/postgres"))
    parser.add_argument("--orders", type=int, default=600)
    parser.add_argument("--backlog", type=int, default=150, help="orders per division in the drain phase")
    parser.add_argument("--skip-drain", action="store_true")
    parser.add_argument("--skip-throughput", action="store_true")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
