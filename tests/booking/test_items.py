"""Items, item lines and delivery addresses: the pure rules, and the item resolver's calls."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import pytest

from app.booking import addresses
from app.booking.item_lines import item_lines, price_lines
from app.booking.items import CODE_MAX, ItemNeed, ItemResolver, derived_code, merge_needs, product_code
from app.booking.plan import BookingConfigError, check_target, plan_entry
from app.exact.errors import ExactValidationError
from app.integrations.settings import IntegrationSettings
from app.orders.amounts import money
from app.orders.canonical import CanonicalOrder
from tests.factories import make_shop, order

# ------------------------------------------------------------------------ item codes


def test_derived_code_is_readable_stable_and_fits_exact() -> None:
    code = derived_code("Mok 'Blauw' 300ml")
    assert code == "KP-MOK-BLAUW-300ML-BA22F354"
    assert derived_code("  mok 'BLAUW'   300ML ") == code  # case and spacing do not matter
    long_names = ["Crème brûlée-set voor 4 personen, extra groot", "x" * 200, "Ä" * 50]
    for name in long_names:
        assert len(derived_code(name)) <= CODE_MAX
        assert re.fullmatch(r"KP-[A-Z0-9-]*-?[0-9A-F]{8}", derived_code(name))
    assert derived_code("Crème brûlée").startswith("KP-CREME-BRULEE-")
    # Names sharing their first 18 characters still get different codes.
    assert derived_code("Wollen sokken maat 39-42") != derived_code("Wollen sokken maat 43-46")
    assert re.fullmatch(r"KP-[0-9A-F]{8}", derived_code("!!!"))


def test_product_code_prefers_the_sku() -> None:
    assert product_code(" ART-1 ", "Whatever") == "ART-1"
    assert product_code(None, "Mok") == derived_code("Mok") == product_code("  ", "Mok")
    too_long = "SKU-" + "9" * 40
    assert product_code(too_long, "Mok") == derived_code(too_long)
    assert product_code("A" * CODE_MAX, "Mok") == "A" * CODE_MAX


def test_merge_needs_keeps_one_per_code_case_insensitively() -> None:
    merged = merge_needs([ItemNeed("abc", "First", "1"), ItemNeed("ABC ", "Second", "2", True),
                          ItemNeed("other", "Other", "2")])
    assert [(need.code, need.description, need.vat_code, need.fractional) for need in merged] == [
        ("abc", "First", "1", True), ("other", "Other", "2", False)]


# --------------------------------------------------------------------- price lines


@pytest.mark.parametrize("quantity", [Decimal(n) for n in (1, 2, 3, 6, 7, 12, -3)])
def test_price_lines_reproduce_the_net_to_the_cent_with_cent_prices(quantity: Decimal) -> None:
    for cents in range(-700, 701, 7):
        net = Decimal(cents) / 100
        pairs = price_lines(net, quantity)
        assert sum((money(q * p) for q, p in pairs), Decimal(0)) == net
        assert sum(q for q, _ in pairs) == quantity  # the same number of pieces
        assert all(p == p.quantize(Decimal("0.01")) for _, p in pairs)
        assert len(pairs) <= 2
        if len(pairs) == 2:
            assert abs(pairs[1][1] - pairs[0][1]) == Decimal("0.01")


def test_price_lines_for_fractional_quantities() -> None:
    for net, quantity in [("10.00", "1.5"), ("1.00", "0.7"), ("12.34", "2.25"), ("0.05", "0.333")]:
        pairs = price_lines(Decimal(net), Decimal(quantity))
        assert sum((money(q * p) for q, p in pairs), Decimal(0)) == Decimal(net)
    assert price_lines(Decimal("9.00"), Decimal("1.5")) == [(Decimal("1.5"), Decimal("6.00"))]


def test_item_lines_split_vat_and_use_the_dummy_items() -> None:
    settings = IntegrationSettings(discount_item_code="MIJN-KORTING")
    canonical = CanonicalOrder.model_validate(order(
        lines=[{"name": "Theedoek", "quantity": 3, "unit_price": "10.00", "vat_rate": 21}],
        shipping=[{"description": "Verzending", "amount": "4.95", "vat_rate": 21}],
        payment_costs=[{"description": "iDEAL", "amount": "0.29", "vat_rate": 21}],
        discounts=[{"description": "Korting", "amount": "1.00", "vat_rate": 21}],
        total="34.25", total_vat=None))  # one cent more than the parts: a rounding line
    plan = plan_entry(canonical, settings)
    lines = item_lines(plan, settings)
    assert [(line.item_code, line.quantity) for line in lines] == [
        (derived_code("Theedoek"), 2), (derived_code("Theedoek"), 1), ("KOPPEL-VERZEND", 1),
        ("KOPPEL-BETAALKOSTEN", 1), ("MIJN-KORTING", 1), ("KOPPEL-AFRONDING", 1)]
    assert sum(line.amount + line.vat for line in lines) == Decimal("34.25")
    assert sum(line.vat for line in lines) == plan.vat_total
    assert lines[-1].amount == Decimal("0.01") and lines[-1].kind == "rounding"
    assert lines[0].vat + lines[1].vat == plan.lines[0].vat
    for line in lines:
        assert money(line.quantity * line.net_price) == line.amount


def test_direct_invoice_needs_a_warehouse_before_anything_else() -> None:
    with pytest.raises(BookingConfigError) as refused:
        check_target(IntegrationSettings(target_document="sales_invoice", invoice_type=8023))
    assert refused.value.code == "warehouse_required" and "8023" in refused.value.message
    check_target(IntegrationSettings(target_document="sales_invoice", invoice_type=8023, warehouse="1"))
    check_target(IntegrationSettings(target_document="sales_order", invoice_type=8023))  # not an invoice
    assert IntegrationSettings().invoice_type == 8020 and IntegrationSettings().ledger_mapping is True


# ------------------------------------------------------------------------ addresses


def _order(**changes: Any) -> CanonicalOrder:
    return CanonicalOrder.model_validate(order(**changes))


def test_delivery_address_only_when_shipping_elsewhere() -> None:
    billing = order()["billing_address"]
    assert addresses.delivery_address(_order()) is None  # no shipping address
    same = {**billing, "name": "Other Name", "line1": "VOORBEELDSTRAAT  1", "postcode": "1000aa"}
    assert addresses.delivery_address(_order(shipping_address=same)) is None
    elsewhere = {**billing, "line1": "Kantoorweg 9"}
    found = addresses.delivery_address(_order(shipping_address=elsewhere))
    assert found is not None and found.line1 == "Kantoorweg 9"
    assert addresses.delivery_address(_order(billing_address=None, shipping_address=elsewhere)) is None
    body = addresses.payload("acc", found)
    assert body == {"Account": "acc", "Type": 4, "Country": "NL", "AddressLine1": "Kantoorweg 9",
                    "Postcode": "1000 AA", "City": "Amsterdam"}
    upper = addresses.delivery_address(_order(shipping_address={**elsewhere, "line1": "KANTOORWEG 9"}))
    assert upper is not None
    assert addresses.cache_key("ACC", found) == addresses.cache_key("acc", upper)


# ------------------------------------------------------------------- item resolver


class FakeExact:
    """Just enough of ExactSession: items by code, every call counted."""

    def __init__(self, items: dict[str, dict[str, Any]] | None = None) -> None:
        self.items = items or {}
        self.calls: list[tuple[str, Any]] = []
        self.refuse_create: str | None = None
        self.created_meanwhile: dict[str, Any] | None = None

    async def get(self, path: str, params: dict[str, str]) -> list[dict[str, Any]]:
        self.calls.append(("GET", params["$filter"]))
        wanted = {value.casefold() for value in re.findall(r"Code eq '((?:[^']|'')*)'", params["$filter"])}
        return [item for code, item in self.items.items() if code.casefold() in wanted]

    async def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        self.calls.append(("POST", body))
        if self.created_meanwhile is not None:
            self.items[body["Code"]] = self.created_meanwhile
        if self.refuse_create:
            raise ExactValidationError(500, self.refuse_create)
        item = {"ID": f"id-{body['Code']}", "Code": body["Code"], "IsSalesItem": True}
        self.items[body["Code"]] = item
        return item


async def test_resolver_looks_up_in_one_call_creates_the_missing_and_caches(sessionmaker) -> None:
    shop = await make_shop(sessionmaker)
    exact = FakeExact({"ARTIKEL-001": {"ID": "seeded", "Code": "ARTIKEL-001", "IsSalesItem": True}})
    resolver = ItemResolver(sessionmaker, exact, shop.connection_id, 1234567)  # type: ignore[arg-type]
    needs = [ItemNeed("artikel-001", "Shirt", "1"), ItemNeed("NEW-1", "Nieuw", "2", True),
             ItemNeed("KOPPEL-VERZEND", "Verzendkosten", "1")]
    found = await resolver.resolve(needs)
    assert found == {"artikel-001": "seeded", "new-1": "id-NEW-1", "koppel-verzend": "id-KOPPEL-VERZEND"}
    assert [kind for kind, _ in exact.calls] == ["GET", "POST", "POST"]
    assert exact.calls[1][1] == {"Code": "NEW-1", "Description": "Nieuw", "IsSalesItem": True,
                                 "SalesVatCode": "2", "IsFractionAllowedItem": True}
    exact.calls.clear()
    again = ItemResolver(sessionmaker, exact, shop.connection_id, 1234567)  # type: ignore[arg-type]
    assert await again.resolve(needs) == found
    assert exact.calls == []  # all cached
    other_division = ItemResolver(sessionmaker, exact, shop.connection_id, 7654321)  # type: ignore[arg-type]
    await other_division.resolve(needs[:1])
    assert [kind for kind, _ in exact.calls] == ["GET"]  # the cache is per division


async def test_resolver_batches_look_ups_of_many_codes(sessionmaker) -> None:
    shop = await make_shop(sessionmaker)
    exact = FakeExact({f"C{n}": {"ID": f"i{n}", "Code": f"C{n}", "IsSalesItem": True} for n in range(45)})
    resolver = ItemResolver(sessionmaker, exact, shop.connection_id, 1234567)  # type: ignore[arg-type]
    found = await resolver.resolve([ItemNeed(f"C{n}", "x", "1") for n in range(45)])
    assert len(found) == 45 and [kind for kind, _ in exact.calls] == ["GET", "GET", "GET"]


async def test_resolver_never_changes_an_item_that_is_not_for_sale(sessionmaker) -> None:
    shop = await make_shop(sessionmaker)
    exact = FakeExact({"INKOOP": {"ID": "p", "Code": "INKOOP", "IsSalesItem": False}})
    resolver = ItemResolver(sessionmaker, exact, shop.connection_id, 1234567)  # type: ignore[arg-type]
    with pytest.raises(BookingConfigError) as refused:
        await resolver.resolve([ItemNeed("INKOOP", "x", "1")])
    assert refused.value.code == "item_not_sales_item" and "INKOOP" in refused.value.message
    assert [kind for kind, _ in exact.calls] == ["GET"]  # no POST, no PUT
    assert await resolver.cache.get_many(["inkoop"]) == {}


async def test_resolver_uses_an_item_created_meanwhile_or_explains_a_refusal(sessionmaker) -> None:
    shop = await make_shop(sessionmaker)
    exact = FakeExact()
    exact.refuse_create = "Gegeven bestaat reeds"
    exact.created_meanwhile = {"ID": "theirs", "Code": "RACE", "IsSalesItem": True}
    resolver = ItemResolver(sessionmaker, exact, shop.connection_id, 1234567)  # type: ignore[arg-type]
    assert await resolver.resolve([ItemNeed("RACE", "x", "1")]) == {"race": "theirs"}
    assert [kind for kind, _ in exact.calls] == ["GET", "POST", "GET"]

    exact = FakeExact()
    exact.refuse_create = "Ongeldige referentie: Btw-code"
    resolver = ItemResolver(sessionmaker, exact, shop.connection_id, 1234567)  # type: ignore[arg-type]
    with pytest.raises(BookingConfigError) as refused:
        await resolver.resolve([ItemNeed("BAD", "x", "99")])
    assert refused.value.code == "item_refused" and "Btw-code" in refused.value.message
