"""EU VAT numbers: normalising what customers type and checking it offline.

The valid numbers are the published VAT numbers of large companies (on their imprints,
invoices and annual reports); each is also checked with python-stdnum directly here, so a
wrong number in this table fails loudly instead of testing nothing.
"""

from __future__ import annotations

import pytest
from stdnum.eu import vat as stdnum_vat

from app.orders.vat_numbers import (
    ViesLookup,
    VatNumberResult,
    normalise,
    validate,
)

# (customer's ISO country, VAT number, holder)
REAL_NUMBERS = [
    ("NL", "NL805734958B01", "Booking.com B.V."),
    ("BE", "BE0417497106", "Anheuser-Busch InBev SA/NV"),
    ("BE", "BE0202239951", "Proximus SA"),
    ("DE", "DE123475223", "Deutsche Telekom AG"),
    ("DE", "DE814584193", "Amazon EU S.à r.l., German branch"),
    ("FR", "FR59542051180", "TotalEnergies SE"),
    ("FR", "FR89380129866", "Orange SA"),
    ("IT", "IT00905811006", "Eni S.p.A."),
    ("IT", "IT00488410010", "Telecom Italia S.p.A."),
    ("ES", "ESA28015865", "Telefónica S.A."),
    ("ES", "ESA39000013", "Banco Santander S.A."),
    ("AT", "ATU33864707", "Red Bull GmbH"),
    ("GR", "EL094019245", "Hellenic Telecommunications Organization (OTE)"),
    ("GR", "EL090000045", "Public Power Corporation (ΔΕΗ)"),
    ("PL", "PL7740001454", "ORLEN S.A."),
    ("PL", "PL5250007738", "PKO Bank Polski S.A."),
    ("IE", "IE6388047V", "Google Ireland Ltd"),
    ("IE", "IE9692928F", "Meta Platforms Ireland Ltd"),
]


@pytest.mark.parametrize(("country", "number", "holder"), REAL_NUMBERS)
def test_real_numbers_are_valid_for_their_country(country: str, number: str, holder: str) -> None:
    assert stdnum_vat.is_valid(number), f"{holder}: {number} fails stdnum itself"
    result = validate(number, country)
    assert result == VatNumberResult(True, number, result.reason)
    assert result.ok, result.reason
    assert number in result.reason


@pytest.mark.parametrize(
    ("raw", "country", "expected"),
    [
        ("nl 8057.34.958.b01", "NL", "NL805734958B01"),
        ("NL805734958-B01", "NL", "NL805734958B01"),
        ("805734958B01", "NL", "NL805734958B01"),
        ("BE 0417.497.106", "BE", "BE0417497106"),
        ("0417.497.106", "BE", "BE0417497106"),
        ("be417497106", "BE", "BE0417497106"),  # old 9-digit form gets its leading 0
        ("DE 123 475 223", "DE", "DE123475223"),
        ("123475223", "DE", "DE123475223"),
        ("FR 59 542 051 180", "FR", "FR59542051180"),
        ("IT-00905811006", "IT", "IT00905811006"),
        ("00905811006", "IT", "IT00905811006"),
        ("es a-28015865", "ES", "ESA28015865"),
        ("A28015865", "ES", "ESA28015865"),
        ("ATU 338 647 07", "AT", "ATU33864707"),
        ("U33864707", "AT", "ATU33864707"),
        ("PL 774-000-14-54", "PL", "PL7740001454"),
        ("774-000-14-54", "PL", "PL7740001454"),
        ("ie 6388047v", "IE", "IE6388047V"),
        ("EL 094 019 245", "GR", "EL094019245"),
        ("GR094019245", "GR", "EL094019245"),
        ("gr 094.019.245", "GR", "EL094019245"),
        ("094019245", "GR", "EL094019245"),
        ("\u00a0NL 805734958 B01 ", "NL", "NL805734958B01"),
    ],
)
def test_normalise_and_validate_typed_variants(raw: str, country: str, expected: str) -> None:
    assert normalise(raw, country) == expected
    result = validate(raw, country)
    assert result.ok, result.reason
    assert result.normalised == expected


