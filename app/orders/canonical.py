"""The canonical order: what every source adapter produces and what the `generic` source accepts.

Money is `Decimal` from end to end. JSON numbers and numeric strings are both accepted
("12.10", 12.1, "12.1000"), because real shops send either; floats are converted through
their shortest repr, so a PHP float such as 5.0682260000000001 becomes Decimal('5.068226').
Amounts are quoted in the order's `prices_include_vat` convention: incl. VAT when it is
true, excl. VAT when false. VAT rates are percentages (21, 9, 0, 5.5).
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer, field_validator

CENT = Decimal("0.01")

# ISO 3166 alpha-2 codes that shops get wrong in practice.
COUNTRY_ALIASES = {"UK": "GB", "EL": "GR"}


def to_decimal(value: Any) -> Decimal:
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, bool):  # bool is an int; never money
        raise ValueError("a boolean is not an amount")
    elif isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, float):
        result = Decimal(repr(value))
    elif isinstance(value, str) and value.strip():
        try:
            result = Decimal(value.strip().replace(" ", ""))
        except InvalidOperation as exc:
            raise ValueError(f"{value!r} is not a number") from exc
    else:
        raise ValueError(f"{value!r} is not a number")
    if not result.is_finite():
        raise ValueError(f"{value!r} is not a finite number")
    return result


# Serialised as a JSON string so that no consumer ever reads money as a float.
Amount = Annotated[Decimal, BeforeValidator(to_decimal), PlainSerializer(lambda d: str(d), return_type=str)]


def normalise_country(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError("country must be an ISO 3166 alpha-2 code such as NL")
    code = value.strip().upper()
    code = COUNTRY_ALIASES.get(code, code)
    if len(code) != 2 or not code.isalpha():
        raise ValueError(f"country {value!r} is not an ISO 3166 alpha-2 code such as NL")
    return code


Country = Annotated[str, BeforeValidator(normalise_country)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)


class Address(_Model):
    name: str | None = None
    company: str | None = None
    line1: str | None = None
    line2: str | None = None
    postcode: str | None = None
    city: str | None = None
    country: Country


class Customer(_Model):
    email: str | None = None
    name: str | None = None
    company: str | None = None
    vat_number: str | None = None
    phone: str | None = None

    @field_validator("email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        if not value:
            return None
        if "@" not in value:
            raise ValueError(f"{value!r} is not an e-mail address")
        return value.lower()

    @field_validator("vat_number", "company", "name", "phone")
    @classmethod
    def _empty_is_none(cls, value: str | None) -> str | None:
        return value or None


class Line(_Model):
    sku: str | None = None
    name: str
    quantity: Amount
    unit_price: Amount
    vat_rate: Amount
    category: str | None = None

    @property
    def amount(self) -> Decimal:
        """Line amount as the shop shows it: quantity × unit price, rounded to cents."""
        return (self.quantity * self.unit_price).quantize(CENT, rounding=ROUND_HALF_UP)


class Charge(_Model):
    """Shipping or payment costs: an amount with its own VAT rate."""

    description: str | None = None
    amount: Amount
    vat_rate: Amount


class Discount(_Model):
    """A discount as a positive amount that is subtracted, with the VAT rate it reduces."""

    description: str | None = None
    code: str | None = None
    amount: Amount
    vat_rate: Amount

    @field_validator("amount")
    @classmethod
    def _positive(cls, value: Decimal) -> Decimal:
        return abs(value)


class CanonicalOrder(_Model):
    source_order_id: str = Field(min_length=1, max_length=128)
    order_number: str = Field(min_length=1, max_length=128)
    order_date: datetime
    currency: str = Field(default="EUR", min_length=3, max_length=3)
    prices_include_vat: bool
    customer: Customer = Field(default_factory=Customer)
    billing_address: Address | None = None
    shipping_address: Address | None = None
    lines: list[Line] = Field(min_length=1)
    shipping: list[Charge] = Field(default_factory=list)
    payment_costs: list[Charge] = Field(default_factory=list)
    discounts: list[Discount] = Field(default_factory=list)
    total: Amount
    total_vat: Amount | None = None
    payment_method: str | None = None
    status: str = Field(min_length=1, max_length=64)

    @field_validator("source_order_id", "order_number", mode="before")
    @classmethod
    def _id_as_text(cls, value: Any) -> Any:
        # Shops send ids as numbers or strings; both mean the same order.
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @field_validator("currency")
    @classmethod
    def _currency(cls, value: str) -> str:
        return value.upper()

    @field_validator("order_date")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    @property
    def destination_country(self) -> str | None:
        for address in (self.shipping_address, self.billing_address):
            if address is not None:
                return address.country
        return None

    @property
    def customer_country(self) -> str | None:
        """The country the customer is established in, which a VAT number must belong to."""
        for address in (self.billing_address, self.shipping_address):
            if address is not None:
                return address.country
        return None

    def vat_rates(self) -> set[Decimal]:
        parts: list[Any] = [*self.lines, *self.shipping, *self.payment_costs, *self.discounts]
        return {part.vat_rate for part in parts}
