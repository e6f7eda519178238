"""Integration settings checked against what really exists in the division (the cached
reference data): a setting naming a code or account the division lacks is refused with a
message that names it, before any order is booked with it.

Pure: the caller loads the reference data (``reference`` maps a kind to {code: item}, each
item the cached fields of ``app.connections.reference``) and gets a list of problems back.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from app.integrations.settings import EXPORT, ICP, IntegrationSettings

Reference = Mapping[str, Mapping[str, Mapping[str, Any]]]

# A payment method mapped to a fixed debtor may never apply to ICP orders: an intra-community
# supply must be invoiced to the business whose VAT number makes it 0 %.
ICP_DEBTOR_KEYS = {"icp", "intra_community", "intracommunity"}
MAX_RATE = Decimal("50")


@dataclass(frozen=True)
class Problem:
    field: str
    reason: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "reason": self.reason}


def kinds_needed(settings: IntegrationSettings) -> tuple[str, ...]:
    kinds = ["journal", "vat_code", "gl_account"]
    if settings.payment_condition:
        kinds.append("payment_condition")
    if getattr(settings, "warehouse", None):
        kinds.append("warehouse")
    return tuple(kinds)


class _Checker:
    def __init__(self, reference: Reference, division: int) -> None:
        self.reference = reference
        self.division = division
        self.problems: list[Problem] = []

    def fail(self, field: str, reason: str) -> None:
        self.problems.append(Problem(f"settings.{field}", reason))

    def find(self, kind: str, code: str) -> Mapping[str, Any] | None:
        return self.reference.get(kind, {}).get(code.strip())

    def exists(self, field: str, kind: str, label: str, code: str) -> Mapping[str, Any] | None:
        item = self.find(kind, code)
        if item is None:
            self.fail(field, f"{label} {code} does not exist in division {self.division}")
        elif item.get("blocked"):
            self.fail(field, f"{label} {code} ({item.get('description')}) is blocked in division {self.division}")
            return None
        return item

    def revenue_gl(self, field: str, code: str | None) -> None:
        if not code:
            return
        item = self.exists(field, "gl_account", "GL account", code)
        if item is not None and not item.get("revenue"):
            kind = "balance sheet" if item.get("balance_type") == "B" else f"type {item.get('type')}"
            self.fail(field, f"GL account {code} ({item.get('description')}) is not a profit-and-loss revenue "
                             f"account ({kind}); revenue can only be booked on one")

    def vat_code(self, field: str, code: str, rate: Decimal | None, destination: str | None) -> None:
        item = self.exists(field, "vat_code", "VAT code", code)
        if item is None:
            return
        name = f"VAT code {code} ({item.get('description')})"
        if not item.get("sales", True):
            self.fail(field, f"{name} is a purchase VAT code, not one for sales")
        percentage = item.get("percentage")
        if rate is not None and percentage is not None and Decimal(str(percentage)) != rate:
            self.fail(field, f"{name} is {percentage} %, but the row is for {rate} %")
        if destination is None:
            return
        oss = (item.get("oss_country") or "").upper() or None
        if destination == ICP and not item.get("icp"):
            self.fail(field, f"{name} is not on the EU sales listing (ICP); the ICP row needs an ICP code")
        if destination != ICP and item.get("icp"):
            self.fail(field, f"{name} is an ICP code (EU sales listing); use it only on the ICP row")
        if oss and oss != destination:
            self.fail(field, f"{name} is the OSS code for {oss}, not for {destination}")


def validate_settings(settings: IntegrationSettings, reference: Reference, division: int) -> list[Problem]:
    check = _Checker(reference, division)

    journal = check.exists("journal_code", "journal", "journal", settings.journal_code)
    if journal is not None and journal.get("type_name") != "sales":
        check.fail("journal_code", f"journal {settings.journal_code} ({journal.get('description')}) is a "
                                   f"{str(journal.get('type_name') or 'non-sales').replace('_', ' ')} journal, "
                                   "not a sales journal")
    if settings.payment_condition:
        check.exists("payment_condition", "payment_condition", "payment condition", settings.payment_condition)
    warehouse = getattr(settings, "warehouse", None)
    if warehouse:
        known = reference.get("warehouse", {})
        if warehouse not in known and not any(str(w.get("exact_id") or "").lower() == warehouse.lower()
                                              for w in known.values()):
            check.fail("warehouse", f"warehouse {warehouse} does not exist in division {division}")

    seen: dict[tuple[str, Decimal], int] = {}
    for index, rule in enumerate(settings.vat_rules):
        where = f"vat_rules[{index}]"
        if (rule.destination, rule.rate) in seen:
            check.fail(where, f"a second row for {rule.destination} at {rule.rate} % "
                              f"(row {seen[(rule.destination, rule.rate)]} has it already)")
        seen.setdefault((rule.destination, rule.rate), index)
        if rule.rate < 0 or rule.rate > MAX_RATE:
            check.fail(f"{where}.rate", f"{rule.rate} % is not a VAT rate")
        if rule.destination in (ICP, EXPORT) and rule.rate != 0:
            check.fail(f"{where}.rate", f"the {rule.destination} row must be 0 %, not {rule.rate} %")
        check.vat_code(f"{where}.vat_code", rule.vat_code, rule.rate, rule.destination)
        check.revenue_gl(f"{where}.revenue_gl", rule.revenue_gl)

    for name in ("revenue_gl", "shipping_gl", "payment_costs_gl", "discount_gl"):
        check.revenue_gl(name, getattr(settings, name))
    rounding = check.exists("rounding_gl", "gl_account", "GL account", settings.rounding_gl)
    if rounding is not None and not rounding.get("profit_loss"):
        check.fail("rounding_gl", f"GL account {settings.rounding_gl} ({rounding.get('description')}) is a balance "
                                  "sheet account; rounding differences go to a profit-and-loss account")
    check.vat_code("rounding_vat_code", settings.rounding_vat_code, None, None)

    for method, debtor in settings.fixed_debtors.items():
        field = f"fixed_debtors.{method}"
        if method.strip().lower() in ICP_DEBTOR_KEYS:
            check.fail(field, "a fixed debtor cannot apply to ICP orders: they are always booked on the "
                              "customer's own debtor, whose VAT number makes the 0 % valid")
        elif not method.strip():
            check.fail(field, "a payment method name is needed")
        if not str(debtor).strip():
            check.fail(field, "the fixed debtor is empty; give its Exact code or ID")

    if not settings.processable_statuses:
        check.fail("processable_statuses", "at least one source status must mean \"book it\"")
    return check.problems
