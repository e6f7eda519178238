"""The delivery address of an order, as a delivery address (type 4) of the Exact debtor.

Only when the shop's shipping address differs from its billing address: otherwise the
debtor's own address is where the goods go. For that decision addresses are compared on
street lines, postcode (spaces ignored), city and country, case-insensitively and ignoring
runs of spaces; names and companies do not count (Exact's addresses have no name of their
own). The address is sent as the shop spells it.

Exact's `crm/Addresses` POST returns the existing address when an identical one exists for
the account, so a POST is already "found or created" and needs no look-up before it (a repeat
after an unknown outcome is harmless too). The ID is cached per debtor and address, so a
customer who ships to the same place again costs no call.
"""

from __future__ import annotations

import hashlib
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.booking.links import LinkCache
from app.exact.client import ExactSession
from app.orders.canonical import Address, CanonicalOrder

PATH = "crm/Addresses"
DELIVERY = 4
KIND = "delivery_address"
LINE_MAX = 100


def _identity(address: Address) -> tuple[str, ...]:
    """Where the goods go, tolerant of spelling: case, runs of spaces, spaces in the postcode."""
    def norm(value: str | None) -> str:
        return " ".join((value or "").split()).casefold()

    return (norm(address.line1), norm(address.line2), norm(address.postcode).replace(" ", ""),
            norm(address.city), address.country.upper())


def _exact_identity(address: Address) -> tuple[str, ...]:
    """What Exact compares to return an existing address: each field, case-insensitive."""
    return tuple((value or "").strip().casefold()
                 for value in (address.line1, address.line2, address.postcode, address.city, address.country))


def delivery_address(order: CanonicalOrder) -> Address | None:
    """The shipping address when it differs from the billing address (and has a street or city)."""
    shipping, billing = order.shipping_address, order.billing_address
    if shipping is None or billing is None:
        return None
    if not (shipping.line1 or shipping.city):
        return None
    return shipping if _identity(shipping) != _identity(billing) else None


def cache_key(account_id: str, address: Address) -> str:
    """Per debtor, by Exact's own identity of an address, so the cache and Exact agree."""
    digest = hashlib.sha256("\x1f".join(_exact_identity(address)).encode("utf-8")).hexdigest()[:40]
    return f"{account_id.lower()}:{digest}"


def payload(account_id: str, address: Address) -> dict[str, Any]:
    body: dict[str, Any] = {"Account": account_id, "Type": DELIVERY, "Country": address.country}
    for field, value in (("AddressLine1", address.line1), ("AddressLine2", address.line2),
                         ("Postcode", address.postcode), ("City", address.city)):
        if value:
            body[field] = value[:LINE_MAX]
    return body


async def resolve(sessionmaker: async_sessionmaker[AsyncSession], exact: ExactSession, connection_id: int,
                  division: int, account_id: str, order: CanonicalOrder) -> tuple[str | None, str | None]:
    """(address ID, cache key) of the order's delivery address, or (None, None) if it needs none."""
    address = delivery_address(order)
    if address is None:
        return None, None
    cache = LinkCache(sessionmaker, connection_id, division, KIND)
    key = cache_key(account_id, address)
    known = await cache.get(key)
    if known:
        return known, key
    created = await exact.post(PATH, payload(account_id, address))
    address_id = str(created["ID"])
    await cache.put(key, address_id)
    return address_id, key


async def forget(sessionmaker: async_sessionmaker[AsyncSession], connection_id: int, division: int,
                 key: str) -> None:
    await LinkCache(sessionmaker, connection_id, division, KIND).forget([key])
