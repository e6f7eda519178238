"""The entity sets the sandbox serves, with Exact's exact property names and Edm types.

The schema drives three behaviours that make the simulator strict in the same
places Exact is:

* a POST property that the type does not have is a 400 (WCF refuses unknown names),
  while a *read-only* property that does exist is silently ignored;
* ``$filter``/``$select``/``$orderby`` on an unknown property is a 400;
* filter literals must match the property's Edm type (``guid'…'`` for a GUID…).

Property lists are the subset Koppel and its tests need, taken from Exact's REST
reference as mirrored by the PI/PQ clients (see the fact sheet).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from app.sandbox.values import BOOL, DATETIME, DECIMAL, GUID, INT, STRING

ALL_METHODS = frozenset({"GET", "POST", "PUT", "DELETE"})
READ_ONLY = frozenset({"GET"})
GET_POST = frozenset({"GET", "POST"})

# The line collections cannot be filtered or expanded further; they are "navigation"
# properties of their header and show up as __deferred unless $expand names them.


@dataclass(frozen=True)
class Navigation:
    name: str  # property name on the header, e.g. "SalesEntryLines"
    child: str  # entity set path of the lines, e.g. "salesentry/SalesEntryLines"
    foreign_key: str  # property on the line pointing at the header key, e.g. "EntryID"


@dataclass(frozen=True)
class EntitySet:
    path: str  # "service/Entity" as in the URL
    type_name: str  # Exact.Web.Api.Models.<type_name>, used in __metadata and errors
    key: str
    fields: dict[str, str]  # property -> Edm type, in Exact's output order
    writable: frozenset[str] = frozenset()
    methods: frozenset[str] = READ_ONLY
    # Exact refuses an unfiltered GET on these sets; the filter must use one of them.
    mandatory_filter: tuple[str, ...] = ()
    navigation: dict[str, Navigation] = field(default_factory=dict)

    @property
    def service(self) -> str:
        return self.path.split("/", 1)[0]

    @property
    def name(self) -> str:
        return self.path.split("/", 1)[1]

    @property
    def full_type(self) -> str:
        return f"Exact.Web.Api.Models.{self.type_name}"

    def key_literal(self, key: object) -> str:
        """How the key appears in a URL: Accounts(guid'…') or Divisions(1234567)."""
        if self.fields[self.key] == GUID:
            return f"guid'{key}'"
        return str(key)


def _fields(*pairs: tuple[str, str]) -> dict[str, str]:
    return dict(pairs)


_AUDIT = (("Created", DATETIME), ("Modified", DATETIME), ("Division", INT))

_DIVISION_FIELDS = _fields(
    ("Code", INT),
    ("BlockingStatus", INT),
    ("Country", STRING),
    ("CountryDescription", STRING),
    ("Currency", STRING),
    ("CurrencyDescription", STRING),
    ("Customer", GUID),
    ("CustomerCode", STRING),
    ("CustomerName", STRING),
    ("Description", STRING),
    ("Hid", INT),
    ("IsMainDivision", BOOL),
    ("VATNumber", STRING),
    ("Created", DATETIME),
    ("Modified", DATETIME),
)

DIVISIONS = EntitySet("system/Divisions", "Division", "Code", _DIVISION_FIELDS)
ALL_DIVISIONS = EntitySet("system/AllDivisions", "AllDivision", "Code", _DIVISION_FIELDS)

VAT_CODES = EntitySet(
    "vat/VATCodes",
    "VATCode",
    "ID",
    _fields(
        ("ID", GUID),
        ("Code", STRING),
        ("Description", STRING),
        ("Type", STRING),
        ("Percentage", DECIMAL),
        ("VATTransactionType", STRING),
        ("EUSalesListing", STRING),
        ("Charged", BOOL),
        ("IntraStat", BOOL),
        ("OssCountry", STRING),
        ("IsBlocked", BOOL),
        ("GLToPay", GUID),
        ("GLToPayCode", STRING),
        ("GLToPayDescription", STRING),
        *_AUDIT,
    ),
)

GL_ACCOUNTS = EntitySet(
    "financial/GLAccounts",
    "GLAccount",
    "ID",
    _fields(
        ("ID", GUID),
        ("Code", STRING),
        ("Description", STRING),
        ("Type", INT),
        ("TypeDescription", STRING),
        ("BalanceType", STRING),
        ("BalanceSide", STRING),
        ("VATCode", STRING),
        ("VATDescription", STRING),
        ("IsBlocked", BOOL),
        ("UseCostcenter", INT),
        ("UseCostunit", INT),
        *_AUDIT,
    ),
)

JOURNALS = EntitySet(
    "financial/Journals",
    "Journal",
    "ID",
    _fields(
        ("ID", GUID),
        ("Code", STRING),
        ("Description", STRING),
        ("Type", INT),
        ("TypeDescription", STRING),
        ("Currency", STRING),
        ("AllowVariableCurrency", BOOL),
        ("IsBlocked", BOOL),
        ("GLAccount", GUID),
        ("GLAccountCode", STRING),
        *_AUDIT,
    ),
)

PAYMENT_CONDITIONS = EntitySet(
    "cashflow/PaymentConditions",
    "PaymentCondition",
    "ID",
    _fields(
        ("ID", GUID),
        ("Code", STRING),
        ("Description", STRING),
        ("PaymentDays", INT),
        ("PaymentMethod", STRING),
        ("DiscountPercentage", DECIMAL),
        ("DiscountPaymentDays", INT),
        *_AUDIT,
    ),
    writable=frozenset(
        {"Code", "Description", "PaymentDays", "PaymentMethod", "DiscountPercentage", "DiscountPaymentDays"}
    ),
    methods=GET_POST,
)

ACCOUNTS = EntitySet(
    "crm/Accounts",
    "Account",
    "ID",
    _fields(
        ("ID", GUID),
        ("Code", STRING),
        ("Name", STRING),
        ("SearchCode", STRING),
        ("Email", STRING),
        ("Phone", STRING),
        ("Website", STRING),
        ("Status", STRING),
        ("Type", STRING),
        ("Country", STRING),
        ("VATNumber", STRING),
        ("ChamberOfCommerce", STRING),
        ("AddressLine1", STRING),
        ("AddressLine2", STRING),
        ("AddressLine3", STRING),
        ("Postcode", STRING),
        ("City", STRING),
        ("Language", STRING),
        ("SalesVATCode", STRING),
        ("SalesVATCodeDescription", STRING),
        ("PaymentConditionSales", STRING),
        ("PaymentConditionSalesDescription", STRING),
        ("InvoicingMethod", INT),
        ("Blocked", BOOL),
        ("IsSales", BOOL),
        ("IsSupplier", BOOL),
        *_AUDIT,
    ),
    writable=frozenset(
        {
            "Code", "Name", "SearchCode", "Email", "Phone", "Website", "Status", "Country",
            "VATNumber", "ChamberOfCommerce", "AddressLine1", "AddressLine2", "AddressLine3",
            "Postcode", "City", "Language", "SalesVATCode", "PaymentConditionSales",
            "InvoicingMethod", "Blocked", "IsSupplier",
        }
    ),
    methods=ALL_METHODS,
    # Exact's real list (GH#591) is longer; these are the ones this schema carries.
    mandatory_filter=(
        "AddressLine1", "Blocked", "ChamberOfCommerce", "City", "Code", "Country", "Created",
        "Email", "ID", "IsSales", "IsSupplier", "Modified", "Name", "Phone", "Postcode",
        "SearchCode", "Status", "Type", "VATNumber",
    ),
)

ADDRESSES = EntitySet(
    "crm/Addresses",
    "Address",
    "ID",
    _fields(
        ("ID", GUID),
        ("Account", GUID),
        ("AccountName", STRING),
        ("Type", INT),
        ("Main", BOOL),
        ("AddressLine1", STRING),
        ("AddressLine2", STRING),
        ("AddressLine3", STRING),
        ("Postcode", STRING),
        ("City", STRING),
        ("Country", STRING),
        *_AUDIT,
    ),
    writable=frozenset(
        {"Account", "Type", "Main", "AddressLine1", "AddressLine2", "AddressLine3", "Postcode", "City", "Country"}
    ),
    methods=ALL_METHODS,
)

ITEMS = EntitySet(
    "logistics/Items",
    "Item",
    "ID",
    _fields(
        ("ID", GUID),
        ("Code", STRING),
        ("Description", STRING),
        ("Barcode", STRING),
        ("IsSalesItem", BOOL),
        ("IsStockItem", BOOL),
        ("IsPurchaseItem", BOOL),
        ("IsFractionAllowedItem", BOOL),
        ("SalesVatCode", STRING),
        ("SalesVatCodeDescription", STRING),
        ("GLRevenue", GUID),
        ("GLRevenueCode", STRING),
        ("ItemGroup", GUID),
        ("Unit", STRING),
        ("UnitDescription", STRING),
        ("StandardSalesPrice", DECIMAL),
        ("StartDate", DATETIME),
        ("EndDate", DATETIME),
        *_AUDIT,
    ),
    writable=frozenset(
        {
            "Code", "Description", "Barcode", "IsSalesItem", "IsStockItem", "IsPurchaseItem",
            "IsFractionAllowedItem", "SalesVatCode", "GLRevenue", "ItemGroup", "Unit",
            "StartDate", "EndDate",
        }
    ),
    methods=ALL_METHODS,
    mandatory_filter=("Barcode", "Code", "Created", "Description", "EndDate", "ID", "Modified", "StartDate"),
)

WAREHOUSES = EntitySet(
    "inventory/Warehouses",
    "Warehouse",
    "ID",
    _fields(
        ("ID", GUID),
        ("Code", STRING),
        ("Description", STRING),
        ("Main", BOOL),
        ("EMail", STRING),
        ("UseStorageLocations", BOOL),
        *_AUDIT,
    ),
)

COST_CENTERS = EntitySet(
    "hrm/CostCenters",
    "CostCenter",
    "ID",
    _fields(("ID", GUID), ("Code", STRING), ("Description", STRING), ("Active", BOOL), *_AUDIT),
)

COST_UNITS = EntitySet(
    "hrm/CostUnits",
    "CostUnit",
    "ID",
    _fields(("ID", GUID), ("Code", STRING), ("Description", STRING), *_AUDIT),
)

PROJECTS = EntitySet(
    "project/Projects",
    "Project",
    "ID",
    _fields(
        ("ID", GUID),
        ("Code", STRING),
        ("Description", STRING),
        ("Account", GUID),
        ("AccountName", STRING),
        ("Type", INT),
        ("TypeDescription", STRING),
        ("StartDate", DATETIME),
        ("EndDate", DATETIME),
        *_AUDIT,
    ),
)

# ---- sales documents: header + lines ---------------------------------------------

_LINE_REFS = (("CostCenter", STRING), ("CostUnit", STRING), ("Project", GUID))

SALES_ENTRY_LINES = EntitySet(
    "salesentry/SalesEntryLines",
    "SalesEntryLine",
    "ID",
    _fields(
        ("ID", GUID),
        ("EntryID", GUID),
        ("LineNumber", INT),
        ("GLAccount", GUID),
        ("GLAccountCode", STRING),
        ("GLAccountDescription", STRING),
        ("Description", STRING),
        ("Quantity", DECIMAL),
        ("AmountFC", DECIMAL),
        ("AmountDC", DECIMAL),
        ("VATCode", STRING),
        ("VATCodeDescription", STRING),
        ("VATPercentage", DECIMAL),
        ("VATBaseAmountFC", DECIMAL),
        ("VATBaseAmountDC", DECIMAL),
        ("VATAmountFC", DECIMAL),
        ("VATAmountDC", DECIMAL),
        *_LINE_REFS,
        ("From", DATETIME),
        ("To", DATETIME),
        ("Division", INT),
    ),
    writable=frozenset(
        {"GLAccount", "Description", "Quantity", "AmountFC", "VATCode", "VATAmountFC",
         "CostCenter", "CostUnit", "Project", "From", "To"}
    ),
)

SALES_ENTRIES = EntitySet(
    "salesentry/SalesEntries",
    "SalesEntry",
    "EntryID",
    _fields(
        ("EntryID", GUID),
        ("Journal", STRING),
        ("JournalDescription", STRING),
        ("EntryNumber", INT),
        ("InvoiceNumber", INT),
        ("OrderNumber", INT),
        ("EntryDate", DATETIME),
        ("DueDate", DATETIME),
        ("ReportingYear", INT),
        ("ReportingPeriod", INT),
        ("Customer", GUID),
        ("CustomerName", STRING),
        ("Currency", STRING),
        ("Rate", DECIMAL),
        ("AmountFC", DECIMAL),
        ("AmountDC", DECIMAL),
        ("VATAmountFC", DECIMAL),
        ("VATAmountDC", DECIMAL),
        ("Status", INT),
        ("StatusDescription", STRING),
        ("Type", INT),
        ("TypeDescription", STRING),
        ("YourRef", STRING),
        ("Description", STRING),
        ("PaymentReference", STRING),
        ("PaymentCondition", STRING),
        ("PaymentConditionDescription", STRING),
        ("ExternalLinkReference", STRING),
        *_AUDIT,
    ),
    writable=frozenset(
        {"Journal", "EntryDate", "DueDate", "ReportingYear", "ReportingPeriod", "Customer", "Currency",
         "Rate", "YourRef", "Description", "PaymentReference", "PaymentCondition", "InvoiceNumber",
         "OrderNumber", "VATAmountFC", "ExternalLinkReference", "SalesEntryLines"}
    ),
    methods=ALL_METHODS,
    navigation={"SalesEntryLines": Navigation("SalesEntryLines", SALES_ENTRY_LINES.path, "EntryID")},
)

SALES_INVOICE_LINES = EntitySet(
    "salesinvoice/SalesInvoiceLines",
    "SalesInvoiceLine",
    "ID",
    _fields(
        ("ID", GUID),
        ("InvoiceID", GUID),
        ("LineNumber", INT),
        ("Item", GUID),
        ("ItemCode", STRING),
        ("ItemDescription", STRING),
        ("Description", STRING),
        ("Quantity", DECIMAL),
        ("UnitCode", STRING),
        ("UnitPrice", DECIMAL),
        ("NetPrice", DECIMAL),
        ("Discount", DECIMAL),
        ("AmountFC", DECIMAL),
        ("AmountDC", DECIMAL),
        ("VATCode", STRING),
        ("VATCodeDescription", STRING),
        ("VATPercentage", DECIMAL),
        ("VATAmountFC", DECIMAL),
        ("VATAmountDC", DECIMAL),
        ("GLAccount", GUID),
        ("DeliveryDate", DATETIME),
        *_LINE_REFS,
        ("Division", INT),
    ),
    writable=frozenset(
        {"Item", "Description", "Quantity", "UnitCode", "UnitPrice", "NetPrice", "Discount", "AmountFC",
         "VATCode", "VATAmountFC", "GLAccount", "DeliveryDate", "CostCenter", "CostUnit", "Project"}
    ),
)

SALES_INVOICES = EntitySet(
    "salesinvoice/SalesInvoices",
    "SalesInvoice",
    "InvoiceID",
    _fields(
        ("InvoiceID", GUID),
        ("Journal", STRING),
        ("JournalDescription", STRING),
        ("InvoiceNumber", INT),
        ("InvoiceDate", DATETIME),
        ("OrderDate", DATETIME),
        ("DueDate", DATETIME),
        ("OrderedBy", GUID),
        ("OrderedByName", STRING),
        ("InvoiceTo", GUID),
        ("InvoiceToName", STRING),
        ("DeliverTo", GUID),
        ("DeliverToName", STRING),
        ("DeliverToAddress", GUID),
        ("YourRef", STRING),
        ("Description", STRING),
        ("Remarks", STRING),
        ("PaymentCondition", STRING),
        ("PaymentConditionDescription", STRING),
        ("PaymentReference", STRING),
        ("Currency", STRING),
        ("Discount", DECIMAL),
        ("AmountDiscount", DECIMAL),
        ("AmountFC", DECIMAL),
        ("AmountDC", DECIMAL),
        ("VATAmountFC", DECIMAL),
        ("VATAmountDC", DECIMAL),
        ("Type", INT),
        ("TypeDescription", STRING),
        ("Status", INT),
        ("StatusDescription", STRING),
        ("Warehouse", GUID),
        ("ShippingMethod", GUID),
        *_AUDIT,
    ),
    writable=frozenset(
        {"Journal", "OrderDate", "DueDate", "OrderedBy", "InvoiceTo", "DeliverTo", "DeliverToAddress",
         "YourRef", "Description", "Remarks", "PaymentCondition", "PaymentReference", "Currency",
         "Discount", "Type", "Warehouse", "ShippingMethod", "SalesInvoiceLines"}
    ),
    methods=ALL_METHODS,
    navigation={"SalesInvoiceLines": Navigation("SalesInvoiceLines", SALES_INVOICE_LINES.path, "InvoiceID")},
)

SALES_ORDER_LINES = EntitySet(
    "salesorder/SalesOrderLines",
    "SalesOrderLine",
    "ID",
    _fields(
        ("ID", GUID),
        ("OrderID", GUID),
        ("LineNumber", INT),
        ("Item", GUID),
        ("ItemCode", STRING),
        ("ItemDescription", STRING),
        ("Description", STRING),
        ("Quantity", DECIMAL),
        ("UnitCode", STRING),
        ("UnitPrice", DECIMAL),
        ("NetPrice", DECIMAL),
        ("Discount", DECIMAL),
        ("AmountFC", DECIMAL),
        ("AmountDC", DECIMAL),
        ("VATCode", STRING),
        ("VATCodeDescription", STRING),
        ("VATPercentage", DECIMAL),
        ("VATAmount", DECIMAL),
        ("DeliveryDate", DATETIME),
        *_LINE_REFS,
        ("Division", INT),
    ),
    writable=frozenset(
        {"Item", "Description", "Quantity", "UnitCode", "UnitPrice", "NetPrice", "Discount", "VATCode",
         "VATAmount", "DeliveryDate", "CostCenter", "CostUnit", "Project"}
    ),
)

SALES_ORDERS = EntitySet(
    "salesorder/SalesOrders",
    "SalesOrder",
    "OrderID",
    _fields(
        ("OrderID", GUID),
        ("OrderNumber", INT),
        ("OrderDate", DATETIME),
        ("DeliveryDate", DATETIME),
        ("OrderedBy", GUID),
        ("OrderedByName", STRING),
        ("InvoiceTo", GUID),
        ("InvoiceToName", STRING),
        ("DeliverTo", GUID),
        ("DeliverToName", STRING),
        ("DeliveryAddress", GUID),
        ("YourRef", STRING),
        ("Description", STRING),
        ("Remarks", STRING),
        ("PaymentCondition", STRING),
        ("PaymentConditionDescription", STRING),
        ("Currency", STRING),
        ("AmountFCExclVat", DECIMAL),
        ("AmountFC", DECIMAL),
        ("AmountDC", DECIMAL),
        ("AmountDiscount", DECIMAL),
        ("Status", INT),
        ("StatusDescription", STRING),
        ("ApprovalStatus", INT),
        ("ApprovalStatusDescription", STRING),
        ("WarehouseID", GUID),
        ("WarehouseCode", STRING),
        ("WarehouseDescription", STRING),
        ("ShippingMethod", GUID),
        *_AUDIT,
    ),
    writable=frozenset(
        {"OrderNumber", "OrderDate", "DeliveryDate", "OrderedBy", "InvoiceTo", "DeliverTo",
         "DeliveryAddress", "YourRef", "Description", "Remarks", "PaymentCondition", "Currency",
         "ApprovalStatus", "WarehouseID", "ShippingMethod", "SalesOrderLines"}
    ),
    methods=ALL_METHODS,
    navigation={"SalesOrderLines": Navigation("SalesOrderLines", SALES_ORDER_LINES.path, "OrderID")},
)

ENTITY_SETS: dict[str, EntitySet] = {
    es.path.lower(): es
    for es in (
        DIVISIONS, ALL_DIVISIONS, VAT_CODES, GL_ACCOUNTS, JOURNALS, PAYMENT_CONDITIONS, ACCOUNTS,
        ADDRESSES, ITEMS, WAREHOUSES, COST_CENTERS, COST_UNITS, PROJECTS, SALES_ENTRIES,
        SALES_ENTRY_LINES, SALES_INVOICES, SALES_INVOICE_LINES, SALES_ORDERS, SALES_ORDER_LINES,
    )
}

# Division-less sets are answered from the directory (users/divisions), not a table.
DIRECTORY_SETS = frozenset({DIVISIONS.path, ALL_DIVISIONS.path})

ME_FIELDS = _fields(
    ("UserID", GUID),
    ("UserName", STRING),
    ("FullName", STRING),
    ("FirstName", STRING),
    ("LastName", STRING),
    ("Initials", STRING),
    ("Email", STRING),
    ("Language", STRING),
    ("LanguageCode", STRING),
    ("Legislation", INT),
    ("CurrentDivision", INT),
    ("DivisionCustomer", GUID),
    ("DivisionCustomerCode", STRING),
    ("DivisionCustomerName", STRING),
)


def lookup(service: str, entity: str) -> EntitySet | None:
    """URL segments are case-insensitive on Exact; the canonical casing comes back."""
    return ENTITY_SETS.get(f"{service}/{entity}".lower())
