"""Pre-checks of a canonical order before it may be booked (SPEC §3 step 4).

They run on the webhook request path, so they are pure and fast: no database, no Exact,
no VIES. Whatever needs a look-up (the division's VAT codes, an earlier booking with the
same order number) is looked up by the caller and handed in through `CheckContext`.

Every check always runs and returns one `CheckResult`, passing or failing, each with a
plain-language message naming the numbers involved, so that an operator can see at once
what to fix. `first_failure` picks the one to store as the order's error.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any

from app.integrations.settings import EXPORT, ICP, IntegrationSettings
from app.orders import vat_numbers
from app.orders.amounts import breakdown, from_cents
from app.orders.canonical import Address, CanonicalOrder

# The 27 member states, with Greece under its ISO code GR (its VAT prefix is EL).
# Northern Ireland (XI) is added: under the Windsor Framework (formerly the Northern
# Ireland Protocol) goods moving between Northern Ireland and the EU are treated as
# intra-EU supplies, so a 0 % supply of goods to a Northern Irish business needs its
# XI VAT number like any ICP, and goods sold to Northern Ireland are not an export.
EU_COUNTRIES: frozenset[str] = frozenset(
    {
        "AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU",
        "IE", "IT", "LT", "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK",
        "XI",
    }
)  # fmt: skip


class OrderKind(StrEnum):
    DOMESTIC = "domestic"  # delivered in the home country (or no address at all)
    EU_CONSUMER = "eu_consumer"  # another EU country with VAT charged, or 0 % without a business
    ICP = "icp"  # intra-community supply: EU business outside the home country, 0 % VAT
    EXPORT = "export"  # outside the EU


@dataclass(frozen=True)
class CheckResult:
    check: str  # "totals" | "icp_vat_number" | "export_vat" | "vat_mapping" | "duplicate"
    ok: bool
    code: str | None  # stable error code when not ok
    message: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class VatCodeInfo:
    """One of the division's Exact VAT codes, as cached from vat/VATCodes."""

    code: str
    percentage: Decimal | None
    type: str | None


@dataclass(frozen=True)
class CheckContext:
    settings: IntegrationSettings
    # The division's cached Exact VAT codes by code; None when they were never loaded.
    vat_codes: Mapping[str, VatCodeInfo] | None
    # Order number/id of another *booked* order with the same order number, if any.
    duplicate_of: str | None = None


# --- formatting -------------------------------------------------------------------------


def _amount(value: Decimal) -> str:
    text = f"{value:.2f}"
    return "−" + text[1:] if text.startswith("-") else text


def _rate(rate: Decimal) -> str:
    """21 → '21', 5.50 → '5.5', 0.00 → '0'."""
    text = format(rate.normalize(), "f")
    return "0" if text in ("-0", "0") else text


def _rates(rates: Iterable[Decimal]) -> str:
    return ", ".join(f"{_rate(rate)} %" for rate in rates)


# --- classification ---------------------------------------------------------------------


def _effective_country(address: Address | None) -> str | None:
    """The address's country, with Northern Ireland (a GB address, BT postcode) as XI."""
    if address is None:
        return None
    if address.country == "GB" and (address.postcode or "").strip().upper().startswith("BT"):
        return "XI"
    return address.country


def _destination(order: CanonicalOrder) -> str | None:
    """Where the goods go: the shipping address, else the billing address."""
    return _effective_country(order.shipping_address or order.billing_address)


def _customer_country(order: CanonicalOrder) -> str | None:
    """Where the customer is established (its VAT number's country): billing, else shipping."""
    return _effective_country(order.billing_address or order.shipping_address)


def _is_business(order: CanonicalOrder) -> bool:
    addresses = (order.billing_address, order.shipping_address)
    return bool(
        order.customer.company
        or order.customer.vat_number
        or any(address is not None and address.company for address in addresses)
    )


