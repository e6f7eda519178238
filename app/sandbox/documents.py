"""Creating sales documents: sales entries, sales invoices and sales orders.

The sales entry is Koppel's default target, so its rules are the most complete:

* ``Journal`` is a journal *code* ("70"), must exist and be a sales journal (type 20);
* ``Customer`` must be an existing account with Status C ("Ongeldig: Factuur voor (Type)");
* each line's ``GLAccount`` (GUID) must be a P&L account ("Ongeldig: Grootboekrekeningtype");
* ``AmountFC`` on a line is the amount **excluding** VAT;
* ``VATCode`` is a code, defaulting to the GL account's; ``VATAmountFC`` may be sent to
  override the calculated VAT, which is otherwise ``AmountFC × Percentage`` rounded
  half-up to cents per line;
* the server fills EntryID, EntryNumber (per journal and year: 26700001…), the totals
  (AmountFC/DC = lines + VAT), VATAmountFC/DC, Status 20 and Type 20 (21 when the
  total is negative: a credit note).

Decisions where the sources are silent:

* VAT codes of type I ("including") are treated like E: the sandbox always reads
  ``AmountFC`` as net, as Exact's docs define it. Send net amounts with E codes and an
  explicit ``VATAmountFC`` for deterministic results (fact sheet, "Prices incl/excl").
* A client-sent ``EntryID`` is ignored (a fresh GUID is generated); do not rely on it
  as an idempotency key — dedupe by ``YourRef``.
* Purchase-only (VATTransactionType P) or blocked VAT codes on a sales line are refused.

Everything is validated before anything is stored, so a failed POST leaves no trace.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from app.sandbox import errors, schema
from app.sandbox.masterdata import payment_condition
from app.sandbox.payload import WriteContext
from app.sandbox.values import round_cents, start_of_day, new_guid

SALES_JOURNAL = 20
INVOICE_TYPES = {8020: "Verkoopfactuur", 8021: "Verkoopcreditnota", 8023: "Directe verkoopfactuur",
                 8024: "Directe verkoopcreditnota"}
DIRECT_INVOICE_TYPES = {8023, 8024}
ONE = Decimal("1")
ZERO = Decimal("0")


# -- shared reference checks -------------------------------------------------------------

def _sales_journal(ctx: WriteContext, code: str | None) -> dict:
    if code is None or not code.strip():
        raise errors.required("Dagboek")
    journal = ctx.data.find(schema.JOURNALS, "Code", code.strip())
    if journal is None:
        raise errors.invalid_reference("Dagboek")
    if journal["Type"] != SALES_JOURNAL:
        raise errors.validation("Ongeldig: Dagboek (Type)")
    return journal


def _account(ctx: WriteContext, account_id: str | None, label: str) -> dict | None:
    if account_id is None:
        return None
    account = ctx.data.get(schema.ACCOUNTS, account_id)
    if account is None:
        raise errors.invalid_reference(label)
    return account


def _revenue_gl(ctx: WriteContext, gl_id: str | None) -> dict:
    if gl_id is None:
        raise errors.required("Grootboekrekening")
    gl = ctx.data.get(schema.GL_ACCOUNTS, gl_id)
    if gl is None:
        raise errors.invalid_reference("Grootboekrekening")
    # A receivable/VAT/bank account on a sales line is refused (GH#121).
    if gl["BalanceType"] != "W":
        raise errors.validation("Ongeldig: Grootboekrekeningtype")
    return gl


def _sales_vat(ctx: WriteContext, code: str | None) -> dict | None:
    if code is None or not code.strip():
        return None
    vat = ctx.data.find(schema.VAT_CODES, "Code", code)
    if vat is None:
        raise errors.invalid_reference("Btw-code")
    if vat["VATTransactionType"] not in ("S", "B"):
        raise errors.validation("Ongeldig: Btw-code (Type)")
    if vat["IsBlocked"]:
        raise errors.validation("Ongeldig: Btw-code (Geblokkeerd)")
    return vat


def _vat_amount(net: Decimal, vat: dict | None, explicit: Decimal | None) -> Decimal:
    if explicit is not None:
        return explicit
    if vat is None:
        return ZERO
    return round_cents(net * vat["Percentage"])


def _dimensions(ctx: WriteContext, line: dict, gl: dict | None) -> dict:
    """Cost centre / cost unit are codes, project a GUID; all must exist."""
    result = {}
    cost_center = line.get("CostCenter")
    if cost_center:
        if ctx.data.find(schema.COST_CENTERS, "Code", cost_center) is None:
            raise errors.invalid_reference("Kostenplaats")
        result["CostCenter"] = cost_center
    elif gl is not None and gl.get("UseCostcenter") == 1:
        raise errors.required("Kostenplaats")
    cost_unit = line.get("CostUnit")
    if cost_unit:
        if ctx.data.find(schema.COST_UNITS, "Code", cost_unit) is None:
            raise errors.invalid_reference("Kostendrager")
        result["CostUnit"] = cost_unit
    elif gl is not None and gl.get("UseCostunit") == 1:
        raise errors.required("Kostendrager")
    if line.get("Project") is not None:
        if ctx.data.get(schema.PROJECTS, line["Project"]) is None:
            raise errors.invalid_reference("Project")
        result["Project"] = line["Project"]
    return result


def _condition(ctx: WriteContext, code: str | None, account: dict | None) -> dict | None:
    code = code or (account or {}).get("PaymentConditionSales")
    return payment_condition(ctx, code) if code else None


def _due(moment: datetime, condition: dict | None) -> datetime:
    return moment + timedelta(days=(condition or {}).get("PaymentDays") or 0)


def _currency(ctx: WriteContext, p: dict) -> tuple[str, Decimal]:
    currency = (p.get("Currency") or ctx.division["Currency"]).upper()
    if currency == ctx.division["Currency"]:
        return currency, ONE
    rate = p.get("Rate") or ONE
    if rate <= 0:
        raise errors.validation("Ongeldig: Koers")
    return currency, rate


def _require_lines(lines: list[dict]) -> None:
    if not lines:
        raise errors.required("Regels")


# -- sales entries -----------------------------------------------------------------------

def create_sales_entry(ctx: WriteContext, p: dict, lines: list[dict]) -> tuple[dict, bool]:
    journal = _sales_journal(ctx, p.get("Journal"))
    if p.get("Customer") is None:
        raise errors.required("Factuur voor / Besteld door")
    customer = ctx.data.get(schema.ACCOUNTS, p["Customer"])
    if customer is None or customer["Status"] != "C":
        raise errors.validation("Ongeldig: Factuur voor (Type)")
    if customer["Blocked"]:
        raise errors.validation("Ongeldig: Factuur voor (Geblokkeerd)")
    _require_lines(lines)
    condition = _condition(ctx, p.get("PaymentCondition"), customer)
    currency, rate = _currency(ctx, p)
    entry_date = p.get("EntryDate") or start_of_day(ctx.now)
    period = p.get("ReportingPeriod") or entry_date.month
    if not 1 <= period <= 12:
        raise errors.validation("Ongeldig: Periode")
    year = p.get("ReportingYear") or entry_date.year

    entry_id = new_guid()
    prepared = []
    for number, line in enumerate(lines, start=1):
        gl = _revenue_gl(ctx, line.get("GLAccount"))
        if line.get("AmountFC") is None:
            raise errors.required("Bedrag")
        amount = line["AmountFC"]
        vat = _sales_vat(ctx, line.get("VATCode") or gl["VATCode"])
        vat_amount = _vat_amount(amount, vat, line.get("VATAmountFC"))
        prepared.append(
            {
                **{k: v for k, v in line.items() if k in schema.SALES_ENTRY_LINES.writable},
                **_dimensions(ctx, line, gl),
                "ID": new_guid(),
                "EntryID": entry_id,
                "LineNumber": number,
                "GLAccount": gl["ID"],
                "GLAccountCode": gl["Code"],
                "GLAccountDescription": gl["Description"],
                "Description": line.get("Description") or p.get("Description"),
                "AmountFC": amount,
                "AmountDC": round_cents(amount * rate),
                "VATCode": vat["Code"] if vat else None,
                "VATCodeDescription": vat["Description"] if vat else None,
                "VATPercentage": vat["Percentage"] if vat else ZERO,
                "VATBaseAmountFC": amount if vat else ZERO,
                "VATBaseAmountDC": round_cents(amount * rate) if vat else ZERO,
                "VATAmountFC": vat_amount,
                "VATAmountDC": round_cents(vat_amount * rate),
            }
        )

    vat_total = sum((line["VATAmountFC"] for line in prepared), ZERO)
    total = sum((line["AmountFC"] for line in prepared), ZERO) + vat_total
    entry_number = ctx.data.next_journal_number(journal["Code"], entry_date.year)
    credit = total < 0
    header = {
        **{k: v for k, v in p.items() if k in schema.SALES_ENTRIES.writable and k != "SalesEntryLines"},
        "EntryID": entry_id,
        "Journal": journal["Code"],
        "JournalDescription": journal["Description"],
        "EntryNumber": entry_number,
        "InvoiceNumber": p.get("InvoiceNumber") or entry_number,
        "EntryDate": entry_date,
        "DueDate": p.get("DueDate") or _due(entry_date, condition),
        "ReportingYear": year,
        "ReportingPeriod": period,
        "Customer": customer["ID"],
        "CustomerName": customer["Name"],
        "Currency": currency,
        "Rate": rate,
        "AmountFC": total,
        "AmountDC": round_cents(total * rate),
        "VATAmountFC": vat_total,
        "VATAmountDC": round_cents(vat_total * rate),
        "Status": 20,
        "StatusDescription": "Open",
        "Type": 21 if credit else 20,
        "TypeDescription": "Verkoopcreditnota" if credit else "Verkoopfactuur",
        "PaymentCondition": condition["Code"] if condition else None,
        "PaymentConditionDescription": condition["Description"] if condition else None,
    }
    record = ctx.data.insert(schema.SALES_ENTRIES, header, ctx.now)
    for line in prepared:
        ctx.data.insert(schema.SALES_ENTRY_LINES, line, ctx.now)
    return record, True


# -- item-based documents (invoices, orders) ---------------------------------------------

def _item_line(ctx: WriteContext, line: dict, *, vat_field: str, gl_required: bool) -> dict:
    """Price, VAT and GL of one item line; shared by invoices and orders."""
    if line.get("Item") is None:
        raise errors.required("Artikel")
    item = ctx.data.get(schema.ITEMS, line["Item"])
    if item is None:
        raise errors.invalid_reference("Artikel")
    if not item["IsSalesItem"]:
        raise errors.validation("Ongeldig: Artikel (Verkoopartikel)")
    quantity = line.get("Quantity")
    quantity = ONE if quantity is None else quantity
    unit_price = line.get("UnitPrice")
    unit_price = item["StandardSalesPrice"] if unit_price is None else unit_price
    discount = line.get("Discount") or ZERO
    net_price = line.get("NetPrice")
    net_price = unit_price * (ONE - discount) if net_price is None else net_price
    amount = line.get("AmountFC")
    amount = round_cents(quantity * net_price) if amount is None else amount

    gl = None
    if gl_required:
        gl_id = line.get("GLAccount") or item["GLRevenue"]
        if gl_id is None:
            default = ctx.data.find(schema.GL_ACCOUNTS, "Code", "8000")
            gl_id = default["ID"] if default else None
        gl = _revenue_gl(ctx, gl_id)
    vat = _sales_vat(ctx, line.get("VATCode") or item["SalesVatCode"] or (gl or {}).get("VATCode"))
    vat_amount = _vat_amount(amount, vat, line.get(vat_field))
    result = {
        **_dimensions(ctx, line, gl),
        "ID": new_guid(),
        "Item": item["ID"],
        "ItemCode": item["Code"],
        "ItemDescription": item["Description"],
        "Description": line.get("Description") or item["Description"],
        "Quantity": quantity,
        "UnitCode": line.get("UnitCode") or item["Unit"],
        "UnitPrice": unit_price,
        "NetPrice": net_price,
        "Discount": discount,
        "AmountFC": amount,
        "AmountDC": amount,
        "VATCode": vat["Code"] if vat else None,
        "VATCodeDescription": vat["Description"] if vat else None,
        "VATPercentage": vat["Percentage"] if vat else ZERO,
        vat_field: vat_amount,
        "DeliveryDate": line.get("DeliveryDate"),
    }
    if gl is not None:
        result["GLAccount"] = gl["ID"]
        result["VATAmountDC"] = vat_amount
    return result


def _totals(lines: list[dict], vat_field: str) -> tuple[Decimal, Decimal, Decimal]:
    net = sum((line["AmountFC"] for line in lines), ZERO)
    vat = sum((line[vat_field] for line in lines), ZERO)
    gross_list = sum((round_cents(line["Quantity"] * line["UnitPrice"]) for line in lines), ZERO)
    return net, vat, gross_list - net


def create_sales_invoice(ctx: WriteContext, p: dict, lines: list[dict]) -> tuple[dict, bool]:
    journal = _sales_journal(ctx, p.get("Journal"))
    if p.get("OrderedBy") is None:
        raise errors.required("Factuur voor / Besteld door")
    ordered_by = _account(ctx, p["OrderedBy"], "Besteld door")
    invoice_to = _account(ctx, p.get("InvoiceTo"), "Factuur voor") or ordered_by
    deliver_to = _account(ctx, p.get("DeliverTo"), "Afleveren aan") or ordered_by
    if p.get("DeliverToAddress") is not None and ctx.data.get(schema.ADDRESSES, p["DeliverToAddress"]) is None:
        raise errors.invalid_reference("Afleveradres")
    invoice_type = p.get("Type") or 8020
    if invoice_type not in INVOICE_TYPES:
        raise errors.validation("Ongeldig: Type")
    warehouse = None
    if p.get("Warehouse") is not None:
        warehouse = ctx.data.get(schema.WAREHOUSES, p["Warehouse"])
        if warehouse is None:
            raise errors.invalid_reference("Magazijn")
    if invoice_type in DIRECT_INVOICE_TYPES and warehouse is None:
        raise errors.required("Magazijn")
    _require_lines(lines)
    condition = _condition(ctx, p.get("PaymentCondition"), invoice_to)
    currency, _rate = _currency(ctx, p)
    order_date = p.get("OrderDate") or start_of_day(ctx.now)

    invoice_id = new_guid()
    prepared = []
    for number, line in enumerate(lines, start=1):
        prepared.append(
            {**_item_line(ctx, line, vat_field="VATAmountFC", gl_required=True), "InvoiceID": invoice_id,
             "LineNumber": number}
        )
    net, vat, discount = _totals(prepared, "VATAmountFC")
    header = {
        **{k: v for k, v in p.items() if k in schema.SALES_INVOICES.writable and k != "SalesInvoiceLines"},
        "InvoiceID": invoice_id,
        "Journal": journal["Code"],
        "JournalDescription": journal["Description"],
        "InvoiceNumber": ctx.data.next_journal_number(journal["Code"], order_date.year),
        "InvoiceDate": order_date,
        "OrderDate": order_date,
        "DueDate": p.get("DueDate") or _due(order_date, condition),
        "OrderedBy": ordered_by["ID"],
        "OrderedByName": ordered_by["Name"],
        "InvoiceTo": invoice_to["ID"],
        "InvoiceToName": invoice_to["Name"],
        "DeliverTo": deliver_to["ID"],
        "DeliverToName": deliver_to["Name"],
        "PaymentCondition": condition["Code"] if condition else None,
        "PaymentConditionDescription": condition["Description"] if condition else None,
        "Currency": currency,
        "AmountDiscount": discount,
        "AmountFC": net + vat,
        "AmountDC": net + vat,
        "VATAmountFC": vat,
        "VATAmountDC": vat,
        "Type": invoice_type,
        "TypeDescription": INVOICE_TYPES[invoice_type],
        "Status": 20,
        "StatusDescription": "Open",
        "Warehouse": warehouse["ID"] if warehouse else None,
    }
    record = ctx.data.insert(schema.SALES_INVOICES, header, ctx.now)
    for line in prepared:
        ctx.data.insert(schema.SALES_INVOICE_LINES, line, ctx.now)
    return record, True


def create_sales_order(ctx: WriteContext, p: dict, lines: list[dict]) -> tuple[dict, bool]:
    if p.get("OrderedBy") is None:
        raise errors.required("Besteld door")
    ordered_by = _account(ctx, p["OrderedBy"], "Besteld door")
    invoice_to = _account(ctx, p.get("InvoiceTo"), "Factuur voor") or ordered_by
    deliver_to = _account(ctx, p.get("DeliverTo"), "Afleveren aan") or ordered_by
    if p.get("DeliveryAddress") is not None and ctx.data.get(schema.ADDRESSES, p["DeliveryAddress"]) is None:
        raise errors.invalid_reference("Afleveradres")
    if p.get("WarehouseID") is not None:
        warehouse = ctx.data.get(schema.WAREHOUSES, p["WarehouseID"])
        if warehouse is None:
            raise errors.invalid_reference("Magazijn")
    else:
        # Outside the W&D editions every order goes to the main warehouse.
        warehouse = next((w for w in ctx.data.rows(schema.WAREHOUSES) if w["Main"]), None)
    if p.get("OrderNumber") is not None and ctx.data.find(schema.SALES_ORDERS, "OrderNumber", p["OrderNumber"]):
        raise errors.already_exists()
    _require_lines(lines)
    condition = _condition(ctx, p.get("PaymentCondition"), invoice_to)
    currency, _rate = _currency(ctx, p)
    order_date = p.get("OrderDate") or start_of_day(ctx.now)
    delivery_date = p.get("DeliveryDate") or order_date

    order_id = new_guid()
    prepared = []
    for number, line in enumerate(lines, start=1):
        prepared.append(
            {**_item_line(ctx, line, vat_field="VATAmount", gl_required=False), "OrderID": order_id,
             "LineNumber": number, "DeliveryDate": line.get("DeliveryDate") or delivery_date}
        )
    net, vat, discount = _totals(prepared, "VATAmount")
    if p.get("OrderNumber") is not None:
        order_number = p["OrderNumber"]
        ctx.data.last_order_number = max(ctx.data.last_order_number, order_number)
    else:
        order_number = ctx.data.next_order_number()
    header = {
        **{k: v for k, v in p.items() if k in schema.SALES_ORDERS.writable and k != "SalesOrderLines"},
        "OrderID": order_id,
        "OrderNumber": order_number,
        "OrderDate": order_date,
        "DeliveryDate": delivery_date,
        "OrderedBy": ordered_by["ID"],
        "OrderedByName": ordered_by["Name"],
        "InvoiceTo": invoice_to["ID"],
        "InvoiceToName": invoice_to["Name"],
        "DeliverTo": deliver_to["ID"],
        "DeliverToName": deliver_to["Name"],
        "PaymentCondition": condition["Code"] if condition else None,
        "PaymentConditionDescription": condition["Description"] if condition else None,
        "Currency": currency,
        "AmountFCExclVat": net,
        "AmountFC": net + vat,
        "AmountDC": net + vat,
        "AmountDiscount": discount,
        "Status": 12,
        "StatusDescription": "Open",
        "WarehouseID": warehouse["ID"] if warehouse else None,
        "WarehouseCode": warehouse["Code"] if warehouse else None,
        "WarehouseDescription": warehouse["Description"] if warehouse else None,
    }
    record = ctx.data.insert(schema.SALES_ORDERS, header, ctx.now)
    for line in prepared:
        ctx.data.insert(schema.SALES_ORDER_LINES, line, ctx.now)
    return record, True
