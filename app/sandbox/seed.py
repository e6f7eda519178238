"""Seed data: a realistic Dutch Exact Online licence, rebuilt on every reset.

* User "Jan de Vries" (DEFAULT_USER_ID) can open two divisions: 1234567
  "Voorbeeld Handel B.V." (his current division) and 7654321 "Voorbeeld Retail
  B.V." — one login, several administrations, the accountant-portal case.
* User "Piet Jansen" (OTHER_USER_ID) owns 3333333 "Andere Administratie B.V.",
  which Jan may NOT open (403 NoDivisionAccess).
* Every division has the master data of a fresh NL division: VAT codes, GL
  accounts, journals, payment conditions, a warehouse, cost centres/units and
  projects, plus a few customers and items.

Seeded GUIDs are deterministic (``seed_guid``), so a reset gives the same IDs and a
test can name a seeded record without looking it up first. Records created through
the API get random GUIDs, as in Exact.

VAT ``Percentage`` is stored and served as a **fraction** (0.21 for 21%). The fact
sheet marks this unverified; a fraction is what one integration observed (it
multiplies by 100), so clients must treat the value as a fraction.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from app.sandbox import schema
from app.sandbox.directory import OAuthClient, User
from app.sandbox.store import DivisionData

DEFAULT_DIVISION = 1234567
SECOND_DIVISION = 7654321
FOREIGN_DIVISION = 3333333

CLIENT_ID = "koppel-sandbox"
CLIENT_SECRET = "koppel-sandbox-secret"
REDIRECT_URIS = [
    "http://127.0.0.1:8000/oauth/exact/callback",
    "http://localhost:8000/oauth/exact/callback",
    # any port on loopback, so tests and `koppel run --port N` need no registration
    "http://127.0.0.1:*/oauth/exact/callback",
    "http://localhost:*/oauth/exact/callback",
]

DEFAULT_USER_ID = "5c0f4c52-5b8c-4c1e-9a57-0a3d7c1e2b11"
DEFAULT_USER_EMAIL = "jan.devries@voorbeeldhandel.nl"
OTHER_USER_ID = "9e2d6a40-7f31-4b8e-8d0c-6f5b3a2c1d22"
OTHER_USER_EMAIL = "piet.jansen@anderadministratie.nl"

LICENCE_CUSTOMER_ID = "2b7f0e61-4d3a-4f5c-b8e9-1c2d3e4f5a33"
OTHER_LICENCE_CUSTOMER_ID = "7a1c9d82-3e4b-4a6f-9b0c-2d3e4f5a6b44"

EXISTING_CUSTOMER_EMAIL = "bestaande.klant@example.com"
PROSPECT_EMAIL = "prospect@example.com"

# When master data was "created" in the seeded licence.
SEED_CREATED = datetime(2024, 1, 2, 9, 0, tzinfo=UTC)

_NAMESPACE = uuid.UUID("6f1d3c2a-8b4e-4f7a-9c0d-1e2f3a4b5c6d")


def seed_guid(division: int, kind: str, code: str) -> str:
    """The stable GUID of a seeded record, e.g. seed_guid(1234567, "GLAccount", "8000")."""
    return str(uuid.uuid5(_NAMESPACE, f"{division}/{kind}/{code}"))


def pad_account_code(code: str | int) -> str:
    """Exact's account Code: 18 characters, right-aligned with leading spaces."""
    return str(code).strip().rjust(18)


@dataclass
class Seed:
    clients: dict[str, OAuthClient]
    users: dict[str, User]
    divisions: dict[int, dict]  # the system/Divisions record per division code
    data: dict[int, DivisionData]


# -- master data shared by every division ---------------------------------------------

