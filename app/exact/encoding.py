"""JSON in and out of Exact without losing cents.

* ``dumps`` writes request bodies. ``Decimal`` values become JSON numbers spelled exactly as
  the Decimal (``Decimal("0.10")`` → ``0.10``), never via float. Dates and datetimes become
  ISO 8601 strings (what Exact accepts), UUIDs their canonical string.
* ``loads`` reads response bodies with every non-integer number as ``Decimal``.
* ``parse_exact_date`` turns Exact's ``"/Date(1426204800000)/"`` into an aware UTC datetime.
"""

from __future__ import annotations

import enum
import json
import math
import re
from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DATE_RE = re.compile(r"^/Date\((-?\d+)(?:[+-]\d{4})?\)/$")


def dumps(value: Any) -> bytes:
    """Serialise ``value`` to compact UTF-8 JSON bytes."""
    out: list[str] = []
    _write(value, out)
    return "".join(out).encode("utf-8")


def _write(value: Any, out: list[str]) -> None:
    # bool before int: bool is a subclass of int.
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, str):
        out.append(json.dumps(value, ensure_ascii=False))
    elif isinstance(value, enum.Enum):
        _write(value.value, out)
    elif isinstance(value, int):
        out.append(int.__repr__(value))
    elif isinstance(value, Decimal):
        out.append(_decimal_literal(value))
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"cannot send non-finite number {value!r} to Exact")
        out.append(float.__repr__(value))
    elif isinstance(value, datetime | date | time):
        out.append(json.dumps(value.isoformat()))
    elif isinstance(value, UUID):
        out.append(f'"{value}"')
    elif isinstance(value, Mapping):
        out.append("{")
        first = True
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"JSON object keys must be str, got {key!r}")
            if not first:
                out.append(",")
            first = False
            out.append(json.dumps(key, ensure_ascii=False))
            out.append(":")
            _write(item, out)
        out.append("}")
    elif isinstance(value, list | tuple):
        out.append("[")
        for index, item in enumerate(value):
            if index:
                out.append(",")
            _write(item, out)
        out.append("]")
    else:
        raise TypeError(f"cannot serialise {type(value).__name__} for Exact")


def _decimal_literal(value: Decimal) -> str:
    if not value.is_finite():
        raise ValueError(f"cannot send non-finite amount {value!r} to Exact")
    # Fixed-point notation keeps the scale ("0.10") and avoids exponents ("1E+3" → "1000").
    text = format(value, "f")
    if text.startswith("-") and set(text[1:]) <= {"0", "."}:
        text = text[1:]  # "-0.00" → "0.00"
    return text


def loads(data: bytes | str) -> Any:
    """Parse JSON with fractional numbers as ``Decimal`` (amounts stay exact)."""
    return json.loads(data, parse_float=Decimal)


def parse_exact_date(value: Any) -> datetime | None:
    """``"/Date(1426204800000)/"`` → ``datetime(2015, 3, 13, tzinfo=UTC)``.

    The milliseconds are UTC; an OData v2 offset suffix (``+0100``) is informational and
    ignored. ``None`` stays ``None``; ISO 8601 strings are accepted too. Anything else raises
    ``ValueError``.
    """
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if not isinstance(value, str):
        raise ValueError(f"not an Exact date: {value!r}")
    match = _DATE_RE.match(value.strip())
    if match:
        return _EPOCH + timedelta(milliseconds=int(match.group(1)))
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(f"not an Exact date: {value!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def exact_date_literal(moment: datetime) -> str:
    """The reverse, for fixtures and sandboxes: aware datetime → ``"/Date(ms)/"``."""
    if moment.tzinfo is None:
        raise ValueError("need an aware datetime")
    delta = moment - _EPOCH
    return f"/Date({delta // timedelta(milliseconds=1)})/"
