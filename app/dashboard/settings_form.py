"""An integration's settings as a form: one field per IntegrationSettings field, read from the
model itself (so a setting added later shows up without touching the dashboard), and the
submitted form turned back into the changed keys for `PATCH /api/v1/integrations/{id}`.

The configuration API does the real validation (against the division's reference data);
this only turns text back into the JSON types the settings model takes.
"""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from app.integrations.settings import IntegrationSettings

LABELS: dict[str, str] = {
    "processable_statuses": "Book when the shop status is",
    "home_country": "Home country",
    "prices_include_vat": "Prices incl. VAT by default",
    "totals_tolerance_cents": "Totals tolerance (cents)",
    "target_document": "Exact document",
    "journal_code": "Sales journal",
    "payment_condition": "Payment condition",
    "vat_rules": "VAT rules",
    "revenue_gl": "Revenue account",
    "shipping_gl": "Shipping account",
    "payment_costs_gl": "Payment costs account",
    "discount_gl": "Discount account",
    "rounding_gl": "Rounding account",
    "rounding_vat_code": "Rounding VAT code",
    "fixed_debtors": "Fixed debtors",
    "invoice_type": "Invoice type",
    "warehouse": "Warehouse",
    "ledger_mapping": "Revenue on the mapped accounts",
    "shipping_item_code": "Shipping item",
    "payment_costs_item_code": "Payment costs item",
    "discount_item_code": "Discount item",
    "rounding_item_code": "Rounding item",
}
HELP: dict[str, str] = {
    "processable_statuses": "comma-separated, e.g. paid, completed",
    "fixed_debtors": "one per line: payment method = Exact debtor code or ID",
    "invoice_type": "8020 sales invoice, 8023 direct sales invoice",
    "prices_include_vat": "for shops whose orders do not say",
}
CHOICE_LABELS: dict[Any, str] = {True: "yes", False: "no", 8020: "8020 · sales invoice",
                                 8023: "8023 · direct sales invoice", "sales_entry": "sales entry",
                                 "sales_invoice": "sales invoice", "sales_order": "sales order"}
VAT_RULE_FIELDS = ("destination", "rate", "vat_code", "revenue_gl")
EMPTY_VAT_ROWS = 2


@dataclass
class FormField:
    name: str
    label: str
    kind: str  # choice | int | text | list | mapping | vat_rules
    value: Any  # text for inputs; rows for vat_rules
    optional: bool = False
    choices: list[tuple[str, str]] = field(default_factory=list)
    help: str | None = None
    stored: Any = None  # the saved value (JSON), for the read-only view

    @property
    def stored_label(self) -> str:
        key = _choice_key(self.stored)
        return next((label for k, label in self.choices if k == key), key)

    @property
    def wide(self) -> bool:
        return self.kind in ("mapping", "vat_rules")


def _kind(annotation: Any) -> tuple[str, bool, list[Any]]:
    """(kind, optional, choices) of a settings field's type."""
    optional = False
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        optional = len(args) < len(typing.get_args(annotation))
        annotation = args[0] if len(args) == 1 else annotation
        origin = typing.get_origin(annotation)
    if annotation is bool:
        return "choice", optional, [True, False]
    if origin is Literal:
        return "choice", optional, list(typing.get_args(annotation))
    if annotation is int:
        return "int", optional, []
    if origin is list:
        (item,) = typing.get_args(annotation) or (str,)
        return ("list" if item is str else "vat_rules"), optional, []
    if origin is dict:
        return "mapping", optional, []
    return "text", optional, []


def _text(kind: str, value: Any) -> Any:
    if kind == "choice":
        return _choice_key(value)
    if value is None:
        return ""
    if kind == "list":
        return ", ".join(str(v) for v in value)
    if kind == "mapping":
        return "\n".join(f"{k} = {v}" for k, v in value.items())
    if kind == "vat_rules":
        return [{name: "" if rule.get(name) is None else str(rule.get(name)) for name in VAT_RULE_FIELDS}
                for rule in value]
    return str(value)


def _choice_key(value: Any) -> str:
    return "true" if value is True else "false" if value is False else str(value)