# Code, Description, Type, Percentage, TransactionType, EUSalesListing, Charged, OssCountry, Blocked
_VAT_CODES = [
    ("0", "BTW 0%", "B", "0", "S", "N", False, None, False),
    ("1", "BTW hoog 21% excl.", "E", "0.21", "S", "N", False, None, False),
    ("2", "BTW laag 9% excl.", "E", "0.09", "S", "N", False, None, False),
    ("3", "BTW hoog 21% incl.", "I", "0.21", "S", "N", False, None, False),
    ("4", "BTW laag 9% incl.", "I", "0.09", "S", "N", False, None, False),
    ("5", "ICP leveringen 0%", "B", "0", "S", "L", True, None, False),
    ("6", "Export buiten EU 0%", "B", "0", "S", "N", False, None, False),
    ("7", "Inkoop BTW hoog 21%", "E", "0.21", "P", "N", False, None, False),
    ("8", "Inkoop BTW laag 9%", "E", "0.09", "P", "N", False, None, False),
    ("9", "BTW hoog 19% (oud)", "E", "0.19", "S", "N", False, None, True),
    ("B21", "OSS België 21%", "E", "0.21", "S", "N", False, "BE", False),
    ("D19", "OSS Duitsland 19%", "E", "0.19", "S", "N", False, "DE", False),
    ("F20", "OSS Frankrijk 20%", "E", "0.20", "S", "N", False, "FR", False),
]

_GL_TYPE_DESCRIPTIONS = {
    10: "Kas",
    12: "Bank",
    20: "Debiteuren",
    22: "Crediteuren",
    24: "Btw",
    110: "Omzet",
    111: "Kostprijs van de omzet",
    120: "Overige kosten",
}

# Code, Description, Type, BalanceType, BalanceSide, VATCode, UseCostcenter
_GL_ACCOUNTS = [
    ("1000", "Kas", 10, "B", "D", None, 0),
    ("1100", "Bank", 12, "B", "D", None, 0),
    ("1300", "Debiteuren", 20, "B", "D", None, 0),
    ("1500", "Te betalen btw", 24, "B", "C", None, 0),
    ("1510", "Te vorderen btw", 24, "B", "D", None, 0),
    ("1600", "Crediteuren", 22, "B", "C", None, 0),
    ("4000", "Algemene kosten", 120, "W", "D", "7", 0),
    ("7000", "Inkoopwaarde van de omzet", 111, "W", "D", "7", 0),
    ("8000", "Omzet hoog", 110, "W", "C", "1", 0),
    ("8010", "Omzet laag", 110, "W", "C", "2", 0),
    ("8020", "Omzet verzendkosten", 110, "W", "C", "1", 0),
    ("8030", "Omzet betaalkosten", 110, "W", "C", "1", 0),
    ("8040", "Kortingen", 110, "W", "C", "1", 0),
    ("8100", "Omzet ICP", 110, "W", "C", "5", 0),
    ("8110", "Omzet export", 110, "W", "C", "6", 0),
    ("8200", "Omzet OSS", 110, "W", "C", None, 0),
    ("8500", "Omzet diensten", 110, "W", "C", "1", 1),
    ("8990", "Afrondingsverschillen", 110, "W", "C", "0", 0),
]

_JOURNAL_TYPES = {10: "Kas", 12: "Bank", 20: "Verkoop", 21: "Retourfacturen", 22: "Inkoop", 90: "Memoriaal"}

# Code, Description, Type, GL account code
_JOURNALS = [
    ("10", "Kas", 10, "1000"),
    ("20", "Bank", 12, "1100"),
    ("60", "Inkoopboek", 22, "1600"),
    ("70", "Verkoopboek", 20, "1300"),
    ("71", "Verkoopboek webshop", 20, "1300"),
    ("90", "Memoriaal", 90, None),
]

_PAYMENT_CONDITIONS = [
    ("00", "Direct", 0, "B"),
    ("14", "14 dagen", 14, "B"),
    ("30", "30 dagen", 30, "B"),
    ("IN", "Incasso 14 dagen", 14, "I"),
]

_WAREHOUSES = [("1", "Hoofdmagazijn", True), ("2", "Winkel Amsterdam", False)]
_COST_CENTERS = [("100", "Webshop", True), ("200", "Winkel Amsterdam", True), ("900", "Algemeen (vervallen)", False)]
_COST_UNITS = [("WEB", "Webshop"), ("POS", "Kassa"), ("B2B", "Zakelijke verkoop")]

