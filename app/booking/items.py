"""Exact items for the lines of sales invoices and sales orders: matched by code, else created.

Every line of an item-based document needs an item (`logistics/Items`). Koppel matches it
by *code* and never changes an existing item.

Item codes
----------
* A product line with a SKU uses the SKU (trimmed) as the item code, as long as it fits in
  Exact's item code (30 characters).
* A product line without a SKU, or with a longer one, gets a code derived from its name (or
  from the long SKU), stable across orders::

      "KP-" + SLUG + "-" + HASH              (at most 3 + 18 + 1 + 8 = 30 characters)

  SLUG is the text with accents removed, upper-cased, every run of other characters than
  A–Z and 0–9 turned into one "-", cut to 18 characters; HASH is the first 8 hex digits
  (upper case) of the SHA-1 of the text case-folded with its whitespace collapsed. So
  "Mok 'Blauw' 300ml" → ``KP-MOK-BLAUW-300ML-BA22F354``: readable in Exact, the same code for
  the same name in every order (in any letter case or spacing), different for names that
  share their first 18 characters. A text without letters or digits gives ``KP-`` + HASH.
  Renaming a product in the shop therefore gives it a new item; give products SKUs to
  avoid that.
* Shipping, payment costs, discounts and a booked rounding difference go on dummy items
  whose codes come from the integration settings (``KOPPEL-VERZEND``, ``KOPPEL-BETAALKOSTEN``,
  ``KOPPEL-KORTING``, ``KOPPEL-AFRONDING`` by default); each is found or created once per
  division.

Matching and creating
---------------------
Codes are compared the way Exact (SQL Server) does: case-insensitive, trailing spaces
ignored. Known codes come from the per-division cache (`ExactLink`, kind ``item``), so a
returning product costs no call. Unknown codes are looked up together (one GET with an
``or`` filter per 20 codes — Items have mandatory filtering, and Code is one of the allowed
filter fields). A code still missing is created with its description, ``IsSalesItem`` true,
the sales VAT code of the first line that needs it, and ``IsFractionAllowedItem`` when that
line has a fractional quantity; no price and no revenue account (the item group's applies
when the integration turns ledger mapping off). An item that exists but is not a sales item
is not changed: the booking stops with a message instead. If creating fails because another
booking created the same code a moment earlier, the code is looked up again and that item is
used.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.booking.links import LinkCache
from app.booking.plan import BookingConfigError
from app.exact.client import ExactSession
from app.exact.errors import ExactValidationError
from app.exact.odata import odata_string
from app.integrations.settings import IntegrationSettings

PATH = "logistics/Items"
CODE_MAX = 30  # Exact's item code length
DESCRIPTION_MAX = 60
PREFIX = "KP-"
SLUG_MAX = 18
HASH_LENGTH = 8
LOOKUP_BATCH = 20
KIND = "item"


def _slug(text: str) -> str:
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return re.sub(r"[^A-Z0-9]+", "-", plain.upper()).strip("-")


def derived_code(text: str) -> str:
    """The stable item code for a product without a usable SKU (see the module docstring)."""
    canonical = " ".join(text.split()).casefold()
    digest = hashlib.sha1(canonical.encode("utf-8")).hexdigest()[:HASH_LENGTH].upper()
    slug = _slug(text)[:SLUG_MAX].rstrip("-")
    return f"{PREFIX}{slug}-{digest}" if slug else f"{PREFIX}{digest}"


def product_code(sku: str | None, name: str) -> str:
    """The item code of a product line: its SKU if it fits, else one derived from the name."""
    sku = (sku or "").strip()
    if sku and len(sku) <= CODE_MAX:
        return sku
    return derived_code(sku or name)


def code_key(code: str) -> str:
    """How Exact compares item codes: case-insensitive, trailing spaces ignored."""
    return code.strip().casefold()


def dummy_code(kind: str, settings: IntegrationSettings) -> str:
    """The item code for a part that is not a product (`kind` as in `PlannedLine.kind`)."""
    codes = {
        "shipping": settings.shipping_item_code,
        "payment_costs": settings.payment_costs_item_code,
        "discount": settings.discount_item_code,
        "rounding": settings.rounding_item_code,
    }
    return codes[kind]


DUMMY_DESCRIPTIONS = {
    "shipping": "Verzendkosten",
    "payment_costs": "Betaalkosten",
    "discount": "Korting",
    "rounding": "Afrondingsverschil",
}


@dataclass(frozen=True)
class ItemNeed:
    """An item a document line needs: what to create if the code is unknown in Exact."""

    code: str
    description: str
    vat_code: str
    fractional: bool = False

    @property
    def key(self) -> str:
        return code_key(self.code)


def merge_needs(needs: Iterable[ItemNeed]) -> list[ItemNeed]:
    """One need per code: the first line's description and VAT code, fractional if any line is."""
    merged: dict[str, ItemNeed] = {}
    for need in needs:
        first = merged.get(need.key)
        if first is None:
            merged[need.key] = need
        elif need.fractional and not first.fractional:
            merged[need.key] = ItemNeed(first.code, first.description, first.vat_code, True)
    return list(merged.values())


