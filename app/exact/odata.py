"""OData v2 as Exact speaks it: literals for ``$filter`` and unwrapping of response envelopes.

Envelopes: a collection GET gives ``{"d": {"results": [...], "__next": "..."}}`` and some GETs
give ``{"d": [...]}``; a POST gives ``{"d": {...}}``. Errors look like
``{"error": {"code": "", "message": {"lang": "", "value": "..."}}}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Any
from urllib.parse import quote, urlencode
from uuid import UUID


def odata_string(value: str) -> str:
    """A quoted string literal: ``O'Brien`` → ``'O''Brien'``."""
    return "'" + str(value).replace("'", "''") + "'"


def is_guid(value: str) -> bool:
    """Whether `value` is an Exact ID (a GUID) rather than a code."""
    try:
        UUID(value)
    except ValueError:
        return False
    return True


def odata_guid(value: UUID | str) -> str:
    """``guid'…'`` for an ID; validates the value, so nothing else can be smuggled in."""
    return f"guid'{value if isinstance(value, UUID) else UUID(str(value))}'"


def odata_datetime(value: datetime | date) -> str:
    """``datetime'2024-01-31T00:00:00'``; Exact wants the time part, without an offset."""
    if isinstance(value, datetime):
        return f"datetime'{value.replace(tzinfo=None, microsecond=0).isoformat()}'"
    return f"datetime'{value.isoformat()}T00:00:00'"


def unwrap_results(payload: Any) -> list[dict[str, Any]]:
    """The records of a GET response, whatever envelope shape it came in."""
    d = payload.get("d") if isinstance(payload, dict) else None
    if d is None:
        return []
    if isinstance(d, list):
        return d
    if isinstance(d, dict):
        results = d.get("results")
        if isinstance(results, list):
            return results
        return [d]  # a single entity
    raise ValueError(f"unexpected Exact envelope: d is {type(d).__name__}")


def next_link(payload: Any) -> str | None:
    """``d.__next`` when there is another page."""
    d = payload.get("d") if isinstance(payload, dict) else None
    if isinstance(d, dict):
        link = d.get("__next")
        if isinstance(link, str) and link:
            return link
    return None


def unwrap_entity(payload: Any) -> dict[str, Any]:
    """The entity of a POST (``{"d": {...}}``) or single-record response."""
    d = payload.get("d") if isinstance(payload, dict) else None
    if isinstance(d, dict):
        results = d.get("results")
        if isinstance(results, list):
            if len(results) != 1:
                raise ValueError(f"expected one record, got {len(results)}")
            return results[0]
        return d
    if isinstance(d, list) and len(d) == 1 and isinstance(d[0], dict):
        return d[0]
    raise ValueError("unexpected Exact envelope: no entity in d")


def error_message(payload: Any) -> str | None:
    """Exact's human-readable error text, or None when the body carries none."""
    if not isinstance(payload, dict):
        return None
    error = payload.get("error")
    if not isinstance(error, dict):
        return None
    message = error.get("message")
    if isinstance(message, dict):
        message = message.get("value")
    if isinstance(message, str) and message.strip():
        return message.strip()
    return None


def build_query(params: Mapping[str, Any] | None) -> str:
    """A query string the way OData examples write it: ``$filter=Name%20eq%20'x'``.

    ``$``, quotes, parentheses and commas stay literal; spaces become ``%20`` and ``+`` is
    escaped, so ``a+b@x.nl`` survives. Values are str()-ed; None values are dropped.
    """
    if not params:
        return ""
    pairs = [(key, str(value)) for key, value in params.items() if value is not None]
    return urlencode(pairs, quote_via=quote, safe="$'(),:@/")