# Code, Description, SalesVatCode, GL code, Barcode, IsStockItem, Price
_ITEMS = [
    ("ARTIKEL-001", "T-shirt katoen", "1", "8000", "8712345000011", True, "24.95"),
    ("ARTIKEL-002", "Kookboek", "2", "8010", "8712345000028", True, "19.50"),
    ("ARTIKEL-003", "Koffiemok", "1", "8000", "8712345000035", True, "8.95"),
    ("VERZEND", "Verzendkosten", "1", "8020", None, False, "4.95"),
    ("BETAALKOSTEN", "Betaalkosten", "1", "8030", None, False, "0.29"),
    ("KORTING", "Korting", "1", "8040", None, False, "0"),
]

# Code, Name, Email, Status, Country, City, VATNumber, PaymentConditionSales, IsSupplier
_ACCOUNTS_BY_DIVISION = {
    DEFAULT_DIVISION: [
        (1, "Bestaande Klant B.V.", EXISTING_CUSTOMER_EMAIL, "C", "NL", "Amsterdam", "NL123456789B01", "14", False),
        (2, "Jansen Webwinkel", "info@jansen-webwinkel.example", "C", "NL", "Utrecht", None, "30", False),
        (3, "Kassaklant contant", "kassa@voorbeeldhandel.nl", "C", "NL", "Amsterdam", None, "00", False),
        (4, "Bakkerij de Prospect", PROSPECT_EMAIL, "P", "NL", "Haarlem", None, None, False),
        (5, "Groothandel Leverancier B.V.", "inkoop@groothandel.example", "A", "NL", "Rotterdam", None, None, True),
        (6, "Müller Handels GmbH", "einkauf@mueller.example", "C", "DE", "Köln", "DE123456789", "30", False),
    ],
    SECOND_DIVISION: [
        (1, "Retail Vaste Klant", "retail.klant@example.com", "C", "NL", "Leiden", None, "14", False),
        (2, "Bestaande Klant B.V.", EXISTING_CUSTOMER_EMAIL, "C", "NL", "Amsterdam", None, "14", False),
    ],
    FOREIGN_DIVISION: [
        (1, "Klant van Piet", "klant@anderadministratie.example", "C", "NL", "Groningen", None, "30", False),
    ],
}


def _division_record(code: int, description: str, customer: str, customer_name: str, hid: int, main: bool) -> dict:
    record = {name: None for name in schema.DIVISIONS.fields}
    record.update(
        Code=code,
        BlockingStatus=0,
        Country="NL",
        CountryDescription="Nederland",
        Currency="EUR",
        CurrencyDescription="Euro",
        Customer=customer,
        CustomerCode=str(hid).rjust(18),
        CustomerName=customer_name,
        Description=description,
        Hid=hid,
        IsMainDivision=main,
        VATNumber=f"NL{code:09d}B01",
        Created=SEED_CREATED,
        Modified=SEED_CREATED,
    )
    return record


def extra_division(code: int, description: str, hid: int) -> tuple[dict, DivisionData]:
    """Another Dutch division of the default licence, seeded like the first (for benchmarks
    and tests that need several divisions)."""
    return (_division_record(code, description, LICENCE_CUSTOMER_ID, "Voorbeeld Handel B.V.", hid, False),
            _seed_division(code))


