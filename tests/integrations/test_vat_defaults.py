"""The VAT proposal and the settings checks as pure functions (no database, no Exact)."""

from __future__ import annotations

from decimal import Decimal

from app.integrations.settings import IntegrationSettings
from app.integrations.validation import validate_settings
from app.integrations.vat_defaults import EU_STANDARD_RATES, propose_vat_rules
from app.orders.checks import EU_COUNTRIES


def vat(code: str, percentage: str, vat_type: str = "excl", description: str = "", **more: object) -> dict:
    return {"code": code, "description": description or f"btw {percentage}", "percentage": percentage,
            "vat_type": vat_type, "sales": True, "icp": False, "oss_country": None, "blocked": False, **more}


BELGIAN = [
    vat("21", "21"), vat("6", "6"), vat("12", "12"), vat("00", "0", "zero", "0% binnenland"),
    vat("EX", "0", "zero", "Uitvoer buiten EU"), vat("IC", "0", "zero", "Intracommunautair", icp=True,
                                                    eu_sales_listing="L"),
    vat("NL21", "21", oss_country="NL"), vat("DE7", "7", oss_country="DE"),
    vat("I21", "21", "incl"), vat("P21", "21", sales=False), vat("X", "19", blocked=True),
]


def test_every_eu_country_has_a_standard_rate() -> None:
    assert set(EU_STANDARD_RATES) == set(EU_COUNTRIES)
    assert EU_STANDARD_RATES["FI"] == Decimal("25.5") and EU_STANDARD_RATES["HU"] == Decimal("27")


def test_a_belgian_division_gets_its_own_rates_and_oss_only_where_the_rate_matches() -> None:
    proposal = propose_vat_rules(BELGIAN, [{"code": "700", "revenue": True, "vat_code": "21"},
                                           {"code": "701", "revenue": True, "vat_code": "6"},
                                           {"code": "100", "revenue": False, "vat_code": "21"}], "BE")
    rules = {(r.destination, r.rate): (r.vat_code, r.revenue_gl) for r in proposal.rules}
    assert rules[("BE", Decimal("21"))] == ("21", "700")  # excl before incl; revenue account by VAT code
    assert rules[("BE", Decimal("6"))] == ("6", "701") and rules[("BE", Decimal("12"))] == ("12", None)
    assert rules[("BE", Decimal("0"))] == ("00", None)  # not the export code
    assert rules[("NL", Decimal("21"))] == ("NL21", None)
    assert ("DE", Decimal("19")) not in rules  # DE7 is a reduced rate: the standard 19 % has no code
    assert rules[("ICP", Decimal("0"))] == ("IC", None) and rules[("EXPORT", Decimal("0"))] == ("EX", None)
    assert not any(code in ("P21", "X") for code, _ in rules.values())
    assert any(note.startswith("no OSS VAT code for DE at 19 %") for note in proposal.notes)
    assert not any("BE" in note.split(" at ")[0] for note in proposal.notes)


def test_the_proposal_passes_its_own_checks_and_duplicates_do_not() -> None:
    reference = {
        "vat_code": {item["code"]: item for item in BELGIAN},
        "gl_account": {"700": {"code": "700", "revenue": True, "profit_loss": True},
                       "799": {"code": "799", "revenue": True, "profit_loss": True}},
        "journal": {"VK": {"code": "VK", "type_name": "sales"}},
    }
    proposal = propose_vat_rules(BELGIAN, reference["gl_account"].values(), "BE")
    settings = IntegrationSettings(home_country="BE", journal_code="VK", revenue_gl="700", rounding_gl="799",
                                   rounding_vat_code="00", vat_rules=proposal.rules)
    assert validate_settings(settings, reference, 1) == []
    doubled = settings.model_copy(update={"vat_rules": [*proposal.rules, proposal.rules[0]]})
    problems = validate_settings(doubled, reference, 1)
    assert [p.field for p in problems] == [f"settings.vat_rules[{len(proposal.rules)}]"]
    assert "a second row for BE at 21 %" in problems[0].reason
