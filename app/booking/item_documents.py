"""What sales invoices and sales orders share: items, warehouse, delivery address, sending.

`prepare` resolves everything the document refers to — items, the warehouse, the delivery
address and (for invoices with ledger mapping) the GL accounts — before `send` marks the
order as sent and posts the document. Every reference is cached per division, so a repeat
customer buying known products costs exactly one call: the document itself.

When Exact refuses the document because a cached reference no longer exists (an item,
warehouse or address deleted in Exact), that cache entry is dropped, so the reprocess
finds or creates it again instead of failing the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from app.booking import addresses
from app.booking.item_lines import ItemLine, item_lines
from app.booking.items import ItemResolver, code_key
from app.booking.links import LinkCache
from app.booking.plan import BookingConfigError
from app.exact.errors import ExactValidationError
from app.exact.odata import is_guid, odata_string

if TYPE_CHECKING:
    from app.booking.targets import BookingContext

WAREHOUSES = "inventory/Warehouses"


@dataclass
class Prepared:
    lines: list[ItemLine]
    items: dict[str, str]  # code_key → item ID
    gl_ids: dict[str, str] | None = None  # GL code → GL ID; None: no GL on the lines
    warehouse_id: str | None = None
    delivery_address_id: str | None = None
    address_key: str | None = None
    warehouse_key: str | None = None

    def item_id(self, line: ItemLine) -> str:
        return self.items[code_key(line.item_code)]


async def warehouse_id(ctx: BookingContext) -> tuple[str | None, str | None]:
    """(ID, cache key) of the integration's warehouse; a GUID is used as it is."""
    value = ctx.settings.warehouse
    if not value:
        return None, None
    if is_guid(value):
        return value, None
    cache = LinkCache(ctx.sessionmaker, ctx.connection_id, ctx.division, "warehouse")
    key = value.casefold()
    known = await cache.get(key)
    if known:
        return known, key
    found = await ctx.exact.get(WAREHOUSES, {"$filter": f"Code eq {odata_string(value)}", "$select": "ID,Code"})
    if not found:
        raise BookingConfigError("warehouse_unknown",
                                 f"warehouse {value} does not exist in division {ctx.division} "
                                 "(fix the integration's warehouse)")
    await cache.put(key, str(found[0]["ID"]), code=value, created=False)
    return str(found[0]["ID"]), key


async def _gl_ids(ctx: BookingContext, lines: list[ItemLine]) -> dict[str, str]:
    known = await ctx.gl_accounts()
    result: dict[str, str] = {}
    for line in lines:
        gl = known.get(line.gl_code)
        if gl is None or not gl.exact_id:
            raise BookingConfigError("gl_account_unknown",
                                     f"GL account {line.gl_code} does not exist in the division "
                                     "(fix the mapping or refresh reference data)")
        result[line.gl_code] = gl.exact_id
    return result


async def prepare(ctx: BookingContext, *, with_gl: bool, with_warehouse: bool) -> Prepared:
    lines = item_lines(ctx.plan, ctx.settings)
    # Cheap, cached checks first, so a bad mapping costs no item calls.
    gl_ids = await _gl_ids(ctx, lines) if with_gl else None
    resolver = ItemResolver(ctx.sessionmaker, ctx.exact, ctx.connection_id, ctx.division)
    items = await resolver.resolve([line.need() for line in lines])
    warehouse, warehouse_key = await warehouse_id(ctx) if with_warehouse else (None, None)
    address_id, address_key = await addresses.resolve(ctx.sessionmaker, ctx.exact, ctx.connection_id,
                                                      ctx.division, ctx.debtor_id, ctx.order)
    return Prepared(lines=lines, items=items, gl_ids=gl_ids, warehouse_id=warehouse,
                    delivery_address_id=address_id, address_key=address_key, warehouse_key=warehouse_key)


async def send(ctx: BookingContext, path: str, body: dict[str, Any], prepared: Prepared) -> dict[str, Any]:
    """Mark the order as sent, then create the document (never re-sent blindly: see targets)."""
    await ctx.mark_sent()
    try:
        return await ctx.exact.post(path, body)
    except ExactValidationError as exc:
        await _forget_refused(ctx, exc.message, prepared)
        raise


async def _forget_refused(ctx: BookingContext, message: str, prepared: Prepared) -> None:
    text = message.casefold()
    if "artikel" in text or "item" in text:
        resolver = ItemResolver(ctx.sessionmaker, ctx.exact, ctx.connection_id, ctx.division)
        await resolver.forget(prepared.items)
    if ("magazijn" in text or "warehouse" in text) and prepared.warehouse_key:
        await LinkCache(ctx.sessionmaker, ctx.connection_id, ctx.division, "warehouse").forget(
            [prepared.warehouse_key])
    if ("adres" in text or "address" in text) and prepared.address_key:
        await addresses.forget(ctx.sessionmaker, ctx.connection_id, ctx.division, prepared.address_key)
