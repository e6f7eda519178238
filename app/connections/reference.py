"""Exact reference data per division, fetched through the rate-limited client and cached.

Booking and the pre-checks read codes (VAT codes, GL accounts, journals, …) from this cache
instead of asking Exact on every order: Exact's budget is 60 calls a minute per division.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.connections.models import ReferenceItem
from app.db.base import utcnow
from app.exact.client import ExactSession


def _percent(fraction: Any) -> str | None:
    # Exact's VATCodes.Percentage is a fraction (0.21); Koppel speaks percent (21).
    if fraction is None:
        return None
    return str((Decimal(str(fraction)) * 100).normalize())


@dataclass(frozen=True)
class ReferenceKind:
    kind: str
    path: str
    select: str
    code_field: str
    describe: Callable[[dict[str, Any]], dict[str, Any]]
    id_field: str | None = "ID"


KINDS: dict[str, ReferenceKind] = {
    kind.kind: kind
    for kind in (
        ReferenceKind("vat_code", "vat/VATCodes",
                      "ID,Code,Description,Type,Percentage,VATTransactionType,EUSalesListing,OssCountry,IsBlocked",
                      "Code", lambda r: {"percentage": _percent(r.get("Percentage")), "type": r.get("Type"),
                                         "transaction_type": r.get("VATTransactionType"),
                                         "eu_sales_listing": r.get("EUSalesListing"),
                                         "oss_country": r.get("OssCountry"), "blocked": bool(r.get("IsBlocked"))}),
        ReferenceKind("gl_account", "financial/GLAccounts", "ID,Code,Description,Type,BalanceType,IsBlocked",
                      "Code", lambda r: {"type": r.get("Type"), "balance_type": r.get("BalanceType"),
                                         "blocked": bool(r.get("IsBlocked"))}),
        ReferenceKind("journal", "financial/Journals", "ID,Code,Description,Type,IsBlocked", "Code",
                      lambda r: {"type": r.get("Type"), "blocked": bool(r.get("IsBlocked"))}),
        ReferenceKind("payment_condition", "cashflow/PaymentConditions", "ID,Code,Description,PaymentDays",
                      "Code", lambda r: {"payment_days": r.get("PaymentDays")}),
    )
}
BOOKING_KINDS = ("vat_code", "gl_account", "journal", "payment_condition")


async def fetch(exact: ExactSession, kinds: tuple[str, ...] = BOOKING_KINDS) -> dict[str, list[dict[str, Any]]]:
    """Read each kind from Exact (no database transaction is open meanwhile)."""
    return {name: await exact.get_all(KINDS[name].path, {"$select": KINDS[name].select}) for name in kinds}


async def store(session: AsyncSession, connection_id: int, division: int,
                fetched: dict[str, list[dict[str, Any]]]) -> dict[str, int]:
    """Replace the cached rows of each fetched kind; returns counts."""
    counts: dict[str, int] = {}
    now = utcnow()
    for name, rows in fetched.items():
        kind = KINDS[name]
        await session.execute(delete(ReferenceItem).where(
            ReferenceItem.connection_id == connection_id, ReferenceItem.division == division,
            ReferenceItem.kind == name))
        for row in rows:
            code = str(row.get(kind.code_field) or "").strip()
            if not code:
                continue
            session.add(ReferenceItem(
                connection_id=connection_id, division=division, kind=name, code=code,
                exact_id=str(row[kind.id_field]) if kind.id_field and row.get(kind.id_field) else None,
                description=(row.get("Description") or "")[:300] or None,
                data=kind.describe(row), refreshed_at=now,
            ))
        counts[name] = len(rows)
    await session.flush()
    return counts


async def refresh(sessionmaker: async_sessionmaker[AsyncSession], exact: ExactSession, connection_id: int,
                  division: int, kinds: tuple[str, ...] = BOOKING_KINDS) -> dict[str, int]:
    """Fetch from Exact, then replace the cache in one short transaction."""
    fetched = await fetch(exact, kinds)
    async with sessionmaker() as session, session.begin():
        return await store(session, connection_id, division, fetched)


async def lookup(session: AsyncSession, connection_id: int, division: int, kind: str) -> dict[str, ReferenceItem]:
    result = await session.execute(select(ReferenceItem).where(
        ReferenceItem.connection_id == connection_id, ReferenceItem.division == division,
        ReferenceItem.kind == kind))
    return {item.code: item for item in result.scalars()}
