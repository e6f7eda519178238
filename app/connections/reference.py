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


# Exact's VATCodes.Type: B 0 % (base only), E excluding, I including, N no VAT.
VAT_TYPES = {"B": "zero", "E": "excl", "I": "incl", "N": "none"}
# EUSalesListing (the ICP / EU sales list): L goods, S services, T triangulation, N none.
EU_LISTINGS = {"L": "goods", "S": "services", "T": "triangulation", "N": "none"}
# Journals.Type
JOURNAL_TYPES = {10: "cash", 12: "bank", 16: "payment_service", 20: "sales", 21: "return_invoice",
                 22: "purchase", 90: "general"}
GL_REVENUE_TYPE = 110  # GLAccounts.Type "Revenue"; with BalanceType W (profit & loss)


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _vat_code(r: dict[str, Any]) -> dict[str, Any]:
    listing = r.get("EUSalesListing") or None
    return {
        "percentage": _percent(r.get("Percentage")),
        "type": r.get("Type"),
        "vat_type": VAT_TYPES.get(r.get("Type") or ""),
        "transaction_type": r.get("VATTransactionType"),
        "sales": (r.get("VATTransactionType") or "S") in ("S", "B"),
        "eu_sales_listing": listing,
        "eu_listing": EU_LISTINGS.get(listing or "N", listing),
        "icp": listing in ("L", "S", "T"),
        "charged": bool(r.get("Charged")),
        "oss_country": (r.get("OssCountry") or "").strip().upper() or None,
        "blocked": bool(r.get("IsBlocked")),
    }


def _gl_account(r: dict[str, Any]) -> dict[str, Any]:
    gl_type, balance = _int(r.get("Type")), r.get("BalanceType")
    return {
        "type": gl_type,
        "type_description": r.get("TypeDescription"),
        "balance_type": balance,
        "profit_loss": balance == "W",
        "revenue": gl_type == GL_REVENUE_TYPE and balance == "W",
        "vat_code": (r.get("VATCode") or "").strip() or None,
        "cost_center_mandatory": _int(r.get("UseCostcenter")) == 1,
        "cost_unit_mandatory": _int(r.get("UseCostunit")) == 1,
        "blocked": bool(r.get("IsBlocked")),
    }


def _journal(r: dict[str, Any]) -> dict[str, Any]:
    journal_type = _int(r.get("Type"))
    return {"type": journal_type, "type_name": JOURNAL_TYPES.get(journal_type or -1, "other"),
            "currency": r.get("Currency"), "blocked": bool(r.get("IsBlocked"))}


KINDS: dict[str, ReferenceKind] = {
    kind.kind: kind
    for kind in (
        ReferenceKind("vat_code", "vat/VATCodes",
                      "ID,Code,Description,Type,Percentage,VATTransactionType,EUSalesListing,Charged,OssCountry,"
                      "IsBlocked", "Code", _vat_code),
        ReferenceKind("gl_account", "financial/GLAccounts",
                      "ID,Code,Description,Type,TypeDescription,BalanceType,VATCode,UseCostcenter,UseCostunit,"
                      "IsBlocked", "Code", _gl_account),
        ReferenceKind("journal", "financial/Journals", "ID,Code,Description,Type,Currency,IsBlocked", "Code",
                      _journal),
        ReferenceKind("payment_condition", "cashflow/PaymentConditions",
                      "ID,Code,Description,PaymentDays,PaymentMethod", "Code",
                      lambda r: {"payment_days": r.get("PaymentDays"), "payment_method": r.get("PaymentMethod")}),
        ReferenceKind("warehouse", "inventory/Warehouses", "ID,Code,Description,Main", "Code",
                      lambda r: {"main": bool(r.get("Main"))}),
        ReferenceKind("cost_center", "hrm/CostCenters", "ID,Code,Description,Active", "Code",
                      lambda r: {"active": r.get("Active") is not False, "blocked": r.get("Active") is False}),
        ReferenceKind("cost_unit", "hrm/CostUnits", "ID,Code,Description", "Code", lambda r: {}),
        ReferenceKind("project", "project/Projects", "ID,Code,Description,Type,TypeDescription,AccountName",
                      "Code", lambda r: {"type": _int(r.get("Type")), "type_description": r.get("TypeDescription"),
                                         "account_name": r.get("AccountName")}),
    )
}
BOOKING_KINDS = ("vat_code", "gl_account", "journal", "payment_condition")
# Everything a configuration screen offers (and the nightly refresh keeps current).
ALL_KINDS = tuple(KINDS)


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
