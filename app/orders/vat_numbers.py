"""EU VAT numbers: tidy what customers type, and check it offline with python-stdnum.

`validate` checks the format and check digits of the number for the country in its prefix
and that this country is the customer's own. It does no I/O, so it is safe on the webhook
path. Whether the number is actually registered can only be asked of the EU's VIES
service; that is an optional, separate step behind `ViesLookup` (see below), which the
pre-checks never call.

Greece is "GR" in addresses (ISO 3166) but "EL" in VAT numbers; both prefixes are accepted
and numbers come out with "EL". Northern Ireland traders have "XI" numbers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from stdnum import exceptions as stdnum_errors
from stdnum.eu import vat as eu_vat

# ISO country code → name, for messages. The EU member states plus Northern Ireland (XI).
COUNTRY_NAMES: dict[str, str] = {
    "AT": "Austria",
    "BE": "Belgium",
    "BG": "Bulgaria",
    "CY": "Cyprus",
    "CZ": "Czechia",
    "DE": "Germany",
    "DK": "Denmark",
    "EE": "Estonia",
    "ES": "Spain",
    "FI": "Finland",
    "FR": "France",
    "GR": "Greece",
    "HR": "Croatia",
    "HU": "Hungary",
    "IE": "Ireland",
    "IT": "Italy",
    "LT": "Lithuania",
    "LU": "Luxembourg",
    "LV": "Latvia",
    "MT": "Malta",
    "NL": "the Netherlands",
    "PL": "Poland",
    "PT": "Portugal",
    "RO": "Romania",
    "SE": "Sweden",
    "SI": "Slovenia",
    "SK": "Slovakia",
    "XI": "Northern Ireland",
    # Frequent non-EU destinations, only so that messages read well.
    "GB": "the United Kingdom",
    "CH": "Switzerland",
    "NO": "Norway",
    "US": "the United States",
}

# Countries whose VAT numbers stdnum's EU module checks, as ISO codes ("GR", not "EL").
VAT_COUNTRIES: frozenset[str] = frozenset(
    code for code in COUNTRY_NAMES if code not in ("GB", "CH", "NO", "US")
)


def country_label(country: str | None) -> str:
    """'Belgium (BE)' for messages; the bare code when the name is not known."""
    if not country:
        return "an unknown country"
    name = COUNTRY_NAMES.get(country)
    return f"{name} ({country})" if name else country


def vat_prefix(country: str) -> str:
    """The prefix of VAT numbers of an ISO country: the same code, except EL for Greece."""
    return "EL" if country == "GR" else country


def prefix_country(prefix: str) -> str:
    """The ISO country of a VAT number prefix: the same code, except GR for EL."""
    return "GR" if prefix == "EL" else prefix


_KNOWN_PREFIXES = frozenset({*(vat_prefix(c) for c in VAT_COUNTRIES), "GR"})
_NOT_ALNUM = re.compile(r"[^0-9A-Z]")


def _iso(country: str | None) -> str | None:
    """An ISO country code as given by a caller; "EL" (the VAT prefix) is read as Greece."""
    if not country or not country.strip():
        return None
    return prefix_country(country.strip().upper())


def _clean(raw: str) -> str:
    return _NOT_ALNUM.sub("", raw.upper())


def _compact(number: str) -> str:
    """stdnum's compact form of a valid number (e.g. the leading 0 of an old Belgian one).

    An invalid number stays as typed (cleaned), so that a message quotes what the customer
    entered rather than a padded variant of it.
    """
    try:
        return eu_vat.validate(number)
    except stdnum_errors.ValidationError:
        return number


def normalise(raw: str | None, country: str | None) -> str | None:
    """A VAT number as `PREFIX` + digits, e.g. 'nl 8057.34.958-b01' → 'NL805734958B01'.

    Spaces, dots, dashes and other separators go, letters become capitals, a Greek "GR"
    prefix becomes "EL", and a number typed without prefix gets the prefix of `country`
    (the customer's ISO country). Returns None when nothing is left, or when the number
    has no prefix and `country` has no EU VAT numbers, so its country cannot be known.
    The result is not necessarily valid: see `validate`.
    """
    if raw is None:
        return None
    cleaned = _clean(raw)
    if not cleaned:
        return None
    country = _iso(country)
    head = cleaned[:2]
    if head in _KNOWN_PREFIXES:
        if head == "GR":
            cleaned = "EL" + cleaned[2:]
        return _compact(cleaned)
    own_prefix = vat_prefix(country) if country in VAT_COUNTRIES else None
    if head.isalpha():
        # Two letters that are no EU prefix: a foreign number ("CHE…"), or a body that
        # happens to start with letters (a French key such as "AB123456789"). Take the
        # latter only if the customer's prefix makes it a valid number.
        if own_prefix and eu_vat.is_valid(own_prefix + cleaned):
            return _compact(own_prefix + cleaned)
        return cleaned
    if own_prefix is None:
        return None
    return _compact(own_prefix + cleaned)


@dataclass(frozen=True)
class VatNumberResult:
    ok: bool
    normalised: str | None
    reason: str  # plain language; says why when not ok


_ERROR_REASONS: tuple[tuple[type[stdnum_errors.ValidationError], str], ...] = (
    (stdnum_errors.InvalidChecksum, "its check digits are wrong"),
    (stdnum_errors.InvalidLength, "it has the wrong length for a VAT number of {country}"),
    (stdnum_errors.InvalidFormat, "it is not in the format of a VAT number of {country}"),
    (stdnum_errors.InvalidComponent, "it is not in the format of a VAT number of {country}"),
)


def validate(raw: str | None, country: str | None) -> VatNumberResult:
    """Check `raw` offline: valid for the country of its prefix, and that country is `country`.

    `country` is the ISO code of the customer's country (of the billing address). When it
    is None only the number itself is checked.
    """
    country = _iso(country)
    number = normalise(raw, country)
    if number is None:
        if raw is None or not _clean(raw):
            return VatNumberResult(False, None, "no VAT number given")
        return VatNumberResult(
            False,
            None,
            f"VAT number {raw.strip()!r} has no country prefix, and {country_label(country)} "
            "has no EU VAT numbers",
        )

    prefix = number[:2]
    if prefix not in _KNOWN_PREFIXES:
        return VatNumberResult(False, number, f"{number} is not a VAT number of an EU member state")
    number_country = prefix_country(prefix)
    try:
        eu_vat.validate(number)
    except stdnum_errors.ValidationError as error:
        reason = "it is not a valid VAT number"
        for kind, text in _ERROR_REASONS:
            if isinstance(error, kind):
                reason = text.format(country=country_label(number_country))
                break
        return VatNumberResult(False, number, f"VAT number {number} is not valid: {reason}")

    if country and number_country != country:
        return VatNumberResult(
            False,
            number,
            f"VAT number {number} belongs to {country_label(number_country)}, "
            f"but the customer's address is in {country_label(country)}",
        )
    return VatNumberResult(True, number, f"VAT number {number} is valid for {country_label(number_country)}")


@runtime_checkable
class ViesLookup(Protocol):
    """Optional: asks the EU's VIES service whether a VAT number is registered.

    Not used by the pre-checks, which must stay pure and fast (they run on the webhook
    request path). A worker that wants the extra assurance can call an implementation
    (with a cache: VIES is slow, rate-limited and often down) after `validate` passed.

    `check` returns True when VIES confirms the number, False when VIES says it is not
    registered, and None when VIES could not answer (the caller decides what that means).
    """

    async def check(self, number: str) -> bool | None: ...