def _seed_division(code: int) -> DivisionData:
    data = DivisionData(code)
    now = SEED_CREATED

    def gid(kind: str, key: str) -> str:
        return seed_guid(code, kind, key)

    vat_by_code = {}
    for vat, desc, vtype, pct, trans, listing, charged, oss, blocked in _VAT_CODES:
        vat_by_code[vat] = data.insert(
            schema.VAT_CODES,
            {
                "ID": gid("VATCode", vat),
                "Code": vat,
                "Description": desc,
                "Type": vtype,
                "Percentage": Decimal(pct),
                "VATTransactionType": trans,
                "EUSalesListing": listing,
                "Charged": charged,
                "IntraStat": listing == "L",
                "OssCountry": oss,
                "IsBlocked": blocked,
                "GLToPay": gid("GLAccount", "1500") if trans != "P" else None,
                "GLToPayCode": "1500" if trans != "P" else None,
                "GLToPayDescription": "Te betalen btw" if trans != "P" else None,
            },
            now,
        )

    gl_by_code = {}
    for gl, desc, gtype, balance, side, vat, use_cc in _GL_ACCOUNTS:
        gl_by_code[gl] = data.insert(
            schema.GL_ACCOUNTS,
            {
                "ID": gid("GLAccount", gl),
                "Code": gl,
                "Description": desc,
                "Type": gtype,
                "TypeDescription": _GL_TYPE_DESCRIPTIONS[gtype],
                "BalanceType": balance,
                "BalanceSide": side,
                "VATCode": vat,
                "VATDescription": vat_by_code[vat]["Description"] if vat else None,
                "IsBlocked": False,
                "UseCostcenter": use_cc,
                "UseCostunit": 0,
            },
            now,
        )

    for journal, desc, jtype, gl in _JOURNALS:
        data.insert(
            schema.JOURNALS,
            {
                "ID": gid("Journal", journal),
                "Code": journal,
                "Description": desc,
                "Type": jtype,
                "TypeDescription": _JOURNAL_TYPES[jtype],
                "Currency": "EUR",
                "AllowVariableCurrency": jtype == 20,
                "IsBlocked": False,
                "GLAccount": gl_by_code[gl]["ID"] if gl else None,
                "GLAccountCode": gl,
            },
            now,
        )

    conditions = {}
    for pc, desc, days, method in _PAYMENT_CONDITIONS:
        conditions[pc] = data.insert(
            schema.PAYMENT_CONDITIONS,
            {
                "ID": gid("PaymentCondition", pc),
                "Code": pc,
                "Description": desc,
                "PaymentDays": days,
                "PaymentMethod": method,
                "DiscountPercentage": Decimal("0"),
                "DiscountPaymentDays": 0,
            },
            now,
        )

    for wh, desc, main in _WAREHOUSES:
        data.insert(
            schema.WAREHOUSES,
            {"ID": gid("Warehouse", wh), "Code": wh, "Description": desc, "Main": main,
             "EMail": None, "UseStorageLocations": False},
            now,
        )
    for cc, desc, active in _COST_CENTERS:
        data.insert(schema.COST_CENTERS, {"ID": gid("CostCenter", cc), "Code": cc, "Description": desc, "Active": active}, now)
    for cu, desc in _COST_UNITS:
        data.insert(schema.COST_UNITS, {"ID": gid("CostUnit", cu), "Code": cu, "Description": desc}, now)

    for item, desc, vat, gl, barcode, stock, price in _ITEMS:
        data.insert(
            schema.ITEMS,
            {
                "ID": gid("Item", item),
                "Code": item,
                "Description": desc,
                "Barcode": barcode,
                "IsSalesItem": True,
                "IsStockItem": stock,
                "IsPurchaseItem": stock,
                "IsFractionAllowedItem": False,
                "SalesVatCode": vat,
                "SalesVatCodeDescription": vat_by_code[vat]["Description"],
                "GLRevenue": gl_by_code[gl]["ID"],
                "GLRevenueCode": gl,
                "Unit": "stuk",
                "UnitDescription": "Stuk",
                "StandardSalesPrice": Decimal(price),
                "StartDate": SEED_CREATED,
            },
            now,
        )

    first_customer = None
    for acc_code, name, email, status, country, city, vat_number, condition, supplier in _ACCOUNTS_BY_DIVISION.get(code, _ACCOUNTS_BY_DIVISION[DEFAULT_DIVISION]):
        account = data.insert(
            schema.ACCOUNTS,
            {
                "ID": gid("Account", str(acc_code)),
                "Code": pad_account_code(acc_code),
                "Name": name,
                "SearchCode": name[:10].upper(),
                "Email": email,
                "Status": status,
                "Type": "A",
                "Country": country,
                "VATNumber": vat_number,
                "AddressLine1": "Hoofdstraat 1",
                "Postcode": "1011 AA" if country == "NL" else "50667",
                "City": city,
                "Language": "NL" if country == "NL" else "DE",
                "PaymentConditionSales": condition,
                "PaymentConditionSalesDescription": conditions[condition]["Description"] if condition else None,
                "Blocked": False,
                "IsSales": status == "C",
                "IsSupplier": supplier,
            },
            now,
        )
        if first_customer is None and status == "C":
            first_customer = account
            data.insert(
                schema.ADDRESSES,
                {"ID": gid("Address", f"{acc_code}/1"), "Account": account["ID"], "AccountName": name, "Type": 1,
                 "Main": True, "AddressLine1": "Hoofdstraat 1", "Postcode": account["Postcode"], "City": city,
                 "Country": country},
                now,
            )
            data.insert(
                schema.ADDRESSES,
                {"ID": gid("Address", f"{acc_code}/4"), "Account": account["ID"], "AccountName": name, "Type": 4,
                 "Main": True, "AddressLine1": "Magazijnweg 12", "Postcode": "1046 AB", "City": city,
                 "Country": country},
                now,
            )

    projects = [
        ("P2024-001", "Implementatie webshop", 2, "Vaste prijs"),
        ("P2024-002", "Onderhoud kassasysteem", 3, "Nacalculatie"),
    ]
    for pcode, desc, ptype, pdesc in projects:
        data.insert(
            schema.PROJECTS,
            {
                "ID": gid("Project", pcode),
                "Code": pcode,
                "Description": desc,
                "Account": first_customer["ID"] if first_customer else None,
                "AccountName": first_customer["Name"] if first_customer else None,
                "Type": ptype,
                "TypeDescription": pdesc,
                "StartDate": SEED_CREATED,
            },
            now,
        )
    return data


