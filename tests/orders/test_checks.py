"""The pre-checks of an order: totals, ICP VAT number, export VAT, VAT mapping, duplicates."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from stdnum.eu import vat as stdnum_vat

from app.integrations.settings import IntegrationSettings, VatRule, default_vat_rules
from app.orders.canonical import CanonicalOrder
from app.orders.checks import (
    EU_COUNTRIES,
    CheckContext,
    CheckResult,
    OrderKind,
    VatCodeInfo,
    classify,
    first_failure,
    run_checks,
    vat_destination,
)

D = Decimal
CHECKS = ["duplicate", "totals", "icp_vat_number", "export_vat", "vat_mapping"]

# A Dutch division's cached VAT codes (Exact pads codes to three characters).
VAT_CODES = {
    code: VatCodeInfo(code, D(pct), kind)
    for code, pct, kind in [
        ("0  ", "0", "B"), ("1  ", "21", "E"), ("2  ", "9", "E"), ("5  ", "0", "B"),
        ("6  ", "0", "B"), ("B21", "21", "E"), ("B6 ", "6", "E"),
    ]
}  # fmt: skip


def settings(**overrides: Any) -> IntegrationSettings:
    return IntegrationSettings(**overrides)


def ctx(s: IntegrationSettings | None = None, *, vat_codes: Any = VAT_CODES, duplicate_of: str | None = None) -> CheckContext:
    return CheckContext(settings=s or settings(), vat_codes=vat_codes, duplicate_of=duplicate_of)


def order(**fields: Any) -> CanonicalOrder:
    """A paid Dutch consumer order of 121.00 incl. VAT, with `fields` replacing parts of it."""
    data: dict[str, Any] = {
        "source_order_id": "5001",
        "order_number": "1001",
        "order_date": "2026-11-20T10:15:00+01:00",
        "prices_include_vat": True,
        "customer": {"email": "jane.doe@example.com", "name": "Jane Doe"},
        "billing_address": {"country": "NL", "postcode": "1011 AB"},
        "lines": [{"name": "Lamp", "sku": "L-1", "quantity": 1, "unit_price": "121.00", "vat_rate": 21}],
        "total": "121.00",
        "status": "paid",
    }
    data.update(fields)
    return CanonicalOrder.model_validate(data)


def b2b_order(country: str, vat_number: str | None, **fields: Any) -> CanonicalOrder:
    """A 0 % order of 100.00 to a company in `country`."""
    data: dict[str, Any] = {
        "customer": {"email": "inkoop@example.com", "company": "Example BV", "vat_number": vat_number},
        "billing_address": {"country": country, "company": "Example BV"},
        "lines": [{"name": "Lamp", "quantity": 1, "unit_price": "100.00", "vat_rate": 0}],
        "total": "100.00",
    }
    return order(**{**data, **fields})


def result(results: list[CheckResult], check: str) -> CheckResult:
    return next(r for r in results if r.check == check)


def check(o: CanonicalOrder, name: str, c: CheckContext | None = None) -> CheckResult:
    return result(run_checks(o, c or ctx()), name)


# --- run_checks as a whole ----------------------------------------------------------------


def test_a_clean_domestic_order_passes_every_check_with_a_message() -> None:
    results = run_checks(order(), ctx())
    assert [r.check for r in results] == CHECKS
    assert all(r.ok and r.code is None and r.message for r in results), results
    assert first_failure(results) is None
    assert result(results, "totals").message == "total 121.00 matches within 0.01"
    assert result(results, "vat_mapping").message == "VAT codes mapped: NL 21 % → 1"


def test_all_checks_run_even_when_several_fail() -> None:
    bad = order(
        shipping_address={"country": "US"},
        total="130.00",
    )
    results = run_checks(bad, ctx(duplicate_of="17"))
    assert [r.check for r in results] == CHECKS
    codes = {r.check: r.code for r in results}
    assert codes == {
        "duplicate": "duplicate_order_number",
        "totals": "totals_mismatch",
        "icp_vat_number": None,
        "export_vat": "export_vat_not_zero",
        "vat_mapping": "vat_code_not_mapped",
    }
    failure = first_failure(results)
    assert failure is not None and failure.code == "duplicate_order_number"


def test_as_dict() -> None:
    r = check(order(total="125.00"), "totals")
    assert r.as_dict() == {"check": "totals", "ok": False, "code": "totals_mismatch", "message": r.message}


def test_first_failure_picks_the_first_failing_result() -> None:
    results = [
        CheckResult("duplicate", True, None, "fine"),
        CheckResult("totals", False, "totals_mismatch", "a"),
        CheckResult("vat_mapping", False, "vat_code_not_mapped", "b"),
    ]
    assert first_failure(results) is results[1]
    assert first_failure(results[:1]) is None
    assert first_failure([]) is None


# --- totals ---------------------------------------------------------------------------------


def test_totals_incl_with_shipping_payment_costs_and_discounts() -> None:
    o = order(
        lines=[{"name": "Mug", "quantity": 2, "unit_price": "12.50", "vat_rate": 21},
               {"name": "Tea", "quantity": 1, "unit_price": "4.36", "vat_rate": 9}],
        shipping=[{"amount": "6.95", "vat_rate": 21}],
        payment_costs=[{"amount": "0.29", "vat_rate": 21}],
        discounts=[{"amount": "2.50", "vat_rate": 21}],
        total="34.10",
    )
    assert check(o, "totals") == CheckResult("totals", True, None, "total 34.10 matches within 0.01")
    wrong = o.model_copy(update={"total": D("36.60")})
    r = check(wrong, "totals")
    assert r.code == "totals_mismatch"
    assert r.message == (
        "total 36.60 ≠ lines 29.36 + shipping 6.95 + payment costs 0.29 − discounts 2.50 "
        "(prices incl. VAT) = 34.10 (difference 2.50, tolerance 0.01)"
    )
    assert "VAT " not in r.message.replace("incl. VAT", "")


def test_totals_excl_with_computed_vat_names_every_number() -> None:
    o = order(
        prices_include_vat=False,
        lines=[{"name": "Lamp", "quantity": 1, "unit_price": "100.00", "vat_rate": 21}],
        shipping=[{"amount": "6.05", "vat_rate": 21}],
        total="121.00",
    )
    r = check(o, "totals")
    assert not r.ok
    assert r.message == (
        "total 121.00 ≠ lines 100.00 + shipping 6.05 + payment costs 0.00 − discounts 0.00 "
        "+ VAT 22.27 = 128.32 (difference −7.32, tolerance 0.01)"
    )
    assert check(o.model_copy(update={"total": D("128.32")}), "totals").ok


def test_totals_excl_with_shipping_payment_costs_discounts_and_the_shops_vat() -> None:
    o = order(
        prices_include_vat=False,
        lines=[{"name": "Lamp", "quantity": 2, "unit_price": "40.00", "vat_rate": 21}],
        shipping=[{"amount": "5.00", "vat_rate": 21}],
        payment_costs=[{"amount": "1.00", "vat_rate": 21}],
        discounts=[{"amount": "8.00", "vat_rate": 21}],
        total_vat="16.38",
        total="94.38",
    )
    assert check(o, "totals").ok
    # the shop's VAT is what the total is checked against, not the recomputed one
    r = check(o.model_copy(update={"total_vat": D("17.38")}), "totals")
    assert not r.ok
    assert "+ VAT 17.38 = 95.38 (difference −1.00, tolerance 0.01)" in r.message


@pytest.mark.parametrize(("total", "ok"), [("121.01", True), ("120.99", True), ("121.02", False), ("120.98", False)])
def test_totals_tolerance_edge_of_one_cent(total: str, ok: bool) -> None:
    r = check(order(total=total), "totals")
    assert r.ok is ok
    if ok:
        assert r.message.startswith(f"total {total} matches within 0.01 (difference ")
    else:
        assert r.code == "totals_mismatch"
        assert r.message.endswith("tolerance 0.01)")


def test_totals_tolerance_comes_from_the_settings() -> None:
    strict = ctx(settings(totals_tolerance_cents=0))
    assert not check(order(total="121.01"), "totals", strict).ok
    assert check(order(total="121.00"), "totals", strict).ok
    loose = ctx(settings(totals_tolerance_cents=5))
    r = check(order(total="121.05"), "totals", loose)
    assert r.ok and r.message == "total 121.05 matches within 0.05 (difference 0.05)"
    assert not check(order(total="121.06"), "totals", loose).ok


def test_totals_with_php_float_amounts() -> None:
    # JSON floats as a PHP shop sends them; excl. VAT 9 % on 3 × 5.068226 = 15.20 → 1.37.
    o = CanonicalOrder.model_validate({
        "source_order_id": 88, "order_number": 88, "order_date": "2026-11-20T10:15:00",
        "prices_include_vat": False, "status": "paid",
        "billing_address": {"country": "NL"},
        "lines": [{"name": "Tea", "quantity": 3.0, "unit_price": 5.0682260000000001, "vat_rate": 9.0}],
        "shipping": [{"amount": 4.1322314049586776, "vat_rate": 21.0}],
        "total": 21.570000000000000284,
    })
    results = run_checks(o, ctx())
    assert result(results, "totals").ok, result(results, "totals").message
    assert result(results, "vat_mapping").ok
    assert not check(o.model_copy(update={"total": D("21.600000000000001")}), "totals").ok


# --- classification -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "kind", "destination"),
    [
        ({}, OrderKind.DOMESTIC, "NL"),
        ({"billing_address": None}, OrderKind.DOMESTIC, "NL"),
        ({"shipping_address": {"country": "BE"}}, OrderKind.EU_CONSUMER, "BE"),
        ({"shipping_address": {"country": "EL"}}, OrderKind.EU_CONSUMER, "GR"),
        ({"shipping_address": {"country": "CH"}}, OrderKind.EXPORT, "EXPORT"),
        ({"shipping_address": {"country": "GB", "postcode": "SW1A 1AA"}}, OrderKind.EXPORT, "EXPORT"),
        ({"shipping_address": {"country": "GB", "postcode": "BT1 5GS"}}, OrderKind.EU_CONSUMER, "XI"),
    ],
)
def test_classify_and_vat_destination(fields: dict[str, Any], kind: OrderKind, destination: str) -> None:
    o = order(**fields)
    assert classify(o, settings()) is kind
    assert vat_destination(o, settings()) == destination


def test_classify_business_orders() -> None:
    s = settings()
    assert classify(b2b_order("BE", "BE0417497106"), s) is OrderKind.ICP
    assert vat_destination(b2b_order("BE", "BE0417497106"), s) == "ICP"
    # a company name alone makes a business; a VAT number alone does too
    assert classify(b2b_order("BE", None), s) is OrderKind.ICP
    consumer_with_number = order(
        customer={"vat_number": "BE0417497106"}, billing_address={"country": "BE"},
        lines=[{"name": "Lamp", "quantity": 1, "unit_price": "100.00", "vat_rate": 0}], total="100.00",
    )
    assert classify(consumer_with_number, s) is OrderKind.ICP
    # VAT charged: an ordinary sale to an EU business, not an ICP
    taxed = b2b_order("BE", "BE0417497106",
                      lines=[{"name": "Lamp", "quantity": 1, "unit_price": "121.00", "vat_rate": 21}])
    assert classify(taxed, s) is OrderKind.EU_CONSUMER
    # in the home country a business is domestic
    assert classify(b2b_order("NL", "NL805734958B01"), s) is OrderKind.DOMESTIC


def test_home_country_comes_from_the_settings() -> None:
    be_shop = settings(home_country="BE")
    assert classify(order(billing_address={"country": "BE"}), be_shop) is OrderKind.DOMESTIC
    assert classify(order(), be_shop) is OrderKind.EU_CONSUMER
    assert vat_destination(order(), be_shop) == "NL"


def test_eu_list_is_the_27_member_states_and_northern_ireland() -> None:
    assert len(EU_COUNTRIES) == 28
    assert {"GR", "XI", "NL", "HR", "IE"} <= EU_COUNTRIES
    assert not {"EL", "GB", "CH", "NO"} & EU_COUNTRIES


# --- ICP VAT number ---------------------------------------------------------------------------

ICP_NUMBERS = [
    ("BE", "BE 0417.497.106"),
    ("DE", "de123475223"),
    ("FR", "FR 59 542 051 180"),
    ("IT", "00905811006"),
    ("ES", "ESA28015865"),
    ("AT", "ATU33864707"),
    ("GR", "EL094019245"),
    ("GR", "GR 094 019 245"),
    ("PL", "PL 774-000-14-54"),
    ("IE", "IE6388047V"),
]


@pytest.mark.parametrize(("country", "number"), ICP_NUMBERS)
def test_icp_with_a_valid_number_of_the_customers_country_passes(country: str, number: str) -> None:
    assert stdnum_vat.is_valid(number if number[:2].isalpha() else country + number)
    results = run_checks(b2b_order(country, number), ctx())
    r = result(results, "icp_vat_number")
    assert r.ok, r.message
    assert "is valid for" in r.message
    assert result(results, "vat_mapping").message == "VAT codes mapped: ICP 0 % → 5"
    assert first_failure(results) is None


def test_icp_without_a_vat_number() -> None:
    r = check(b2b_order("BE", None), "icp_vat_number")
    assert (r.ok, r.code) == (False, "icp_vat_number_missing")
    assert "Belgium (BE)" in r.message


def test_icp_with_wrong_check_digits_names_the_number_and_why() -> None:
    r = check(b2b_order("BE", "BE 0417.497.107"), "icp_vat_number")
    assert (r.ok, r.code) == (False, "icp_vat_number_invalid")
    assert r.message == "VAT number BE0417497107 is not valid: its check digits are wrong"


def test_icp_with_a_number_of_another_country() -> None:
    r = check(b2b_order("BE", "DE123475223"), "icp_vat_number")
    assert (r.ok, r.code) == (False, "icp_vat_number_invalid")
    assert r.message == (
        "VAT number DE123475223 belongs to Germany (DE), but the customer's address is in Belgium (BE)"
    )


def test_icp_number_must_belong_to_the_billing_country_not_the_delivery_country() -> None:
    # a German company having goods delivered to Belgium uses its German number
    o = b2b_order("DE", "DE123475223", shipping_address={"country": "BE"})
    assert classify(o, settings()) is OrderKind.ICP
    assert check(o, "icp_vat_number").ok


def test_icp_with_a_home_country_number_fails() -> None:
    o = b2b_order("NL", "NL805734958B01", shipping_address={"country": "BE"})
    assert classify(o, settings()) is OrderKind.ICP
    r = check(o, "icp_vat_number")
    assert (r.ok, r.code) == (False, "icp_vat_number_invalid")
    assert "home country" in r.message and "NL805734958B01" in r.message


def test_zero_vat_to_an_eu_consumer_fails() -> None:
    o = order(
        billing_address={"country": "FR"},
        lines=[{"name": "Lamp", "quantity": 1, "unit_price": "100.00", "vat_rate": 0}],
        total="100.00",
    )
    assert classify(o, settings()) is OrderKind.EU_CONSUMER
    r = check(o, "icp_vat_number")
    assert (r.ok, r.code) == (False, "eu_zero_vat_without_vat_number")
    assert "France (FR)" in r.message and "0 %" in r.message


def test_eu_business_charged_vat_is_not_an_icp_failure() -> None:
    o = b2b_order("BE", None, lines=[{"name": "Lamp", "quantity": 1, "unit_price": "121.00", "vat_rate": 21}],
                  total="121.00")
    s = settings(vat_rules=[*default_vat_rules(), VatRule(destination="BE", rate=D("21"), vat_code="B21")])
    results = run_checks(o, ctx(s))
    assert result(results, "icp_vat_number").ok
    assert result(results, "icp_vat_number").message == "no ICP order (eu_consumer); no VAT number needed"
    assert first_failure(results) is None


def test_domestic_order_needs_no_vat_number() -> None:
    r = check(b2b_order("NL", None), "icp_vat_number")
    assert r.ok and "domestic" in r.message


# --- export -----------------------------------------------------------------------------------


def test_export_with_vat_charged_fails_naming_the_rates() -> None:
    o = order(
        shipping_address={"country": "US"},
        lines=[{"name": "Lamp", "quantity": 1, "unit_price": "121.00", "vat_rate": 21},
               {"name": "Book", "quantity": 1, "unit_price": "10.90", "vat_rate": 9}],
        shipping=[{"amount": "5.00", "vat_rate": 0}],
        total="136.90",
    )
    r = check(o, "export_vat")
    assert (r.ok, r.code) == (False, "export_vat_not_zero")
    assert r.message == (
        "the order goes to the United States (US), outside the EU, so VAT must be 0 %, but it has 21 %, 9 %"
    )


def test_export_with_vat_on_the_shipping_only_fails_too() -> None:
    o = order(
        shipping_address={"country": "CH"},
        lines=[{"name": "Lamp", "quantity": 1, "unit_price": "100.00", "vat_rate": 0}],
        shipping=[{"amount": "6.05", "vat_rate": 21}],
        total="106.05",
    )
    r = check(o, "export_vat")
    assert r.code == "export_vat_not_zero" and r.message.endswith("but it has 21 %")


def test_export_at_zero_vat_passes_every_check() -> None:
    o = order(
        shipping_address={"country": "NO"},
        lines=[{"name": "Lamp", "quantity": 1, "unit_price": "100.00", "vat_rate": 0}],
        shipping=[{"amount": "15.00", "vat_rate": "0.00"}],
        total="115.00",
    )
    results = run_checks(o, ctx())
    assert result(results, "export_vat").message == "export to Norway (NO) with 0 % VAT"
    assert result(results, "vat_mapping").message == "VAT codes mapped: EXPORT 0 % → 6"
    assert first_failure(results) is None


def test_non_export_order_may_charge_vat() -> None:
    r = check(order(), "export_vat")
    assert r.ok and r.code is None


# --- VAT mapping ------------------------------------------------------------------------------


def test_unmapped_destination_rate_is_named() -> None:
    o = order(shipping_address={"country": "BE"})
    r = check(o, "vat_mapping")
    assert (r.ok, r.code) == (False, "vat_code_not_mapped")
    assert r.message.startswith("no VAT code mapped for BE 21 %")


def test_mapped_destination_rate_passes() -> None:
    s = settings(vat_rules=[*default_vat_rules(), VatRule(destination="BE", rate=D("21"), vat_code="B21")])
    r = check(order(shipping_address={"country": "BE"}), "vat_mapping", ctx(s))
    assert r.ok and r.message == "VAT codes mapped: BE 21 % → B21"


def test_every_part_is_mapped_including_shipping_payment_costs_and_discounts() -> None:
    base = {"lines": [{"name": "Lamp", "quantity": 1, "unit_price": "100.00", "vat_rate": 21}]}
    for extra, rate in [
        ({"shipping": [{"amount": "5.00", "vat_rate": "5.5"}]}, "5.5"),
        ({"payment_costs": [{"amount": "1.00", "vat_rate": 6}]}, "6"),
        ({"discounts": [{"amount": "1.00", "vat_rate": 13}]}, "13"),
    ]:
        r = check(order(**base, **extra, total="999.00"), "vat_mapping")
        assert r.code == "vat_code_not_mapped", extra
        assert r.message.startswith(f"no VAT code mapped for NL {rate} %"), r.message


def test_several_unmapped_rates_are_all_named() -> None:
    o = order(
        shipping_address={"country": "BE"},
        lines=[{"name": "Lamp", "quantity": 1, "unit_price": "121.00", "vat_rate": 21},
               {"name": "Book", "quantity": 1, "unit_price": "10.60", "vat_rate": 6}],
        total="131.60",
    )
    assert check(o, "vat_mapping").message.startswith("no VAT code mapped for BE 21 %, BE 6 %")


def test_rates_compare_by_value() -> None:
    o = order(lines=[{"name": "Tea", "quantity": 1, "unit_price": "10.90", "vat_rate": "9.00"}], total="10.90")
    assert check(o, "vat_mapping").message == "VAT codes mapped: NL 9 % → 2"


def test_mapped_code_missing_in_the_division() -> None:
    s = settings(vat_rules=[VatRule(destination="NL", rate=D("21"), vat_code="7")])
    r = check(order(), "vat_mapping", ctx(s))
    assert (r.ok, r.code) == (False, "vat_code_unknown_in_division")
    assert r.message.startswith("VAT code 7 (mapped for NL 21 %) does not exist in the division")


def test_vat_codes_never_loaded() -> None:
    r = check(order(), "vat_mapping", ctx(vat_codes=None))
    assert r == CheckResult(
        "vat_mapping", False, "vat_codes_not_loaded",
        "the VAT codes of this Exact division have not been loaded yet; refresh reference data",
    )


def test_loaded_but_empty_vat_codes_means_every_code_is_unknown() -> None:
    r = check(order(), "vat_mapping", ctx(vat_codes={}))
    assert r.code == "vat_code_unknown_in_division"


def test_vat_codes_match_with_or_without_exacts_padding() -> None:
    unpadded = {"1": VatCodeInfo("1", D("21"), "E")}
    assert check(order(), "vat_mapping", ctx(vat_codes=unpadded)).ok
    s = settings(vat_rules=[VatRule(destination="NL", rate=D("21"), vat_code="1  ")])
    assert check(order(), "vat_mapping", ctx(s)).ok


# --- duplicates -------------------------------------------------------------------------------


def test_duplicate_order_number() -> None:
    r = check(order(), "duplicate", ctx(duplicate_of="17"))
    assert r == CheckResult(
        "duplicate", False, "duplicate_order_number", "order number 1001 was already booked as order 17"
    )


def test_not_a_duplicate() -> None:
    r = check(order(), "duplicate", ctx(duplicate_of=None))
    assert r.ok and r.message == "order number 1001 was not booked before"