def _ordered_rates(order: CanonicalOrder) -> list[Decimal]:
    """The distinct VAT rates of every part, in order of appearance."""
    seen: list[Decimal] = []
    for part in (*order.lines, *order.shipping, *order.payment_costs, *order.discounts):
        if part.vat_rate not in seen:
            seen.append(part.vat_rate)
    return seen


def classify(order: CanonicalOrder, settings: IntegrationSettings) -> OrderKind:
    """Which VAT regime the order falls under, by where it goes and whom to.

    - no address, or delivered in the home country: DOMESTIC;
    - outside the EU: EXPORT;
    - another EU country, every rate 0 % and a business customer (a company name or a VAT
      number): ICP;
    - another EU country otherwise (VAT charged, or 0 % to a consumer): EU_CONSUMER. An EU
      business that is charged VAT is an ordinary (OSS or home-rate) sale, not an ICP.
    """
    destination = _destination(order)
    if destination is None or destination == settings.home_country:
        return OrderKind.DOMESTIC
    if destination not in EU_COUNTRIES:
        return OrderKind.EXPORT
    zero_rated = all(rate == 0 for rate in order.vat_rates())
    if zero_rated and _is_business(order):
        return OrderKind.ICP
    return OrderKind.EU_CONSUMER


def vat_destination(order: CanonicalOrder, settings: IntegrationSettings) -> str:
    """The `VatRule.destination` to look the order's rates up with.

    The home country for domestic orders, "ICP" and "EXPORT" for those, and the
    destination country for other EU sales (OSS: each country has its own codes; a shop
    below the OSS threshold maps that country's rates to its home codes explicitly).
    """
    kind = classify(order, settings)
    if kind is OrderKind.ICP:
        return ICP
    if kind is OrderKind.EXPORT:
        return EXPORT
    if kind is OrderKind.DOMESTIC:
        return settings.home_country
    destination = _destination(order)
    assert destination is not None  # EU_CONSUMER always has one
    return destination


# --- the checks -------------------------------------------------------------------------


def check_totals(order: CanonicalOrder, settings: IntegrationSettings) -> CheckResult:
    b = breakdown(order)
    tolerance_cents = settings.totals_tolerance_cents
    tolerance = _amount(from_cents(tolerance_cents))
    if abs(b.difference_cents) <= tolerance_cents:
        message = f"total {_amount(b.total)} matches within {tolerance}"
        if b.difference_cents:
            message += f" (difference {_amount(b.difference)})"
        return CheckResult("totals", True, None, message)

    terms = (
        f"lines {_amount(b.lines)} + shipping {_amount(b.shipping)} "
        f"+ payment costs {_amount(b.payment_costs)} − discounts {_amount(b.discounts)}"
    )
    if b.prices_include_vat:
        terms += " (prices incl. VAT)"
    else:
        vat_used = b.vat_used
        assert vat_used is not None
        terms += f" + VAT {_amount(vat_used)}"
    message = (
        f"total {_amount(b.total)} ≠ {terms} = {_amount(b.expected_total)} "
        f"(difference {_amount(b.difference)}, tolerance {tolerance})"
    )
    return CheckResult("totals", False, "totals_mismatch", message)


def check_icp_vat_number(order: CanonicalOrder, settings: IntegrationSettings) -> CheckResult:
    kind = classify(order, settings)
    destination = _destination(order)
    if kind is OrderKind.EU_CONSUMER and all(rate == 0 for rate in order.vat_rates()):
        return CheckResult(
            "icp_vat_number",
            False,
            "eu_zero_vat_without_vat_number",
            f"the order goes to {vat_numbers.country_label(destination)} with 0 % VAT, but the "
            "customer has no company and no VAT number; 0 % VAT within the EU is only allowed "
            "for a business customer with a valid VAT number (ICP)",
        )
    if kind is not OrderKind.ICP:
        return CheckResult("icp_vat_number", True, None, f"no ICP order ({kind.value}); no VAT number needed")

    customer_country = _customer_country(order)
    raw = order.customer.vat_number
    if not raw:
        return CheckResult(
            "icp_vat_number",
            False,
            "icp_vat_number_missing",
            f"ICP order (0 % VAT to a business in {vat_numbers.country_label(destination)}) "
            "without a VAT number; the customer's VAT number is required",
        )
    result = vat_numbers.validate(raw, customer_country)
    if not result.ok:
        return CheckResult("icp_vat_number", False, "icp_vat_number_invalid", result.reason)
    if customer_country == settings.home_country:
        return CheckResult(
            "icp_vat_number",
            False,
            "icp_vat_number_invalid",
            f"VAT number {result.normalised} is from the home country "
            f"{vat_numbers.country_label(customer_country)}; 0 % VAT (ICP) needs a VAT number "
            "of another EU country",
        )
    return CheckResult("icp_vat_number", True, None, result.reason)


