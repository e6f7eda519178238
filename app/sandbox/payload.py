"""From a decoded JSON body to typed, writable properties — WCF's deserialisation step.

Exact (WCF Data Services) rejects a property name its type does not define with a
400 "Error processing request stream…", but silently ignores values sent for
read-only properties. Deep-inserted lines (``SalesEntryLines`` inside a POST) go
through the same step against the line type.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from app.sandbox.errors import bad_stream
from app.sandbox.schema import ENTITY_SETS, EntitySet
from app.sandbox.store import DivisionData
from app.sandbox.values import coerce_property


@dataclass
class WriteContext:
    """What a create/update handler may touch: one division's tables and 'now'."""

    data: DivisionData
    division: dict  # the system/Divisions record (currency, country…)
    now: datetime


def typed_payload(entity_set: EntitySet, body: Any) -> dict[str, Any]:
    """Writable properties with Python values; navigation properties passed through raw."""
    if not isinstance(body, dict):
        raise bad_stream(f"A JSON object was expected for type '{entity_set.full_type}'.")
    result: dict[str, Any] = {}
    for name, value in body.items():
        if name == "__metadata":
            continue
        if name in entity_set.navigation:
            result[name] = value
            continue
        edm = entity_set.fields.get(name)
        if edm is None:
            raise bad_stream(
                f"The property '{name}' does not exist on type '{entity_set.full_type}'. "
                "Make sure to only use property names that are defined by the type."
            )
        typed = coerce_property(value, edm, name)
        if name in entity_set.writable:
            result[name] = typed
    return result


def typed_lines(entity_set: EntitySet, navigation: str, raw: Any) -> list[dict[str, Any]]:
    """Deep-insert lines: a JSON array (or OData's {"results": [...]}) of line objects."""
    nav = entity_set.navigation[navigation]
    if raw is None:
        return []
    if isinstance(raw, dict) and "results" in raw:
        raw = raw["results"]
    if not isinstance(raw, list):
        raise bad_stream(f"An array was expected for navigation property '{navigation}'.")
    line_set = ENTITY_SETS[nav.child.lower()]
    return [typed_payload(line_set, line) for line in raw]