def new_item(need: ItemNeed) -> dict[str, Any]:
    body: dict[str, Any] = {
        "Code": need.code,
        "Description": (need.description.strip() or need.code)[:DESCRIPTION_MAX],
        "IsSalesItem": True,
        "SalesVatCode": need.vat_code,
    }
    if need.fractional:
        body["IsFractionAllowedItem"] = True
    return body


def is_fractional(quantity: Decimal) -> bool:
    return quantity != quantity.to_integral_value()


class ItemResolver:
    """Finds or creates the items of one document; one instance per booking attempt."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], exact: ExactSession, connection_id: int,
                 division: int) -> None:
        self.exact = exact
        self.division = division
        self.cache = LinkCache(sessionmaker, connection_id, division, KIND)

    async def resolve(self, needs: Sequence[ItemNeed]) -> dict[str, str]:
        """Item ID by `code_key` for every need."""
        wanted = merge_needs(needs)
        found = await self.cache.get_many(need.key for need in wanted)
        missing = [need for need in wanted if need.key not in found]
        if missing:
            for need, item_id in (await self._look_up(missing)).items():
                found[need.key] = item_id
                await self.cache.put(need.key, item_id, code=need.code, created=False)
        for need in wanted:
            if need.key not in found:
                found[need.key] = await self._create(need)
        return found

    async def forget(self, keys: Iterable[str]) -> None:
        """Drop cached links (Exact refused one of them: the item was deleted or blocked)."""
        await self.cache.forget(keys)

    async def _look_up(self, needs: Sequence[ItemNeed]) -> dict[ItemNeed, str]:
        result: dict[ItemNeed, str] = {}
        for start in range(0, len(needs), LOOKUP_BATCH):
            batch = needs[start:start + LOOKUP_BATCH]
            rows = await self.exact.get(PATH, {
                "$filter": " or ".join(f"Code eq {odata_string(need.code)}" for need in batch),
                "$select": "ID,Code,IsSalesItem",
            })
            by_key = {code_key(str(row.get("Code") or "")): row for row in rows}
            for need in batch:
                row = by_key.get(need.key)
                if row is None:
                    continue
                if row.get("IsSalesItem") is False:
                    raise BookingConfigError(
                        "item_not_sales_item",
                        f"item {str(row.get('Code')).strip()} exists in division {self.division} but is not a "
                        "sales item; Koppel does not change existing items: mark it as a sales item in Exact, "
                        "then reprocess")
                result[need] = str(row["ID"])
        return result

    async def _create(self, need: ItemNeed) -> str:
        try:
            created = await self.exact.post(PATH, new_item(need))
        except ExactValidationError as exc:
            # Perhaps another booking created this code a moment ago: use that item.
            again = await self._look_up([need])
            if need in again:
                await self.cache.put(need.key, again[need], code=need.code, created=False)
                return again[need]
            raise BookingConfigError(
                "item_refused", f"Exact refused to create item {need.code}: {exc.message}") from exc
        item_id = str(created["ID"])
        await self.cache.put(need.key, item_id, code=need.code, created=True)
        return item_id
