"""Webhook intake throughput and latency against PostgreSQL, next to a bare FastAPI endpoint.

Both servers run as one uvicorn process each (uvloop, httptools) and see the same signed
generic deliveries, each a new order, from a load generator on the same machine:

1. closed loop: sustained deliveries/s with 32 in flight;
2. open loop: 200 deliveries/s for 10 s, p50/p99 answer times.

Usage: .venv/bin/python bench/intake.py [--pg postgresql://postgres@127.0.0.1:5432/postgres]
       [--seconds 10] [--rate 200] [--concurrency 32]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench._load import Result, closed_loop, open_loop  # noqa: E402
from bench._servers import free_port, uvicorn  # noqa: E402
from tests.factories import SECRET_KEY  # noqa: E402  (the key the bench integration is encrypted with)



def make_order(n: int) -> dict:  # type: ignore[type-arg]
    return {
        "source_order_id": f"bench-{n}", "order_number": f"B{n:07d}", "order_date": "2026-11-20T10:15:00Z",
        "currency": "EUR", "prices_include_vat": True,
        "customer": {"email": f"buyer{n % 500}@example.com", "name": "Jane Doe"},
        "billing_address": {"line1": "Voorbeeldstraat 1", "postcode": "1000 AA", "city": "Amsterdam", "country": "NL"},
        "lines": [{"sku": "MUG-01", "name": "Mok", "quantity": 2, "unit_price": "12.10", "vat_rate": 21},
                  {"sku": "BOOK-7", "name": "Kookboek", "quantity": 1, "unit_price": "21.80", "vat_rate": 9}],
        "shipping": [{"description": "Verzending", "amount": "6.05", "vat_rate": 21}],
        "total": "52.05", "total_vat": "7.05", "payment_method": "ideal", "status": "paid",
    }


async def setup_database(url: str) -> tuple[str, str]:
    """A fresh database with the schema and one generic integration with cached VAT codes."""
    from tests.factories import make_shop

    from app.db.engine import create_engine, create_sessionmaker

    engine = create_engine(url)
    try:
        shop = await make_shop(create_sessionmaker(engine), name="Bench")
    finally:
        await engine.dispose()
    return shop.key, shop.secret


def request_maker(key: str, secret: str):  # type: ignore[no-untyped-def]
    from app.sources.generic import sign

    def make(n: int) -> tuple[str, bytes, dict[str, str]]:
        body = json.dumps(make_order(n)).encode()
        msg_id = f"msg_{n}"
        ts = int(time.time())
        return (f"/webhooks/generic/{key}", body, {
            "webhook-id": msg_id, "webhook-timestamp": str(ts),
            "webhook-signature": sign(secret, msg_id, ts, body), "content-type": "application/json"})

    return make


def line(name: str, closed: Result, opened: Result) -> str:
    return (f"{name:<22} {closed.per_second:>9.0f} /s   {opened.per_second:>7.0f} /s   "
            f"p50 {opened.p50:>6.2f} ms   p90 {opened.pct(90):>6.2f}   p99 {opened.pct(99):>6.2f} ms   max {opened.pct(100):>7.2f}   ok {opened.ok}/{opened.sent}"
            + (f"   errors {opened.errors | closed.errors}" if opened.errors or closed.errors else ""))


async def run(args: argparse.Namespace) -> None:
    from tests.conftest import _admin_execute, _fresh_postgres

    from app.db.migrate import upgrade

    db_url, db_name = await asyncio.to_thread(_fresh_postgres, args.pg)
    try:
        await asyncio.to_thread(upgrade, db_url)
        key, secret = await setup_database(db_url)
        make = request_maker(key, secret)
        env = {"KOPPEL_DATABASE_URL": db_url, "KOPPEL_SECRET_KEY": SECRET_KEY, "KOPPEL_LOG_LEVEL": "WARNING",
               "PYTHONPATH": os.getcwd()}
        results: dict[str, tuple[Result, Result]] = {}
        bare_port, koppel_port = free_port(), free_port()
        with uvicorn("bench.bare_app:app", bare_port, env=env):
            base = f"http://127.0.0.1:{bare_port}"
            await closed_loop(base, make, concurrency=8, seconds=2)  # warm-up
            closed = await closed_loop(base, make, concurrency=args.concurrency, seconds=args.seconds)
            opened = await open_loop(base, make, rate=args.rate, seconds=args.seconds)
            results["bare FastAPI"] = (closed, opened)
        with uvicorn("app.asgi:app", koppel_port, env=env):
            base = f"http://127.0.0.1:{koppel_port}"
            await closed_loop(base, make, concurrency=8, seconds=2, start_at=10_000_000)  # warm-up
            closed = await closed_loop(base, make, concurrency=args.concurrency, seconds=args.seconds,
                                       start_at=20_000_000)
            opened = await open_loop(base, make, rate=args.rate, seconds=args.seconds, start_at=30_000_000)
            results["Koppel (PostgreSQL)"] = (closed, opened)
    finally:
        await _admin_execute(args.pg, f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')

    print(f"\nsigned generic deliveries, {args.seconds:.0f} s per phase, closed loop {args.concurrency} "
          f"in flight, open loop {args.rate:.0f}/s\n")
    print(f"{'':<22} {'sustained':>12}   {'offered':>9}   latency at {args.rate:.0f}/s")
    for name, (closed, opened) in results.items():
        print(line(name, closed, opened))
    bare, koppel = results["bare FastAPI"][0], results["Koppel (PostgreSQL)"][0]
    ratio = koppel.per_second / bare.per_second if bare.per_second else float("nan")
    p99 = results["Koppel (PostgreSQL)"][1].pct(99)
    print(f"\nthroughput ratio Koppel / bare: {ratio:.2f}  (target ≥ 0.50)")
    print(f"Koppel p99 at {args.rate:.0f}/s: {p99:.2f} ms  (target < 25 ms)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pg", default=os.environ.get("KOPPEL_TEST_DATABASE_URL",
                                                       "postgresql://postgres@127.0.0.1:5432/postgres"))
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--concurrency", type=int, default=32)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
