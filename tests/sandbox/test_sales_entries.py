"""Sales entries: totals, VAT rounding, numbering, YourRef lookup, $expand, every validation message."""

from __future__ import annotations

import pytest

from app.sandbox import SECOND_DIVISION, seed_guid
from tests.sandbox.support import DIV, account_id, gl, url, validation_error

ENTRIES = "salesentry/SalesEntries"


def entry(**overrides) -> dict:
    body = {
        "Journal": "70",
        "Customer": account_id(1),
        "EntryDate": "2025-03-11",
        "YourRef": "WEB-1001",
        "Description": "Webshop order 1001",
        "PaymentReference": "1001",
        "SalesEntryLines": [
            {"GLAccount": gl("8000"), "AmountFC": "100.00", "VATCode": "1", "Description": "Artikelen hoog"},
            {"GLAccount": gl("8010"), "AmountFC": 10.50, "VATCode": "2", "Description": "Boeken laag"},
        ],
    }
    body.update(overrides)
    return body


async def test_create_computes_totals_and_server_fields(client, auth):
    response = await client.post(url(ENTRIES), headers=auth, json=entry())
    assert response.status_code == 201
    d = response.json()["d"]
    assert len(d["EntryID"]) == 36
    assert d["EntryNumber"] == 25700001  # year 25, journal 70, sequence 1
    # 100.00 + 21.00 VAT; 10.50 + 0.945 → 0.95 VAT (half-up, not banker's 0.94)
    assert d["VATAmountFC"] == 21.95 and d["VATAmountDC"] == 21.95
    assert d["AmountFC"] == 132.45 and d["AmountDC"] == 132.45
    assert (d["Status"], d["Type"]) == (20, 20)
    assert d["EntryDate"] == "/Date(1741651200000)/"
    assert (d["YourRef"], d["Description"], d["PaymentReference"]) == ("WEB-1001", "Webshop order 1001", "1001")
    assert d["Journal"] == "70" and d["Currency"] == "EUR"
    assert d["SalesEntryLines"] == {"__deferred": {"uri": d["__metadata"]["uri"] + "/SalesEntryLines"}}
    assert '"AmountFC":132.45' in response.text  # a JSON number, exact digits


async def test_explicit_line_vat_overrides_calculation(client, auth, state):
    lines = [{"GLAccount": gl("8000"), "AmountFC": "4.13", "VATCode": "1", "VATAmountFC": "0.86"}]
    d = (await client.post(url(ENTRIES), headers=auth, json=entry(SalesEntryLines=lines))).json()["d"]
    assert d["VATAmountFC"] == 0.86  # calculated would be 0.87 (4.13 × 0.21 = 0.8673)
    assert d["AmountFC"] == 4.99


async def test_vat_code_defaults_to_the_gl_accounts(client, auth, state):
    lines = [{"GLAccount": gl("8010"), "AmountFC": 20}]
    await client.post(url(ENTRIES), headers=auth, json=entry(SalesEntryLines=lines))
    [stored] = state.sales_entries(DIV)
    line = stored["SalesEntryLines"][0]
    assert line["VATCode"] == "2" and str(line["VATAmountFC"]) == "1.80"


async def test_entry_numbers_are_sequential_per_journal(client, auth):
    numbers = []
    for journal, ref in (("70", "A"), ("70", "B"), ("71", "C"), ("70", "D")):
        d = (await client.post(url(ENTRIES), headers=auth, json=entry(Journal=journal, YourRef=ref))).json()["d"]
        numbers.append(d["EntryNumber"])
    assert numbers == [25700001, 25700002, 25710001, 25700003]


async def test_lookup_by_yourref_with_and_without_expand(client, auth):
    await client.post(url(ENTRIES), headers=auth, json=entry(YourRef="O'Neill-7"))
    await client.post(url(ENTRIES), headers=auth, json=entry(YourRef="other"))
    plain = await client.get(url(ENTRIES), headers=auth, params={"$filter": "YourRef eq 'O''Neill-7'"})
    [row] = plain.json()["d"]["results"]
    assert "__deferred" in row["SalesEntryLines"]

    expanded = await client.get(
        url(ENTRIES), headers=auth,
        params={"$filter": "YourRef eq 'O''Neill-7'", "$expand": "SalesEntryLines",
                "$select": "EntryID,AmountDC,SalesEntryLines/AmountFC,SalesEntryLines/VATCode"},
    )
    [row] = expanded.json()["d"]["results"]
    lines = row["SalesEntryLines"]["results"]
    assert [(line["AmountFC"], line["VATCode"]) for line in lines] == [(100.00, "1"), (10.50, "2")]

    # The deferred URI is itself fetchable.
    deferred = await client.get(plain.json()["d"]["results"][0]["SalesEntryLines"]["__deferred"]["uri"], headers=auth)
    assert len(deferred.json()["d"]["results"]) == 2

    # Or-batched refs, as OSSO does to dedupe many orders at once.
    batch = await client.get(url(ENTRIES), headers=auth,
                             params={"$filter": "YourRef eq 'other' or YourRef eq 'O''Neill-7'", "$select": "YourRef"})
    assert sorted(r["YourRef"] for r in batch.json()["d"]["results"]) == ["O'Neill-7", "other"]


