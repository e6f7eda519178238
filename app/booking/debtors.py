"""Finding or creating the Exact debtor of an order. Existing debtors are never modified.

Order of preference: the fixed debtor mapped for the payment method (never for ICP, which
needs the real customer and VAT number), then the account with the customer's e-mail,
then a new account. E-mail matches are remembered per division, so a returning customer
costs no call at all.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.connections.models import DebtorLink
from app.db.base import utcnow
from app.db.upsert import insert_or_ignore
from app.exact.client import ExactSession
from app.exact.odata import is_guid, odata_string
from app.integrations.settings import IntegrationSettings
from app.orders.canonical import CanonicalOrder
from app.orders.checks import OrderKind

from app.booking.plan import BookingConfigError


def padded_code(code: str) -> str:
    # Exact's account codes are 18 characters, right-aligned; filters must include the padding.
    return code.strip().rjust(18)


async def cached(session: AsyncSession, connection_id: int, division: int, key: str) -> str | None:
    result = await session.execute(select(DebtorLink.account_id).where(
        DebtorLink.connection_id == connection_id, DebtorLink.division == division, DebtorLink.match_key == key))
    return result.scalar_one_or_none()


async def forget_account(session: AsyncSession, connection_id: int, division: int, account_id: str) -> None:
    await session.execute(delete(DebtorLink).where(
        DebtorLink.connection_id == connection_id, DebtorLink.division == division,
        DebtorLink.account_id == account_id))


async def remember(session: AsyncSession, connection_id: int, division: int, key: str, account_id: str,
                   code: str | None, created: bool) -> None:
    await insert_or_ignore(session, DebtorLink, {
        "connection_id": connection_id, "division": division, "match_key": key, "account_id": account_id,
        "account_code": code, "created_by_koppel": created, "created_at": utcnow(),
    }, ["connection_id", "division", "match_key"])


def new_account(order: CanonicalOrder, settings: IntegrationSettings) -> dict[str, Any]:
    address = order.billing_address or order.shipping_address
    name = (order.customer.company or order.customer.name
            or (address.company or address.name if address else None) or order.customer.email
            or f"Klant order {order.order_number}")
    account: dict[str, Any] = {"Name": name[:50], "Status": "C"}
    if order.customer.email:
        account["Email"] = order.customer.email
    if order.customer.vat_number:
        account["VATNumber"] = order.customer.vat_number
    if address is not None:
        account["Country"] = address.country
        if address.line1:
            account["AddressLine1"] = address.line1
        if address.postcode:
            account["Postcode"] = address.postcode
        if address.city:
            account["City"] = address.city
    if settings.payment_condition:
        account["PaymentConditionSales"] = settings.payment_condition
    return account


class DebtorResolver:
    """Per booking attempt. Cache reads and writes are short transactions of their own: no
    database transaction stays open while Exact is called (SQLite would deadlock on the
    token store, PostgreSQL would hold a connection for nothing)."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], exact: ExactSession, connection_id: int,
                 division: int) -> None:
        self.sessionmaker = sessionmaker
        self.from_cache = False  # whether the last resolve() answered from the remembered links
        self.exact = exact
        self.connection_id = connection_id
        self.division = division

    async def resolve(self, order: CanonicalOrder, settings: IntegrationSettings, kind: OrderKind) -> str:
        fixed = settings.fixed_debtors.get(order.payment_method or "") if kind != OrderKind.ICP else None
        if fixed:
            return await self._fixed(fixed)
        if order.customer.email:
            return await self._by_email(order, settings)
        # Nothing to match on: a new debtor per order (documented; shops without e-mail
        # should map a fixed debtor for their payment methods).
        created = await self.exact.post("crm/Accounts", new_account(order, settings))
        return str(created["ID"])

    async def _cached(self, key: str) -> str | None:
        async with self.sessionmaker() as db:
            found = await cached(db, self.connection_id, self.division, key)
        self.from_cache = found is not None
        return found

    async def _remember(self, key: str, account_id: str, code: str | None, created: bool) -> None:
        async with self.sessionmaker() as db, db.begin():
            await remember(db, self.connection_id, self.division, key, account_id, code, created)

    async def _fixed(self, value: str) -> str:
        if is_guid(value):
            return value
        key = f"code:{value.strip()}"
        known = await self._cached(key)
        if known:
            return known
        found = await self.exact.get("crm/Accounts", {
            "$filter": f"Code eq {odata_string(padded_code(value))}", "$select": "ID,Code", "$top": "1"})
        if not found:
            raise BookingConfigError("fixed_debtor_unknown",
                                     f"the fixed debtor {value} does not exist in division {self.division}")
        await self._remember(key, str(found[0]["ID"]), value, False)
        return str(found[0]["ID"])

    async def _by_email(self, order: CanonicalOrder, settings: IntegrationSettings) -> str:
        email = (order.customer.email or "").lower()
        key = f"email:{email}"
        known = await self._cached(key)
        if known:
            return known
        found = await self.exact.get("crm/Accounts", {
            "$filter": f"Email eq {odata_string(email)}", "$select": "ID,Code,Status"})
        customers = [row for row in found if row.get("Status") == "C"]
        if customers:
            account = customers[0]
            await self._remember(key, str(account["ID"]), str(account.get("Code") or "").strip() or None, False)
            return str(account["ID"])
        # No customer with this e-mail (perhaps a prospect, which we may not turn into a
        # customer): create one.
        created = await self.exact.post("crm/Accounts", new_account(order, settings))
        await self._remember(key, str(created["ID"]), str(created.get("Code") or "").strip() or None, True)
        return str(created["ID"])
