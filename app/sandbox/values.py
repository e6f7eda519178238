"""Edm value handling: what goes into a record, and how it comes back out as JSON.

Exact's REST layer is WCF Data Services (OData v2), which is strict about types: a
number where a GUID is expected is a 400 "Error processing request stream…", not a
silent conversion. The sandbox keeps that strictness so client bugs show up here
rather than in production.

Money is ``Decimal`` end to end: request bodies are parsed with ``parse_float=Decimal``
and amounts are written back as JSON *numbers* with their exact decimal digits (Exact
sends numbers, not strings).
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from app.sandbox.errors import bad_stream

GUID = "Edm.Guid"
STRING = "Edm.String"
INT = "Edm.Int32"
DECIMAL = "Edm.Double"
BOOL = "Edm.Boolean"
DATETIME = "Edm.DateTime"

CENT = Decimal("0.01")

_MS_DATE = re.compile(r"^/Date\((-?\d+)(?:[+-]\d{4})?\)/$")


def round_cents(amount: Decimal) -> Decimal:
    """Half-up to cents, the way a bookkeeper (and Exact's VAT calculation) rounds."""
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


def new_guid() -> str:
    return str(uuid.uuid4())


def epoch_ms(moment: datetime) -> int:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def format_ms_date(moment: datetime) -> str:
    """Exact's wire format for dates: ``/Date(<epoch ms>)/``."""
    return f"/Date({epoch_ms(moment)})/"


def parse_datetime(text: str) -> datetime:
    """Accept what clients send: ISO date, ISO datetime (with or without offset), /Date(ms)/.

    Raises ValueError on anything else. Naive values are taken as UTC; Exact stores
    dates without zone, and the sandbox treats that as UTC consistently.
    """
    text = text.strip()
    match = _MS_DATE.match(text)
    if match:
        return datetime.fromtimestamp(int(match.group(1)) / 1000, tz=UTC)
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def start_of_day(moment: datetime) -> datetime:
    return datetime(moment.year, moment.month, moment.day, tzinfo=UTC)


def normalise_guid(text: str) -> str:
    """Canonical lowercase hyphenated form; raises ValueError if it is no GUID."""
    return str(uuid.UUID(text.strip().strip("{}")))


def coerce_input(value: Any, edm: str) -> Any:
    """Convert one JSON property value to the stored Python value for its Edm type.

    Raises ValueError when WCF would refuse to deserialise it; the caller turns
    that into Exact's 400 with the property name.
    """
    if value is None:
        return None
    if edm == STRING:
        if not isinstance(value, str):
            raise ValueError
        return value
    if edm == GUID:
        if not isinstance(value, str):
            raise ValueError
        return normalise_guid(value)
    if edm == BOOL:
        if not isinstance(value, bool):
            raise ValueError
        return value
    if edm == INT:
        if isinstance(value, bool):
            raise ValueError
        if isinstance(value, int):
            return value
        if isinstance(value, Decimal) and value == value.to_integral_value():
            return int(value)
        if isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
            return int(value)
        raise ValueError
    if edm == DECIMAL:
        # OData v2 allows numbers as JSON strings ("12.50"); OSSO sends them that way.
        if isinstance(value, bool):
            raise ValueError
        if isinstance(value, (int, Decimal)):
            amount = Decimal(value)
        elif isinstance(value, float):
            amount = Decimal(repr(value))
        elif isinstance(value, str):
            try:
                amount = Decimal(value.strip())
            except InvalidOperation:
                raise ValueError from None
        else:
            raise ValueError
        if not amount.is_finite():
            raise ValueError
        return amount
    if edm == DATETIME:
        if not isinstance(value, str):
            raise ValueError
        return parse_datetime(value)
    raise ValueError(f"unknown Edm type {edm}")


def coerce_property(value: Any, edm: str, prop: str) -> Any:
    try:
        return coerce_input(value, edm)
    except ValueError:
        raise bad_stream(
            f"Cannot convert a primitive value to the expected type '{edm}' "
            f"for property '{prop}'. See the inner exception for more details."
        ) from None


def parse_json_body(raw: bytes) -> Any:
    """Decode a request body, keeping every number with a fraction as Decimal."""
    try:
        return json.loads(raw.decode("utf-8"), parse_float=Decimal)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise bad_stream("The JSON text in the request body is not valid.") from None


def to_wire(value: Any) -> Any:
    """Stored Python value → JSON-ready value (dates become /Date(ms)/)."""
    if isinstance(value, datetime):
        return format_ms_date(value)
    if isinstance(value, date):
        return format_ms_date(datetime(value.year, value.month, value.day, tzinfo=UTC))
    return value


def _encode(obj: Any, out: list[str]) -> None:
    if isinstance(obj, Decimal):
        # format 'f' avoids exponent forms such as 1E+2; JSON number either way.
        out.append(format(obj, "f"))
    elif isinstance(obj, Mapping):
        out.append("{")
        first = True
        for key, val in obj.items():
            if not first:
                out.append(",")
            first = False
            out.append(json.dumps(str(key), ensure_ascii=False))
            out.append(":")
            _encode(val, out)
        out.append("}")
    elif isinstance(obj, (list, tuple)):
        out.append("[")
        for index, val in enumerate(obj):
            if index:
                out.append(",")
            _encode(val, out)
        out.append("]")
    elif isinstance(obj, (datetime, date)):
        out.append(json.dumps(to_wire(obj)))
    else:
        out.append(json.dumps(obj, ensure_ascii=False))


def dumps(obj: Any) -> bytes:
    """JSON encoding that writes Decimal as an exact JSON number (json can't do that)."""
    out: list[str] = []
    _encode(obj, out)
    return "".join(out).encode("utf-8")