async def test_lines_also_queryable_on_their_own_set(client, auth):
    d = (await client.post(url(ENTRIES), headers=auth, json=entry())).json()["d"]
    response = await client.get(
        url("salesentry/SalesEntryLines"), headers=auth, params={"$filter": f"EntryID eq guid'{d['EntryID']}'"}
    )
    # Rows of a set come in key (GUID) order, so compare as a set.
    assert sorted(line["LineNumber"] for line in response.json()["d"]["results"]) == [1, 2]


async def test_client_sent_entry_id_is_ignored(client, auth):
    mine = "11111111-2222-3333-4444-555555555555"
    d = (await client.post(url(ENTRIES), headers=auth, json=entry(EntryID=mine))).json()["d"]
    assert d["EntryID"] != mine


async def test_negative_total_is_a_credit_note(client, auth):
    lines = [{"GLAccount": gl("8000"), "AmountFC": "-50.00", "VATCode": "1"}]
    d = (await client.post(url(ENTRIES), headers=auth, json=entry(SalesEntryLines=lines))).json()["d"]
    assert d["AmountDC"] == -60.50 and d["Type"] == 21


async def test_entry_in_second_division_has_its_own_numbering(client, auth):
    body = entry(Customer=account_id(1, SECOND_DIVISION),
                 SalesEntryLines=[{"GLAccount": gl("8000", SECOND_DIVISION), "AmountFC": 1, "VATCode": "1"}])
    d = (await client.post(url(ENTRIES, SECOND_DIVISION), headers=auth, json=body)).json()["d"]
    assert d["EntryNumber"] == 25700001 and d["Division"] == SECOND_DIVISION


def _without(key: str) -> dict:
    body = entry()
    del body[key]
    return body


def _line(**overrides) -> dict:
    return entry(SalesEntryLines=[{"GLAccount": gl("8000"), "AmountFC": 10, "VATCode": "1", **overrides}])


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (_without("Journal"), "Verplicht: Dagboek"),
        (entry(Journal="99"), "Ongeldige referentie: Dagboek"),
        (entry(Journal="90"), "Ongeldig: Dagboek (Type)"),
        (_without("Customer"), "Verplicht: Factuur voor / Besteld door"),
        (entry(Customer=account_id(4)), "Ongeldig: Factuur voor (Type)"),  # a prospect
        (entry(Customer="00000000-0000-0000-0000-00000000beef"), "Ongeldig: Factuur voor (Type)"),
        (entry(SalesEntryLines=[]), "Verplicht: Regels"),
        (_line(GLAccount=gl("1300")), "Ongeldig: Grootboekrekeningtype"),  # receivable
        (_line(GLAccount=gl("1500")), "Ongeldig: Grootboekrekeningtype"),  # VAT
        (_line(GLAccount="00000000-0000-0000-0000-0000000000aa"), "Ongeldige referentie: Grootboekrekening"),
        (entry(SalesEntryLines=[{"AmountFC": 10}]), "Verplicht: Grootboekrekening"),
        (entry(SalesEntryLines=[{"GLAccount": gl("8000")}]), "Verplicht: Bedrag"),
        (_line(VATCode="X9"), "Ongeldige referentie: Btw-code"),
        (_line(VATCode="7"), "Ongeldig: Btw-code (Type)"),  # purchase VAT on a sale
        (_line(VATCode="9"), "Ongeldig: Btw-code (Geblokkeerd)"),
        (_line(CostCenter="555"), "Ongeldige referentie: Kostenplaats"),
        (entry(SalesEntryLines=[{"GLAccount": gl("8500"), "AmountFC": 10}]), "Verplicht: Kostenplaats"),
        (entry(PaymentCondition="99"), "Ongeldige referentie: Betalingsconditie"),
    ],
)
async def test_validation_errors_store_nothing(client, auth, state, body, message):
    response = await client.post(url(ENTRIES), headers=auth, json=body)
    assert validation_error(response) == message
    assert state.sales_entries(DIV) == []
    assert state.records(DIV, "salesentry/SalesEntryLines") == []


async def test_cost_center_and_project_on_lines(client, auth, state):
    lines = [{"GLAccount": gl("8500"), "AmountFC": 10, "CostCenter": "100", "CostUnit": "WEB",
              "Project": seed_guid(DIV, "Project", "P2024-001")}]
    response = await client.post(url(ENTRIES), headers=auth, json=entry(SalesEntryLines=lines))
    assert response.status_code == 201
    line = state.sales_entries(DIV)[0]["SalesEntryLines"][0]
    assert (line["CostCenter"], line["CostUnit"]) == ("100", "WEB")


async def test_amount_as_text_that_is_no_number_is_400(client, auth):
    response = await client.post(url(ENTRIES), headers=auth, json=_line(AmountFC="tien"))
    assert response.status_code == 400


async def test_entry_date_accepts_iso_datetime(client, auth):
    d = (await client.post(url(ENTRIES), headers=auth, json=entry(EntryDate="2025-03-11T00:00:00Z"))).json()["d"]
    assert d["EntryDate"] == "/Date(1741651200000)/"
    assert d["ReportingYear"] == 2025 and d["ReportingPeriod"] == 3
    assert d["PaymentCondition"] == "14"  # the customer's condition
    assert d["DueDate"] == "/Date(1742860800000)/"  # + 14 days