def fields(settings: IntegrationSettings, submitted: Any | None = None) -> list[FormField]:
    """The form's fields with the stored values, or with what was submitted (after a refusal)."""
    stored = settings.model_dump(mode="json")
    result: list[FormField] = []
    for name, info in IntegrationSettings.model_fields.items():
        kind, optional, choices = _kind(info.annotation)
        value = _text(kind, stored.get(name))
        if submitted is not None:
            value = _submitted_rows(submitted) if kind == "vat_rules" else submitted.get(name, value)
        if kind == "vat_rules":
            value = list(value) + [dict.fromkeys(VAT_RULE_FIELDS, "") for _ in range(EMPTY_VAT_ROWS)]
        result.append(FormField(
            name=name, label=LABELS.get(name, name.replace("_", " ").capitalize()), kind=kind, value=value,
            optional=optional, help=HELP.get(name),
            choices=[(_choice_key(c), CHOICE_LABELS.get(c, str(c))) for c in choices], stored=stored.get(name),
        ))
    return result


def _submitted_rows(form: Any) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = []
    n = 0
    while f"vat_rules-{n}-destination" in form:
        row = {name: str(form.get(f"vat_rules-{n}-{name}") or "").strip() for name in VAT_RULE_FIELDS}
        if form.get(f"vat_rules-{n}-remove") != "on" and any(row.values()):
            rows.append(row)
        n += 1
    return rows


class FormProblems(Exception):
    def __init__(self, problems: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{f}: {r}" for f, r in problems))
        self.problems = problems


def changes(settings: IntegrationSettings, form: Any) -> dict[str, Any]:
    """The settings keys whose submitted value differs from the stored one, as JSON values."""
    stored = settings.model_dump(mode="json")
    changed: dict[str, Any] = {}
    problems: list[tuple[str, str]] = []
    for name, info in IntegrationSettings.model_fields.items():
        kind, optional, choices = _kind(info.annotation)
        if kind != "vat_rules" and name not in form:
            continue
        raw = str(form.get(name) or "").strip()
        try:
            value: Any
            if kind == "choice":
                by_key = {_choice_key(c): c for c in choices}
                if raw not in by_key:
                    raise ValueError(f"choose one of {', '.join(by_key)}")
                value = by_key[raw]
            elif kind == "int":
                value = int(raw) if raw else None
                if value is None and not optional:
                    raise ValueError("a whole number is needed")
            elif kind == "list":
                value = [part.strip() for part in raw.replace("\n", ",").split(",") if part.strip()]
            elif kind == "mapping":
                value = {}
                for line in raw.splitlines():
                    if not line.strip():
                        continue
                    key, sep, target = line.partition("=")
                    if not sep or not key.strip() or not target.strip():
                        raise ValueError(f"'{line.strip()}' is not 'method = debtor'")
                    value[key.strip()] = target.strip()
            elif kind == "vat_rules":
                value = []
                for row in _submitted_rows(form):
                    try:
                        rate = Decimal(row["rate"].replace(",", "."))
                    except ArithmeticError:
                        raise ValueError(f"rate '{row['rate']}' is not a number") from None
                    value.append({"destination": row["destination"], "rate": str(rate.normalize()),
                                  "vat_code": row["vat_code"], "revenue_gl": row["revenue_gl"] or None})
                if _rules_key(value) == _rules_key(stored.get(name) or []):
                    continue
            else:
                value = raw if raw or not optional else None
        except ValueError as exc:
            problems.append((LABELS.get(name, name), str(exc)))
            continue
        if value != stored.get(name):
            changed[name] = value
    if problems:
        raise FormProblems(problems)
    return changed


def _rules_key(rules: list[dict[str, Any]]) -> list[tuple[str, str, str, str]]:
    def rate(value: Any) -> str:
        try:
            return str(Decimal(str(value)).normalize())
        except ArithmeticError:
            return str(value)

    return [(str(r.get("destination") or "").upper(), rate(r.get("rate")), str(r.get("vat_code") or ""),
             str(r.get("revenue_gl") or "")) for r in rules]
