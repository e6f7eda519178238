"""API keys as bearer tokens: hashed at rest, scoped, tenant-bound.

Scopes: `admin` (an installation key with no tenant sees everything; a tenant's admin key
manages that tenant), `operator` (its own integrations; may reprocess), `viewer` (read only).
A firm's key also sees its client tenants. Anything outside a key's tenants is a 404,
never a 403, so ids do not leak.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.base import utcnow
from app.tenancy.models import ApiKey, Tenant

SCOPES = ("admin", "operator", "viewer")
KEY_PREFIX = "kpl_"
_RANK = {"viewer": 0, "operator": 1, "admin": 2}


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class Principal:
    key_id: int
    scope: str
    tenant_id: int | None
    # None: every tenant (installation admin); else the tenants this key may see.
    tenant_ids: tuple[int, ...] | None

    def allows(self, scope: str) -> bool:
        return _RANK[self.scope] >= _RANK[scope]

    def sees_tenant(self, tenant_id: int) -> bool:
        return self.tenant_ids is None or tenant_id in self.tenant_ids


async def create_key(session: AsyncSession, *, tenant_id: int | None, scope: str, name: str) -> tuple[ApiKey, str]:
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {', '.join(SCOPES)}")
    plaintext = KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(tenant_id=tenant_id, name=name, key_hash=hash_key(plaintext), prefix=plaintext[:12],
                 scope=scope, created_at=utcnow())
    session.add(key)
    await session.flush()
    return key, plaintext


async def visible_tenants(session: AsyncSession, tenant_id: int) -> tuple[int, ...]:
    """The tenant and, for an accounting firm, its client tenants (one level, as firms have)."""
    children = await session.execute(select(Tenant.id).where(Tenant.parent_id == tenant_id))
    return (tenant_id, *children.scalars())


async def authenticate(session: AsyncSession, token: str) -> Principal | None:
    result = await session.execute(select(ApiKey).where(ApiKey.key_hash == hash_key(token)))
    key = result.scalar_one_or_none()
    if key is None or key.revoked_at is not None:
        return None
    tenant_ids = None if key.tenant_id is None else await visible_tenants(session, key.tenant_id)
    return Principal(key_id=key.id, scope=key.scope, tenant_id=key.tenant_id, tenant_ids=tenant_ids)
