"""Default VAT mapping: the standard rate of every EU country, mapped to the division's codes.

A shop that sells to consumers across the EU books each destination's VAT under the OSS
scheme, on a VAT code of that country (Exact's ``OssCountry``). The proposal below gives an
editable starting point, like the seed products' table of EU countries:

* the home country: one row per rate the division has a plain (non-OSS, non-ICP) sales code for;
* every other EU country: its standard rate, on the division's OSS code for that country and
  rate when there is one (otherwise a note says which code is missing);
* an ICP row (0 %, the code on the EU sales listing) and an EXPORT row (0 %).

Rates change (Estonia 24 % and Romania 21 % since 2025, Slovakia 23 % since 2025, Finland
25.5 % since September 2024); the table is a default, every row is editable per integration.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from app.integrations.settings import EXPORT, ICP, VatRule
from app.orders.checks import EU_COUNTRIES

EU_STANDARD_RATES: dict[str, Decimal] = {
    country: Decimal(rate)
    for country, rate in {
        "AT": "20", "BE": "21", "BG": "20", "CY": "19", "CZ": "21", "DE": "19", "DK": "25", "EE": "24",
        "ES": "21", "FI": "25.5", "FR": "20", "GR": "24", "HR": "25", "HU": "27", "IE": "23", "IT": "22",
        "LT": "21", "LU": "17", "LV": "21", "MT": "18", "NL": "21", "PL": "23", "PT": "23", "RO": "21",
        "SE": "25", "SI": "22", "SK": "23",
        "XI": "20",  # Northern Ireland: goods follow the EU rules (Windsor Framework), UK rate
    }.items()
}  # fmt: skip
assert set(EU_STANDARD_RATES) == set(EU_COUNTRIES)

_EXPORT_WORDS = ("export", "buiten", "outside", "non-eu", "ausfuhr", "drittland", "hors")
_TYPE_PREFERENCE = {"excl": 0, "zero": 1, "incl": 2, "none": 3}


@dataclass
class VatProposal:
    rules: list[VatRule] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _rate(item: Mapping[str, Any]) -> Decimal | None:
    value = item.get("percentage")
    return Decimal(str(value)) if value is not None else None


def _order(item: Mapping[str, Any]) -> tuple[int, int, int, str]:
    code = str(item["code"])
    return (_TYPE_PREFERENCE.get(item.get("vat_type") or "", 9),
            0 if code.isdigit() else 1, int(code) if code.isdigit() else 0, code)


def _is_export(item: Mapping[str, Any]) -> bool:
    text = str(item.get("description") or "").lower()
    return any(word in text for word in _EXPORT_WORDS)


def propose_vat_rules(vat_codes: Iterable[Mapping[str, Any]], gl_accounts: Iterable[Mapping[str, Any]],
                      home_country: str = "NL") -> VatProposal:
    """Rows for ``IntegrationSettings.vat_rules`` from a division's cached VAT codes and GL accounts
    (each a mapping with ``code``, ``description`` and the cached fields)."""
    home = home_country.upper()
    usable = sorted((c for c in vat_codes if c.get("sales", True) and not c.get("blocked") and _rate(c) is not None),
                    key=_order)
    revenue_by_vat: dict[str, str] = {}
    for gl in sorted(gl_accounts, key=lambda g: _order({"code": g["code"]})):
        if gl.get("revenue") and not gl.get("blocked") and gl.get("vat_code"):
            revenue_by_vat.setdefault(str(gl["vat_code"]), str(gl["code"]))
    proposal = VatProposal()
    domestic = [c for c in usable if not c.get("oss_country") and not c.get("icp")]

    # The home country: one row per rate it has a plain sales code for.
    for rate in sorted({_rate(c) for c in domestic if c.get("vat_type") != "none"}, reverse=True):
        candidates = [c for c in domestic if _rate(c) == rate]
        if rate == 0:
            candidates = [c for c in candidates if not _is_export(c)] or candidates
        chosen = candidates[0]
        proposal.rules.append(VatRule(destination=home, rate=rate, vat_code=str(chosen["code"]),
                                      revenue_gl=revenue_by_vat.get(str(chosen["code"])) if rate else None))
    if not any(rule.destination == home for rule in proposal.rules):
        proposal.notes.append(f"no plain sales VAT code found for the home country {home}")

    # Every other EU country at its standard rate, on the division's OSS code for it.
    for country, rate in sorted(EU_STANDARD_RATES.items()):
        if country == home:
            continue
        oss = [c for c in usable if (c.get("oss_country") or "").upper() == country and _rate(c) == rate]
        if oss:
            code = str(oss[0]["code"])
            proposal.rules.append(VatRule(destination=country, rate=rate, vat_code=code,
                                          revenue_gl=revenue_by_vat.get(code)))
        else:
            proposal.notes.append(f"no OSS VAT code for {country} at {rate} % in this division: orders to "
                                  f"consumers in {country} need one (add it in Exact, refresh the reference "
                                  "data, or map a code by hand)")

    # ICP: 0 %, on the EU sales listing (goods first).
    icp = sorted((c for c in usable if c.get("icp") and _rate(c) == 0),
                 key=lambda c: (0 if c.get("eu_sales_listing") == "L" else 1, _order(c)))
    if icp:
        code = str(icp[0]["code"])
        proposal.rules.append(VatRule(destination=ICP, rate=Decimal("0"), vat_code=code,
                                      revenue_gl=revenue_by_vat.get(code)))
    else:
        proposal.notes.append("no ICP VAT code (0 %, on the EU sales listing) in this division")

    # Export outside the EU: 0 %, preferably the code that says so.
    zero = [c for c in domestic if _rate(c) == 0]
    export = [c for c in zero if _is_export(c)] or zero
    if export:
        code = str(export[0]["code"])
        proposal.rules.append(VatRule(destination=EXPORT, rate=Decimal("0"), vat_code=code,
                                      revenue_gl=revenue_by_vat.get(code)))
    else:
        proposal.notes.append("no 0 % VAT code for export outside the EU in this division")
    return proposal
