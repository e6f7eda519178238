"""The embedded demo: what `koppel run` sets up, and the sample orders `koppel demo` posts.

`set_up` makes (once; later runs find and reuse them) a tenant "Demo B.V.", an Exact
connection to the bundled sandbox, a generic integration "Demo webshop" on division
1234567 and an operator API key. The sandbox keeps everything in memory, so every run
gets a fresh token pair from it, reloads the division's reference data and forgets the
debtors the previous run created there.

The database keeps only ciphertexts and hashes, so the webhook secret and the API key are
written to ./var/demo.json (mode 0600) for `koppel demo` and for the next `koppel run`.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app import crypto
from app.connections.models import DebtorLink, ExactConnection
from app.db.base import utcnow
from app.integrations.models import Integration
from app.settings import VAR_DIR, Settings
from app.tenancy.models import ApiKey, Tenant

TENANT = "Demo B.V."
CONNECTION = "Demo Exact (sandbox)"
INTEGRATION = "Demo webshop"
KEY_NAME = "demo"
DIVISION = 1234567
DEMO_FILE = VAR_DIR / "demo.json"

# Where an order has come to rest; `queued` and `booking` are still moving.
SETTLED = {"booked", "failed", "rejected", "open", "waiting"}


# --- ./var/demo.json ------------------------------------------------------------------------

def load_demo_file(path: Path = DEMO_FILE) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())  # type: ignore[no-any-return]
    except (FileNotFoundError, ValueError):
        return None


def save_demo_file(values: dict[str, Any], path: Path = DEMO_FILE) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(values, handle, indent=2)
        handle.write("\n")
    os.chmod(path, 0o600)  # also when the file existed with wider permissions


# --- setting the demo up --------------------------------------------------------------------

async def _one(session: AsyncSession, query: Any) -> Any:
    return (await session.execute(query.limit(1))).scalars().first()


async def _tenant_and_connection(sessionmaker: async_sessionmaker[AsyncSession], settings: Settings,
                                 sandbox_url: str) -> tuple[int, int]:
    async with sessionmaker() as session, session.begin():
        tenant = await _one(session, select(Tenant).where(Tenant.name == TENANT).order_by(Tenant.id))
        if tenant is None:
            tenant = Tenant(name=TENANT, created_at=utcnow())
            session.add(tenant)
            await session.flush()
        connection = await _one(session, select(ExactConnection).where(
            ExactConnection.tenant_id == tenant.id, ExactConnection.name == CONNECTION).order_by(ExactConnection.id))
        if connection is None:
            connection = ExactConnection(tenant_id=tenant.id, name=CONNECTION, base_url=sandbox_url,
                                         client_id=settings.exact_client_id, state="pending",
                                         created_at=utcnow(), updated_at=utcnow())
            session.add(connection)
        else:  # the sandbox may listen on another port this time
            connection.base_url = sandbox_url
            connection.client_id = settings.exact_client_id
            # The sandbox keeps its data in memory: once restarted, the debtors made before are
            # gone, so forget their ids (the booking looks them up or makes them again).
            await session.execute(delete(DebtorLink).where(DebtorLink.connection_id == connection.id))
        await session.flush()
        return tenant.id, connection.id


async def _connect_to_sandbox(sessionmaker: async_sessionmaker[AsyncSession], settings: Settings,
                              http: httpx.AsyncClient, sandbox_url: str, connection_id: int) -> None:
    """Tokens as after the user's consent (the sandbox's admin shortcut), stored encrypted."""
    from app.connections.tokens import save_token
    from app.exact.tokens import StoredToken

    answer = await http.post(f"{sandbox_url}/sandbox/tokens/issue", json={"client_id": settings.exact_client_id})
    answer.raise_for_status()
    issued = answer.json()
    token = StoredToken(access_token=issued["access_token"], refresh_token=issued["refresh_token"],
                        expires_at=utcnow() + timedelta(seconds=int(issued.get("expires_in") or 600)))
    async with sessionmaker() as session, session.begin():
        await save_token(session, settings.secret_key.get_secret_value(), connection_id, token)


async def _load_from_exact(sessionmaker: async_sessionmaker[AsyncSession], settings: Settings,
                           http: httpx.AsyncClient, redis_url: str, connection_id: int) -> dict[str, int]:
    """Who we are in Exact (`current/Me`), then the division's reference data, through the
    same Exact client (token manager, shared rate budget) the workers use."""
    import redis.asyncio as aioredis

    from app.booking.service import connection_ref
    from app.connections.reference import refresh
    from app.connections.tokens import DatabaseTokenStore
    from app.exact.client import ExactClient
    from app.exact.ratelimit import DivisionRateLimiter
    from app.exact.tokens import TokenManager

    redis = aioredis.from_url(redis_url)
    try:
        store = DatabaseTokenStore(sessionmaker, settings.secret_key.get_secret_value())
        exact = ExactClient(http, TokenManager(http, redis, store), DivisionRateLimiter(redis),
                            timeout=settings.exact_timeout_seconds)
        async with sessionmaker() as session:
            connection = await session.get(ExactConnection, connection_id)
            assert connection is not None
            ref = connection_ref(connection, settings)
        me = await exact.for_connection(ref).me()
        async with sessionmaker() as session, session.begin():
            await session.execute(update(ExactConnection).where(ExactConnection.id == connection_id).values(
                exact_user_id=str(me.get("UserID")), exact_user_name=me.get("FullName") or me.get("UserName"),
                updated_at=utcnow()))
        return await refresh(sessionmaker, exact.for_division(ref, DIVISION), connection_id, DIVISION)
    finally:
        await redis.aclose()


async def _integration_and_key(sessionmaker: async_sessionmaker[AsyncSession], settings: Settings,
                               tenant_id: int, connection_id: int, saved: dict[str, Any]) -> dict[str, Any]:
    from app.integrations.service import create_integration
    from app.tenancy.auth import create_key, hash_key

    secret_key = settings.secret_key.get_secret_value()
    async with sessionmaker() as session, session.begin():
        integration = await _one(session, select(Integration).where(
            Integration.tenant_id == tenant_id, Integration.name == INTEGRATION).order_by(Integration.id))
        if integration is None:
            integration, webhook_secret = await create_integration(
                session, secret_key=secret_key, tenant_id=tenant_id, name=INTEGRATION, source="generic",
                connection_id=connection_id, division=DIVISION)
        else:
            webhook_secret = crypto.decrypt(secret_key, integration.webhook_secret_enc)
        api_key = saved.get("api_key")
        key_row = await _one(session, select(ApiKey).where(ApiKey.key_hash == hash_key(api_key))) if api_key else None
        if key_row is None or key_row.revoked_at is not None or key_row.tenant_id != tenant_id:
            # The plain key is gone (demo.json was deleted): retire the old demo keys, make one.
            await session.execute(update(ApiKey).where(
                ApiKey.tenant_id == tenant_id, ApiKey.name == KEY_NAME, ApiKey.revoked_at.is_(None),
            ).values(revoked_at=utcnow()))
            _, api_key = await create_key(session, tenant_id=tenant_id, scope="operator", name=KEY_NAME)
        return {"integration_id": integration.id, "webhook_path": f"/webhooks/generic/{integration.key}",
                "webhook_secret": webhook_secret, "api_key": api_key}


async def set_up(settings: Settings, *, api_url: str, sandbox_url: str, redis_url: str,
                 path: Path = DEMO_FILE) -> dict[str, Any]:
    """Make (or find) the demo tenant, connection, integration and key; write demo.json."""
    from app.db.engine import create_engine, create_sessionmaker

    engine = create_engine(settings.database_url, lock_timeout_ms=settings.database_lock_timeout_ms)
    sessionmaker = create_sessionmaker(engine)
    try:
        async with httpx.AsyncClient(timeout=settings.exact_timeout_seconds) as http:
            tenant_id, connection_id = await _tenant_and_connection(sessionmaker, settings, sandbox_url)
            await _connect_to_sandbox(sessionmaker, settings, http, sandbox_url, connection_id)
            reference = await _load_from_exact(sessionmaker, settings, http, redis_url, connection_id)
        demo = await _integration_and_key(sessionmaker, settings, tenant_id, connection_id,
                                          load_demo_file(path) or {})
    finally:
        await engine.dispose()
    demo.update(tenant_id=tenant_id, connection_id=connection_id, division=DIVISION, api_url=api_url,
                sandbox_url=sandbox_url, webhook_url=api_url + demo["webhook_path"])
    save_demo_file(demo, path)
    return {**demo, "reference": reference}


# --- the sample orders ----------------------------------------------------------------------

def _address(name: str, line1: str, postcode: str, city: str, country: str,
             company: str | None = None) -> dict[str, Any]:
    return {"name": name, "company": company, "line1": line1, "postcode": postcode, "city": city,
            "country": country}


def sample_orders(run: str) -> list[tuple[str, dict[str, Any]]]:
    """(what it shows, canonical order) for each sample; `run` keeps the numbers unique."""
    def number(n: int) -> str:
        return f"DEMO-{run}-{n}"

    def base(n: int, **values: Any) -> dict[str, Any]:
        return {"source_order_id": f"demo-{run}-{n}", "order_number": number(n),
                "order_date": utcnow().isoformat(), "currency": "EUR", "payment_method": "ideal",
                "status": "paid", "prices_include_vat": True, "payment_costs": [], "discounts": [],
                "shipping": [], **values}

    jan = {"email": "jan.jansen@example.nl", "name": "Jan Jansen"}
    jan_address = _address("Jan Jansen", "Voorbeeldstraat 1", "1000 AA", "Amsterdam", "NL")
    domestic_lines = [
        {"sku": "MUG-01", "name": "Mok", "quantity": "2", "unit_price": "12.10", "vat_rate": "21"},
        {"sku": "BOOK-7", "name": "Kookboek", "quantity": "1", "unit_price": "21.80", "vat_rate": "9"},
    ]
    # 24.20 + 21.80 + 6.05 shipping − 2.42 discount = 49.63; VAT 4.83 (21 %) + 1.80 (9 %).
    domestic = base(1, customer=jan, billing_address=jan_address, lines=domestic_lines,
                    shipping=[{"description": "Verzending", "amount": "6.05", "vat_rate": "21"}],
                    discounts=[{"description": "10% op mokken", "code": "MOK10", "amount": "2.42",
                                "vat_rate": "21"}],
                    total="49.63", total_vat="6.63")
    belgian = _address("Els Peeters", "Meir 10", "2000", "Antwerpen", "BE", company="Peeters Interieur BV")
    icp = base(2, customer={"email": "inkoop@peeters-interieur.example", "name": "Els Peeters",
                            "company": "Peeters Interieur BV", "vat_number": "BE0477472701"},
               billing_address=belgian, shipping_address=belgian, prices_include_vat=False,
               lines=[{"sku": "LAMP-3", "name": "Hanglamp", "quantity": "4", "unit_price": "45.00", "vat_rate": "0"}],
               shipping=[{"description": "Verzending België", "amount": "12.50", "vat_rate": "0"}],
               total="192.50", total_vat="0.00", payment_method="bank_transfer")
    american = _address("Mary Smith", "350 Fifth Avenue", "10118", "New York", "US")
    export = base(3, customer={"email": "mary.smith@example.com", "name": "Mary Smith"},
                  billing_address=american, shipping_address=american,
                  lines=[{"sku": "BOOK-7", "name": "Cookbook", "quantity": "2", "unit_price": "20.00", "vat_rate": "0"}],
                  shipping=[{"description": "International shipping", "amount": "15.00", "vat_rate": "0"}],
                  total="55.00", total_vat="0.00", payment_method="creditcard")
    wrong_total = base(4, customer=jan, billing_address=jan_address, lines=domestic_lines,
                       total="50.00")  # the lines add up to 46.00
    unpaid = base(5, customer=jan, billing_address=jan_address, lines=domestic_lines[:1],
                  total="24.20", status="pending")
    return [("domestic NL, VAT, shipping, discount", domestic), ("ICP to a Belgian company, 0 %", icp),
            ("export to the US, 0 %", export), ("total does not add up", wrong_total),
            ("not paid yet", unpaid)]


# --- posting them ---------------------------------------------------------------------------

def signed_headers(secret: str, body: bytes) -> dict[str, str]:
    from app.sources.generic import sign

    msg_id = f"msg_{uuid.uuid4().hex}"
    timestamp = int(time.time())
    return {"webhook-id": msg_id, "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(secret, msg_id, timestamp, body), "content-type": "application/json"}


def run_demo(demo: dict[str, Any], api_url: str, *, wait_seconds: float = 30.0) -> list[dict[str, Any]]:
    """Post the samples to `api_url`, then follow each order until all settle (or time is up)."""
    run = str(int(time.time()))
    results: list[dict[str, Any]] = []
    auth = {"Authorization": f"Bearer {demo['api_key']}"}
    with httpx.Client(base_url=api_url, timeout=10.0) as http:
        for label, payload in sample_orders(run):
            body = json.dumps(payload).encode()
            answer = http.post(demo["webhook_path"], content=body, headers=signed_headers(demo["webhook_secret"], body))
            row = {"order_number": payload["order_number"], "case": label, "order_id": None,
                   "state": f"HTTP {answer.status_code}", "entry": None, "error": None}
            if answer.status_code in (200, 202):
                row.update(order_id=answer.json()["order_id"], state=answer.json()["state"])
            else:
                row["error"] = answer.text[:200]
            results.append(row)
        tracked = [row for row in results if row["order_id"] is not None]
        deadline = time.monotonic() + wait_seconds
        while True:
            for row in tracked:
                found = http.get(f"/api/v1/orders/{row['order_id']}", headers=auth)
                found.raise_for_status()
                order = found.json()
                note = order["error_message"]
                if order["state"] == "open" and not note:
                    note = f"status {order['source_status']!r} is not one to book yet; waits for an update"
                row.update(state=order["state"], entry=order["exact_document_number"], error=note)
            if all(row["state"] in SETTLED for row in tracked) or time.monotonic() >= deadline:
                return results
            time.sleep(0.5)
