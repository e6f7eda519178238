"""What an API key may reach: tenants, and who a change is recorded as.

Anything outside a key's tenants is a 404, exactly as if it did not exist (see auth.py).
"""

from __future__ import annotations

from fastapi import HTTPException
from sqlalchemy.ext.asyncio import AsyncSession

from app.tenancy.auth import Principal
from app.tenancy.models import ApiKey, Tenant


async def resolve_tenant(db: AsyncSession, who: Principal, tenant_id: int | None) -> Tenant:
    """The tenant a new object belongs to: the one named (if this key sees it), else the key's own."""
    if tenant_id is None:
        if who.tenant_id is None:
            raise HTTPException(422, "an installation admin key must say which tenant: give tenant_id")
        tenant_id = who.tenant_id
    tenant = await db.get(Tenant, tenant_id) if who.sees_tenant(tenant_id) else None
    if tenant is None:
        raise HTTPException(404, f"tenant {tenant_id} not found")
    return tenant


async def actor(db: AsyncSession, who: Principal) -> str:
    """How an audit row names the caller: "API key 7 (ops)"."""
    key = await db.get(ApiKey, who.key_id)
    name = f" ({key.name})" if key is not None and key.name else ""
    return f"API key {who.key_id}{name}"
