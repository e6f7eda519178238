"""Builders for test data: tenants, connections with cached VAT codes, integrations, keys, orders."""

from __future__ import annotations

import copy
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.connections.models import ExactConnection, ReferenceItem
from app.db.base import utcnow
from app.integrations.service import create_integration, create_tenant
from app.sources.generic import sign
from app.tenancy.auth import create_key

SECRET_KEY = "test-secret-key"
DIVISION = 1234567

# The VAT codes of a Dutch division as Koppel caches them (percentages, not fractions).
NL_VAT_CODES = [
    ("0", "0% / geen btw", "0", "B"),
    ("1", "BTW hoog 21% excl.", "21", "E"),
    ("2", "BTW laag 9% excl.", "9", "E"),
    ("5", "ICP leveringen 0%", "0", "B"),
    ("6", "Export buiten EU 0%", "0", "B"),
    ("B21", "OSS België 21%", "21", "E"),
]


@dataclass
class Shop:
    tenant_id: int
    integration_id: int
    key: str
    secret: str
    connection_id: int
    api_key: str
    viewer_key: str


async def make_shop(sessionmaker: async_sessionmaker[AsyncSession], *, name: str = "Webshop",
                    settings: dict[str, Any] | None = None, source: str = "generic",
                    division: int = DIVISION, with_vat_codes: bool = True) -> Shop:
    async with sessionmaker() as session, session.begin():
        tenant = await create_tenant(session, f"{name} B.V.")
        connection = ExactConnection(
            tenant_id=tenant.id, name=f"{name} Exact", base_url="http://exact.invalid",
            client_id="koppel-test", exact_user_id=str(uuid.uuid4()), state="active",
            created_at=utcnow(), updated_at=utcnow(),
        )
        session.add(connection)
        await session.flush()
        if with_vat_codes:
            for code, description, percentage, vat_type in NL_VAT_CODES:
                session.add(ReferenceItem(
                    connection_id=connection.id, division=division, kind="vat_code", code=code,
                    exact_id=str(uuid.uuid4()), description=description,
                    data={"percentage": percentage, "type": vat_type}, refreshed_at=utcnow(),
                ))
        integration, secret = await create_integration(
            session, secret_key=SECRET_KEY, tenant_id=tenant.id, name=name, source=source,
            connection_id=connection.id, division=division, settings=settings,
        )
        _, operator = await create_key(session, tenant_id=tenant.id, scope="operator", name="ops")
        _, viewer = await create_key(session, tenant_id=tenant.id, scope="viewer", name="dash")
        return Shop(tenant.id, integration.id, integration.key, secret, connection.id, operator, viewer)


BASE_ORDER: dict[str, Any] = {
    "source_order_id": "5001",
    "order_number": "1001",
    "order_date": "2026-11-20T10:15:00+01:00",
    "currency": "EUR",
    "prices_include_vat": True,
    "customer": {"email": "jane.doe@example.com", "name": "Jane Doe"},
    "billing_address": {"name": "Jane Doe", "line1": "Voorbeeldstraat 1", "postcode": "1000 AA",
                        "city": "Amsterdam", "country": "NL"},
    "lines": [
        {"sku": "MUG-01", "name": "Mok", "quantity": 2, "unit_price": "12.10", "vat_rate": 21},
        {"sku": "BOOK-7", "name": "Kookboek", "quantity": "1", "unit_price": "21.80", "vat_rate": "9"},
    ],
    "shipping": [{"description": "Verzending", "amount": "6.05", "vat_rate": 21}],
    "payment_costs": [],
    "discounts": [],
    "total": "52.05",
    "total_vat": "7.05",
    "payment_method": "ideal",
    "status": "paid",
}


def order(**changes: Any) -> dict[str, Any]:
    result = copy.deepcopy(BASE_ORDER)
    result.update(changes)
    return result


def signed(secret: str, payload: Any, *, msg_id: str | None = None, timestamp: int | None = None) -> tuple[bytes, dict[str, str]]:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    timestamp = int(time.time()) if timestamp is None else timestamp
    headers = {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, msg_id, timestamp, body),
        "content-type": "application/json",
    }
    return body, headers
