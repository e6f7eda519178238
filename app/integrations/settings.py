"""Per-integration mapping settings, stored as JSON on the integration row."""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.orders.canonical import Amount, normalise_country

# Destinations of a VAT rule besides an ISO country: intra-community supply to an EU
# business (ICP, 0 %) and export outside the EU (0 %).
ICP = "ICP"
EXPORT = "EXPORT"


class VatRule(BaseModel):
    """Which Exact VAT code (and revenue account) books a given destination and rate."""

    model_config = ConfigDict(extra="forbid")

    destination: str  # ISO country, "ICP" or "EXPORT"
    rate: Amount
    vat_code: str = Field(min_length=1, max_length=8)
    revenue_gl: str | None = None

    @field_validator("destination", mode="before")
    @classmethod
    def _destination(cls, value: str) -> str:
        upper = str(value).strip().upper()
        return upper if upper in (ICP, EXPORT) else normalise_country(upper)


def default_vat_rules() -> list[VatRule]:
    """A Dutch division's usual codes: 21 % and 9 % high/low, 0 %, ICP and export."""
    return [
        VatRule(destination="NL", rate=Decimal("21"), vat_code="1"),
        VatRule(destination="NL", rate=Decimal("9"), vat_code="2"),
        VatRule(destination="NL", rate=Decimal("0"), vat_code="0"),
        VatRule(destination=ICP, rate=Decimal("0"), vat_code="5", revenue_gl="8100"),
        VatRule(destination=EXPORT, rate=Decimal("0"), vat_code="6", revenue_gl="8110"),
    ]


class IntegrationSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Source statuses that mean "book it" (compared case-insensitively).
    processable_statuses: list[str] = Field(default_factory=lambda: ["paid"])
    home_country: str = "NL"
    # Used by sources whose payload does not say whether prices include VAT.
    prices_include_vat: bool = True
    totals_tolerance_cents: int = Field(default=1, ge=0, le=100)

    target_document: Literal["sales_entry", "sales_invoice", "sales_order"] = "sales_entry"
    journal_code: str = "70"
    payment_condition: str | None = None
    vat_rules: list[VatRule] = Field(default_factory=default_vat_rules)
    revenue_gl: str = "8000"
    shipping_gl: str | None = None
    payment_costs_gl: str | None = None
    discount_gl: str | None = None
    # Where a difference that the totals check accepted (≤ tolerance) is booked.
    rounding_gl: str = "8990"
    rounding_vat_code: str = "0"
    # Payment method → Exact debtor (GUID or code) used for every order paid that way,
    # except ICP orders, which always need the real customer.
    fixed_debtors: dict[str, str] = Field(default_factory=dict)

    # Sales invoices and sales orders (target_document "sales_invoice" / "sales_order").
    # 8020 is an ordinary sales invoice; 8023 a direct sales invoice, which takes the goods out
    # of `warehouse` and is refused without one.
    invoice_type: Literal[8020, 8023] = 8020
    # Exact warehouse: its code ("1") or its ID. Used by 8023 invoices and by sales orders.
    warehouse: str | None = None
    # True: every invoice line gets the revenue GL of the mapping (as sales entries do).
    # False: no GL on the line, so the item (or its item group) decides.
    ledger_mapping: bool = True
    # Exact items for the parts of an order that are not products; found or created once per
    # division. Product lines use the SKU as item code (see app/booking/items.py).
    shipping_item_code: str = Field(default="KOPPEL-VERZEND", min_length=1, max_length=30)
    payment_costs_item_code: str = Field(default="KOPPEL-BETAALKOSTEN", min_length=1, max_length=30)
    discount_item_code: str = Field(default="KOPPEL-KORTING", min_length=1, max_length=30)
    rounding_item_code: str = Field(default="KOPPEL-AFRONDING", min_length=1, max_length=30)

    @field_validator("warehouse", mode="before")
    @classmethod
    def _warehouse(cls, value: str | None) -> str | None:
        if value is None:
            return None
        return str(value).strip() or None

    @field_validator("shipping_item_code", "payment_costs_item_code", "discount_item_code",
                     "rounding_item_code", mode="before")
    @classmethod
    def _item_code(cls, value: str) -> str:
        return str(value).strip()

    @field_validator("home_country", mode="before")
    @classmethod
    def _home(cls, value: str) -> str:
        return normalise_country(value)

    @field_validator("processable_statuses")
    @classmethod
    def _statuses(cls, value: list[str]) -> list[str]:
        return [status.strip().lower() for status in value if status.strip()]

    def is_processable(self, status: str) -> bool:
        return status.strip().lower() in self.processable_statuses

    def vat_rule(self, destination: str, rate: Decimal) -> VatRule | None:
        for rule in self.vat_rules:
            if rule.destination == destination and rule.rate == rate:
                return rule
        return None