@pytest.mark.parametrize("prefix", ["EL", "GR"])
@pytest.mark.parametrize("country", ["GR", "EL"])
def test_greece_accepts_both_prefixes_and_both_country_spellings(prefix: str, country: str) -> None:
    result = validate(f"{prefix}094019245", country)
    assert result.ok, result.reason
    assert result.normalised == "EL094019245"
    assert "Greece" in result.reason


def test_normalise_of_nothing() -> None:
    assert normalise(None, "NL") is None
    assert normalise("", "NL") is None
    assert normalise(" - . ", "NL") is None


def test_normalise_without_prefix_for_a_non_eu_customer_is_unknown() -> None:
    assert normalise("123475223", "US") is None
    assert normalise("123475223", None) is None
    result = validate("123475223", "US")
    assert not result.ok
    assert result.normalised is None
    assert "no country prefix" in result.reason


def test_a_foreign_number_keeps_its_own_prefix() -> None:
    assert normalise("CHE-116.281.710 MWST", "DE") == "CHE116281710MWST"
    result = validate("CHE-116.281.710", "DE")
    assert not result.ok
    assert "not a VAT number of an EU member state" in result.reason


def test_an_oss_registration_number_is_no_member_state_number() -> None:
    # stdnum accepts EU… (non-Union OSS) numbers; they cannot back an ICP.
    assert stdnum_vat.is_valid("EU372022452")
    result = validate("EU372022452", "IE")
    assert not result.ok
    assert "not a VAT number of an EU member state" in result.reason


@pytest.mark.parametrize(
    ("number", "country"),
    [
        ("NL805734959B01", "NL"),
        ("BE0417497107", "BE"),
        ("DE123475224", "DE"),
        ("FR59542051181", "FR"),
        ("IT00905811007", "IT"),
        ("ESA28015866", "ES"),
        ("ATU33864708", "AT"),
        ("EL094019246", "GR"),
        ("PL7740001455", "PL"),
        ("IE6388048V", "IE"),
    ],
)
def test_wrong_check_digits_fail(number: str, country: str) -> None:
    assert not stdnum_vat.is_valid(number)
    result = validate(number, country)
    assert not result.ok
    assert result.normalised == number
    assert result.reason == f"VAT number {number} is not valid: its check digits are wrong"


def test_wrong_length_and_format_say_so() -> None:
    result = validate("DE12347522", "DE")
    assert not result.ok
    assert result.reason == "VAT number DE12347522 is not valid: it has the wrong length for a VAT number of Germany (DE)"
    result = validate("NL805734958X01", "NL")
    assert not result.ok
    assert "not in the format of a VAT number of the Netherlands (NL)" in result.reason


def test_a_german_number_for_a_belgian_address_fails() -> None:
    result = validate("DE 123 475 223", "BE")
    assert not result.ok
    assert result.normalised == "DE123475223"
    assert result.reason == (
        "VAT number DE123475223 belongs to Germany (DE), but the customer's address is in Belgium (BE)"
    )


def test_a_greek_number_for_an_italian_address_fails() -> None:
    result = validate("EL094019245", "IT")
    assert not result.ok
    assert "Greece (GR)" in result.reason and "Italy (IT)" in result.reason


def test_a_belgian_body_typed_without_prefix_for_a_dutch_customer_fails() -> None:
    # Without a prefix the customer's country is assumed, and the digits do not fit it.
    result = validate("0417497106", "NL")
    assert not result.ok
    assert result.normalised == "NL0417497106"


def test_missing_number() -> None:
    for raw in (None, "", "   "):
        result = validate(raw, "BE")
        assert result == VatNumberResult(False, None, "no VAT number given")


def test_without_a_customer_country_only_the_number_is_checked() -> None:
    assert validate("BE0417497106", None).ok
    assert not validate("BE0417497107", None).ok


def test_vies_lookup_is_an_optional_protocol() -> None:
    class AlwaysRegistered:
        async def check(self, number: str) -> bool | None:
            return True

    class NotALookup:
        def lookup(self, number: str) -> bool:
            return True

    assert isinstance(AlwaysRegistered(), ViesLookup)
    assert not isinstance(NotALookup(), ViesLookup)