def build_seed() -> Seed:
    clients = {CLIENT_ID: OAuthClient(CLIENT_ID, CLIENT_SECRET, list(REDIRECT_URIS))}
    users = {
        DEFAULT_USER_ID: User(
            user_id=DEFAULT_USER_ID,
            user_name=DEFAULT_USER_EMAIL,
            full_name="Jan de Vries",
            first_name="Jan",
            last_name="de Vries",
            initials="J.",
            email=DEFAULT_USER_EMAIL,
            divisions=[DEFAULT_DIVISION, SECOND_DIVISION],
            current_division=DEFAULT_DIVISION,
            customer=LICENCE_CUSTOMER_ID,
            customer_code="100001".rjust(18),
            customer_name="Voorbeeld Handel B.V.",
        ),
        OTHER_USER_ID: User(
            user_id=OTHER_USER_ID,
            user_name=OTHER_USER_EMAIL,
            full_name="Piet Jansen",
            first_name="Piet",
            last_name="Jansen",
            initials="P.",
            email=OTHER_USER_EMAIL,
            divisions=[FOREIGN_DIVISION],
            current_division=FOREIGN_DIVISION,
            customer=OTHER_LICENCE_CUSTOMER_ID,
            customer_code="200001".rjust(18),
            customer_name="Andere Administratie B.V.",
        ),
    }
    divisions = {
        DEFAULT_DIVISION: _division_record(
            DEFAULT_DIVISION, "Voorbeeld Handel B.V.", LICENCE_CUSTOMER_ID, "Voorbeeld Handel B.V.", 100001, True
        ),
        SECOND_DIVISION: _division_record(
            SECOND_DIVISION, "Voorbeeld Retail B.V.", LICENCE_CUSTOMER_ID, "Voorbeeld Handel B.V.", 100002, False
        ),
        FOREIGN_DIVISION: _division_record(
            FOREIGN_DIVISION, "Andere Administratie B.V.", OTHER_LICENCE_CUSTOMER_ID, "Andere Administratie B.V.",
            200001, True,
        ),
    }
    data = {code: _seed_division(code) for code in divisions}
    return Seed(clients=clients, users=users, divisions=divisions, data=data)
