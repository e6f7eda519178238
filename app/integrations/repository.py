"""Queries for integrations."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.integrations.models import Integration


async def get_by_key(session: AsyncSession, key: str) -> Integration | None:
    result = await session.execute(select(Integration).where(Integration.key == key))
    return result.scalar_one_or_none()


async def get(session: AsyncSession, integration_id: int) -> Integration | None:
    return await session.get(Integration, integration_id)


async def list_for_tenants(session: AsyncSession, tenant_ids: Sequence[int] | None) -> list[Integration]:
    query = select(Integration).order_by(Integration.id)
    if tenant_ids is not None:
        query = query.where(Integration.tenant_id.in_(tenant_ids))
    return list((await session.execute(query)).scalars())
