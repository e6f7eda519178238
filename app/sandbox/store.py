"""In-memory tables of one division (administration) plus its number sequences.

A record is a plain dict holding every property of its entity set (``None`` when
empty), with Python values: ``Decimal`` money, aware ``datetime``, GUIDs as
lowercase strings. Serialisation to Exact's wire format happens elsewhere.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from app.sandbox.filters import collation_key
from app.sandbox.schema import ENTITY_SETS, EntitySet


@dataclass
class DivisionData:
    code: int
    tables: dict[str, dict[str, dict]] = field(default_factory=dict)
    # (journal code, year) -> last sequence used; sales entries and invoices share it,
    # as they share a journal's number range in Exact.
    journal_sequences: dict[tuple[str, int], int] = field(default_factory=dict)
    last_order_number: int = 0

    def table(self, entity_set: EntitySet | str) -> dict[str, dict]:
        path = entity_set if isinstance(entity_set, str) else entity_set.path
        return self.tables.setdefault(path, {})

    def rows(self, entity_set: EntitySet | str) -> list[dict]:
        return list(self.table(entity_set).values())

    def insert(self, entity_set: EntitySet, record: dict, now: datetime) -> dict:
        """Store a record, filling every schema property and the audit fields."""
        full = {name: None for name in entity_set.fields}
        full.update(record)
        if "Division" in entity_set.fields:
            full["Division"] = self.code
        if "Created" in entity_set.fields:
            full["Created"] = full.get("Created") or now
            full["Modified"] = full.get("Modified") or now
        self.table(entity_set)[str(full[entity_set.key])] = full
        return full

    def get(self, entity_set: EntitySet | str, key: object) -> dict | None:
        return self.table(entity_set).get(str(key))

    def find(self, entity_set: EntitySet | str, prop: str, value: object) -> dict | None:
        """First row whose property equals value under Exact's (SQL) collation."""
        wanted = collation_key(value)
        for row in self.table(entity_set).values():
            if row.get(prop) is not None and collation_key(row[prop]) == wanted:
                return row
        return None

    def children(self, entity_set: EntitySet | str, foreign_key: str, parent_key: str) -> list[dict]:
        lines = [row for row in self.table(entity_set).values() if row.get(foreign_key) == parent_key]
        return sorted(lines, key=lambda row: row.get("LineNumber") or 0)

    def delete(self, entity_set: EntitySet, key: str) -> None:
        self.table(entity_set).pop(key, None)
        for nav in entity_set.navigation.values():
            child = self.table(nav.child)
            for child_key in [k for k, row in child.items() if row.get(nav.foreign_key) == key]:
                del child[child_key]

    def next_journal_number(self, journal: str, year: int) -> int:
        """Exact-style entry number: 2-digit year, journal code, 4-digit sequence (26700001)."""
        key = (journal, year)
        self.journal_sequences[key] = self.journal_sequences.get(key, 0) + 1
        return int(f"{year % 100:02d}{journal.strip()}{self.journal_sequences[key]:04d}")

    def next_order_number(self) -> int:
        self.last_order_number += 1
        return self.last_order_number

    def counts(self, paths: Iterable[str] = ()) -> dict[str, int]:
        wanted = list(paths) or [es.path for es in ENTITY_SETS.values()]
        return {path: len(self.table(path)) for path in wanted}
