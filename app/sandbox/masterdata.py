"""Creating master data: accounts (debtors), addresses, items, payment conditions.

Each handler validates *everything* before it stores anything, and reports the
first problem the way Exact does: a localised HTTP 500 such as "Verplicht: Naam"
or "Ongeldige referentie: Betalingsconditie". Handlers return ``(record, created)``;
``created`` is False when Exact hands back an existing record instead (addresses).
"""

from __future__ import annotations

import re
from decimal import Decimal

from app.sandbox import errors, schema
from app.sandbox.filters import collation_key
from app.sandbox.payload import WriteContext
from app.sandbox.seed import pad_account_code
from app.sandbox.values import new_guid

ACCOUNT_STATUSES = {"C", "P", "S", "A"}
ADDRESS_TYPES = {1, 2, 3, 4}  # visit, postal, invoice, delivery
PAYMENT_METHODS = {"B", "I", "K", "Q"}  # on credit, collection, cash, PSP collection
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def _text(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    return value or None


def vat_code(ctx: WriteContext, code: str) -> dict:
    record = ctx.data.find(schema.VAT_CODES, "Code", code)
    if record is None:
        raise errors.invalid_reference("Btw-code")
    return record


def payment_condition(ctx: WriteContext, code: str) -> dict:
    record = ctx.data.find(schema.PAYMENT_CONDITIONS, "Code", code)
    if record is None:
        raise errors.invalid_reference("Betalingsconditie")
    return record


def _next_account_code(ctx: WriteContext) -> str:
    numbers = [int(row["Code"]) for row in ctx.data.rows(schema.ACCOUNTS) if (row["Code"] or "").strip().isdigit()]
    return pad_account_code(max(numbers, default=0) + 1)


def create_account(ctx: WriteContext, p: dict, _lines: None = None) -> tuple[dict, bool]:
    name = _text(p.get("Name"))
    if name is None:
        raise errors.required("Naam")
    # Exact's default when no status is sent is "A" (none): such an account is
    # *not* a customer and cannot be invoiced. Clients must send Status "C".
    status = (p.get("Status") or "A").upper()
    if status not in ACCOUNT_STATUSES:
        raise errors.validation("Ongeldig: Status")
    email = _text(p.get("Email"))
    if email is not None and not _EMAIL.match(email):
        raise errors.validation("Ongeldig: E-mail")
    country = _text(p.get("Country"))
    if country is not None:
        if not re.fullmatch(r"[A-Za-z]{2}", country):
            raise errors.invalid_reference("Land")
        country = country.upper()
    condition = _text(p.get("PaymentConditionSales"))
    condition_record = payment_condition(ctx, condition) if condition else None
    sales_vat = _text(p.get("SalesVATCode"))
    sales_vat_record = vat_code(ctx, sales_vat) if sales_vat else None
    if p.get("Code") is not None and p["Code"].strip():
        code = pad_account_code(p["Code"])
        if ctx.data.find(schema.ACCOUNTS, "Code", code) is not None:
            raise errors.already_exists()
    else:
        code = _next_account_code(ctx)

    record = {
        **{k: v for k, v in p.items() if k in schema.ACCOUNTS.writable},
        "ID": new_guid(),
        "Code": code,
        "Name": name,
        "SearchCode": p.get("SearchCode") or name[:10].upper(),
        "Email": email,
        "Status": status,
        "Type": "A",
        "Country": country,
        "Language": p.get("Language") or "NL",
        "PaymentConditionSales": condition_record["Code"] if condition_record else None,
        "PaymentConditionSalesDescription": condition_record["Description"] if condition_record else None,
        "SalesVATCode": sales_vat_record["Code"] if sales_vat_record else None,
        "SalesVATCodeDescription": sales_vat_record["Description"] if sales_vat_record else None,
        "Blocked": bool(p.get("Blocked", False)),
        "IsSales": status == "C",  # read-only in current docs; derived from Status
        "IsSupplier": bool(p.get("IsSupplier", False)),
    }
    return ctx.data.insert(schema.ACCOUNTS, record, ctx.now), True


_ADDRESS_IDENTITY = ("Type", "AddressLine1", "AddressLine2", "AddressLine3", "Postcode", "City", "Country")


def _same_address(row: dict, candidate: dict) -> bool:
    def norm(value: object) -> object:
        return collation_key(value.strip()) if isinstance(value, str) else value

    return all(norm(row.get(f) or None) == norm(candidate.get(f) or None) for f in _ADDRESS_IDENTITY)


def create_address(ctx: WriteContext, p: dict, _lines: None = None) -> tuple[dict, bool]:
    account_id = p.get("Account")
    if account_id is None:
        raise errors.required("Relatie")
    account = ctx.data.get(schema.ACCOUNTS, account_id)
    if account is None:
        raise errors.invalid_reference("Relatie")
    if p.get("Type") is None:
        raise errors.required("Type")
    if p["Type"] not in ADDRESS_TYPES:
        raise errors.validation("Ongeldig: Type")
    country = _text(p.get("Country"))
    candidate = {**p, "Country": country.upper() if country else None}
    # Exact returns the ID of an identical address of the account instead of a duplicate.
    for row in ctx.data.rows(schema.ADDRESSES):
        if row["Account"] == account_id and _same_address(row, candidate):
            return row, False
    record = {
        **{k: v for k, v in candidate.items() if k in schema.ADDRESSES.writable},
        "ID": new_guid(),
        "AccountName": account["Name"],
        "Main": bool(p.get("Main", False)),
    }
    return ctx.data.insert(schema.ADDRESSES, record, ctx.now), True


def create_item(ctx: WriteContext, p: dict, _lines: None = None) -> tuple[dict, bool]:
    code = _text(p.get("Code"))
    if code is None:
        raise errors.required("Code")
    description = _text(p.get("Description"))
    if description is None:
        raise errors.required("Omschrijving")
    if ctx.data.find(schema.ITEMS, "Code", code) is not None:
        raise errors.already_exists()
    vat = _text(p.get("SalesVatCode"))
    vat_record = vat_code(ctx, vat) if vat else None
    gl_record = None
    if p.get("GLRevenue") is not None:
        gl_record = ctx.data.get(schema.GL_ACCOUNTS, p["GLRevenue"])
        if gl_record is None:
            raise errors.invalid_reference("Grootboekrekening omzet")
    record = {
        **{k: v for k, v in p.items() if k in schema.ITEMS.writable},
        "ID": new_guid(),
        "Code": code,
        "Description": description,
        "IsSalesItem": p.get("IsSalesItem", True) is not False,
        "IsStockItem": bool(p.get("IsStockItem", False)),
        "IsPurchaseItem": bool(p.get("IsPurchaseItem", False)),
        "IsFractionAllowedItem": bool(p.get("IsFractionAllowedItem", False)),
        "SalesVatCode": vat_record["Code"] if vat_record else None,
        "SalesVatCodeDescription": vat_record["Description"] if vat_record else None,
        "GLRevenueCode": gl_record["Code"] if gl_record else None,
        "Unit": p.get("Unit") or "stuk",
        "StandardSalesPrice": Decimal("0"),
        "StartDate": p.get("StartDate") or ctx.now,
    }
    return ctx.data.insert(schema.ITEMS, record, ctx.now), True


def create_payment_condition(ctx: WriteContext, p: dict, _lines: None = None) -> tuple[dict, bool]:
    code = _text(p.get("Code"))
    if code is None:
        raise errors.required("Code")
    description = _text(p.get("Description"))
    if description is None:
        raise errors.required("Omschrijving")
    if ctx.data.find(schema.PAYMENT_CONDITIONS, "Code", code) is not None:
        raise errors.already_exists()
    method = (p.get("PaymentMethod") or "B").upper()
    if method not in PAYMENT_METHODS:
        raise errors.validation("Ongeldig: Betaalwijze")
    record = {
        **{k: v for k, v in p.items() if k in schema.PAYMENT_CONDITIONS.writable},
        "ID": new_guid(),
        "Code": code,
        "Description": description,
        "PaymentDays": p.get("PaymentDays") or 0,
        "PaymentMethod": method,
    }
    return ctx.data.insert(schema.PAYMENT_CONDITIONS, record, ctx.now), True
