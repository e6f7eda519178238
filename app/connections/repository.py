"""Queries for Exact connections and the cached reference data of their divisions."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.connections.models import ReferenceItem
from app.orders.checks import VatCodeInfo


async def vat_codes(session: AsyncSession, connection_id: int, division: int) -> dict[str, VatCodeInfo] | None:
    """The division's cached VAT codes by code, or None when they were never loaded."""
    result = await session.execute(
        select(ReferenceItem.code, ReferenceItem.data).where(
            ReferenceItem.connection_id == connection_id,
            ReferenceItem.division == division,
            ReferenceItem.kind == "vat_code",
        )
    )
    rows = result.all()
    if not rows:
        return None
    codes: dict[str, VatCodeInfo] = {}
    for code, data in rows:
        percentage = data.get("percentage")
        codes[code] = VatCodeInfo(
            code=code,
            percentage=Decimal(str(percentage)) if percentage is not None else None,
            type=data.get("type"),
        )
    return codes