def check_export_vat(order: CanonicalOrder, settings: IntegrationSettings) -> CheckResult:
    if classify(order, settings) is not OrderKind.EXPORT:
        return CheckResult("export_vat", True, None, "no export order; VAT may be charged")
    destination = vat_numbers.country_label(_destination(order))
    charged = [rate for rate in _ordered_rates(order) if rate != 0]
    if charged:
        return CheckResult(
            "export_vat",
            False,
            "export_vat_not_zero",
            f"the order goes to {destination}, outside the EU, so VAT must be 0 %, "
            f"but it has {_rates(charged)}",
        )
    return CheckResult("export_vat", True, None, f"export to {destination} with 0 % VAT")


def check_vat_mapping(order: CanonicalOrder, ctx: CheckContext) -> CheckResult:
    settings = ctx.settings
    destination = vat_destination(order, settings)
    rates = _ordered_rates(order)

    rules = {rate: settings.vat_rule(destination, rate) for rate in rates}
    unmapped = [rate for rate, rule in rules.items() if rule is None]
    if unmapped:
        what = ", ".join(f"{destination} {_rate(rate)} %" for rate in unmapped)
        return CheckResult(
            "vat_mapping",
            False,
            "vat_code_not_mapped",
            f"no VAT code mapped for {what}; add it to the integration's VAT mapping",
        )
    if ctx.vat_codes is None:
        return CheckResult(
            "vat_mapping",
            False,
            "vat_codes_not_loaded",
            "the VAT codes of this Exact division have not been loaded yet; refresh reference data",
        )
    # Exact pads codes to three characters ('2  '); compare without the padding.
    known = {code.strip() for code in ctx.vat_codes}
    unknown = [
        f"VAT code {rule.vat_code} (mapped for {destination} {_rate(rate)} %)"
        for rate, rule in rules.items()
        if rule is not None and rule.vat_code.strip() not in known
    ]
    if unknown:
        verb = "does" if len(unknown) == 1 else "do"
        return CheckResult(
            "vat_mapping",
            False,
            "vat_code_unknown_in_division",
            f"{', '.join(unknown)} {verb} not exist in the division; "
            "fix the mapping or refresh reference data",
        )
    mapped = ", ".join(
        f"{destination} {_rate(rate)} % → {rule.vat_code}" for rate, rule in rules.items() if rule is not None
    )
    return CheckResult("vat_mapping", True, None, f"VAT codes mapped: {mapped}")


def check_duplicate(order: CanonicalOrder, ctx: CheckContext) -> CheckResult:
    if ctx.duplicate_of is not None:
        return CheckResult(
            "duplicate",
            False,
            "duplicate_order_number",
            f"order number {order.order_number} was already booked as order {ctx.duplicate_of}",
        )
    return CheckResult("duplicate", True, None, f"order number {order.order_number} was not booked before")


def run_checks(order: CanonicalOrder, ctx: CheckContext) -> list[CheckResult]:
    """Every check, in the order in which their failures should be reported."""
    return [
        check_duplicate(order, ctx),
        check_totals(order, ctx.settings),
        check_icp_vat_number(order, ctx.settings),
        check_export_vat(order, ctx.settings),
        check_vat_mapping(order, ctx),
    ]


def first_failure(results: Sequence[CheckResult]) -> CheckResult | None:
    return next((result for result in results if not result.ok), None)
