"""Hosts, OData literals, exact JSON and /Date(ms)/ parsing."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from uuid import UUID

import pytest

from app.exact.encoding import dumps, exact_date_literal, loads, parse_exact_date
from app.exact.hosts import (
    authorize_endpoint,
    base_url_for,
    me_url,
    resolve_base_url,
    rest_url,
    token_endpoint,
)
from app.exact.odata import (
    build_query,
    error_message,
    next_link,
    odata_datetime,
    odata_guid,
    odata_string,
    unwrap_entity,
    unwrap_results,
)
from app.exact.retry_after import retry_after_ms


@pytest.mark.parametrize(
    ("country", "url"),
    [
        ("nl", "https://start.exactonline.nl"),
        ("BE", "https://start.exactonline.be"),
        ("de", "https://start.exactonline.de"),
        ("fr", "https://start.exactonline.fr"),
        ("es", "https://start.exactonline.es"),
        ("uk", "https://start.exactonline.co.uk"),
        ("co.uk", "https://start.exactonline.co.uk"),
        ("us", "https://start.exactonline.com"),
        ("com", "https://start.exactonline.com"),
    ],
)
def test_hosts(country, url):
    assert base_url_for(country) == url


def test_host_helpers_and_custom_base():
    assert authorize_endpoint("https://start.exactonline.nl/") == "https://start.exactonline.nl/api/oauth2/auth"
    assert token_endpoint("http://127.0.0.1:8090") == "http://127.0.0.1:8090/api/oauth2/token"
    assert rest_url("http://127.0.0.1:8090", 42, "/crm/Accounts") == "http://127.0.0.1:8090/api/v1/42/crm/Accounts"
    assert (
        rest_url("https://start.exactonline.be", 1, "crm/Accounts(guid'0b7c6d4e-1111-2222-3333-444455556666')")
        == "https://start.exactonline.be/api/v1/1/crm/Accounts(guid'0b7c6d4e-1111-2222-3333-444455556666')"
    )
    assert me_url("https://start.exactonline.de") == "https://start.exactonline.de/api/v1/current/Me"
    assert resolve_base_url("http://localhost:8090/") == "http://localhost:8090"
    assert resolve_base_url("nl") == "https://start.exactonline.nl"
    with pytest.raises(ValueError):
        base_url_for("xx")
    with pytest.raises(ValueError):
        rest_url("https://start.exactonline.nl", 0, "crm/Accounts")
    with pytest.raises(ValueError):
        resolve_base_url("ftp://example")


def test_odata_literals():
    assert odata_string("O'Brien") == "'O''Brien'"
    assert odata_string("it''s") == "'it''''s'"
    guid = UUID("0b7c6d4e-1111-2222-3333-444455556666")
    assert odata_guid(guid) == "guid'0b7c6d4e-1111-2222-3333-444455556666'"
    assert odata_guid(str(guid).upper()) == "guid'0b7c6d4e-1111-2222-3333-444455556666'"
    with pytest.raises(ValueError):
        odata_guid("x' or 1 eq 1 or '")
    assert odata_datetime(date(2024, 1, 31)) == "datetime'2024-01-31T00:00:00'"
    assert odata_datetime(datetime(2024, 1, 31, 8, 5, 1, 999)) == "datetime'2024-01-31T08:05:01'"


def test_build_query_keeps_odata_readable():
    q = build_query({"$filter": "Email eq 'a+b@x.nl'", "$select": "ID,Name", "$top": 1, "skip": None})
    assert q == "$filter=Email%20eq%20'a%2Bb@x.nl'&$select=ID,Name&$top=1"
    assert build_query({"$filter": "Name eq 'A&B=C'"}) == "$filter=Name%20eq%20'A%26B%3DC'"


def test_envelopes():
    assert unwrap_results({"d": {"results": [{"a": 1}], "__next": "n"}}) == [{"a": 1}]
    assert next_link({"d": {"results": [], "__next": "n"}}) == "n"
    assert next_link({"d": []}) is None
    assert unwrap_results({"d": [{"a": 1}]}) == [{"a": 1}]
    assert unwrap_results({"d": {"ID": "x"}}) == [{"ID": "x"}]
    assert unwrap_entity({"d": {"ID": "x"}}) == {"ID": "x"}
    assert unwrap_entity({"d": {"results": [{"ID": "x"}]}}) == {"ID": "x"}
    body = {"error": {"code": "", "message": {"lang": "nl-NL", "value": "Ongeldige referentie: Rekening"}}}
    assert error_message(body) == "Ongeldige referentie: Rekening"
    assert error_message({"error": {"message": {"value": "  "}}}) is None
    assert error_message("<html/>") is None


def test_decimal_json_is_exact():
    body = {
        "a": Decimal("0.10"),
        "b": Decimal("1234567.89"),
        "c": Decimal("1E+3"),
        "d": [Decimal("-0.01"), 3, True, None, "é\"x"],
        "e": date(2024, 1, 31),
        "f": UUID("0b7c6d4e-1111-2222-3333-444455556666"),
    }
    raw = dumps(body)
    assert raw == (
        '{"a":0.10,"b":1234567.89,"c":1000,"d":[-0.01,3,true,null,"é\\"x"],'
        '"e":"2024-01-31","f":"0b7c6d4e-1111-2222-3333-444455556666"}'
    ).encode()
    back = loads(raw)
    assert back["a"] == Decimal("0.10") and str(back["a"]) == "0.10"
    assert back["b"] == Decimal("1234567.89")
    assert sum((Decimal("0.10"),) * 3) == loads(dumps([Decimal("0.30")]))[0]
    with pytest.raises(ValueError):
        dumps({"x": Decimal("NaN")})
    with pytest.raises(TypeError):
        dumps({"x": object()})


def test_exact_dates():
    assert parse_exact_date("/Date(1426204800000)/") == datetime(2015, 3, 13, tzinfo=UTC)
    assert parse_exact_date("/Date(1426204800123+0100)/") == datetime(2015, 3, 13, 0, 0, 0, 123000, tzinfo=UTC)
    assert parse_exact_date("/Date(-86400000)/") == datetime(1969, 12, 31, tzinfo=UTC)
    assert parse_exact_date(None) is None
    assert parse_exact_date("2024-01-31T10:00:00") == datetime(2024, 1, 31, 10, tzinfo=UTC)
    assert exact_date_literal(datetime(2015, 3, 13, tzinfo=UTC)) == "/Date(1426204800000)/"
    with pytest.raises(ValueError):
        parse_exact_date("yesterday")


def test_retry_after_forms():
    now = 1_700_000_000_000
    assert retry_after_ms({"Retry-After": "30"}, now) == now + 30_000
    assert retry_after_ms({"Retry-After": "Wed, 15 Nov 2023 00:00:00 GMT"}, now) == 1_700_006_400_000
    assert retry_after_ms({}, now) is None
    assert retry_after_ms({"Retry-After": "soon"}, now) is None
