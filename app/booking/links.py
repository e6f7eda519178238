"""The per-division cache of Exact IDs Koppel matched or created (items, warehouses, addresses).

Reads and writes are short transactions of their own, never held open across a call to
Exact. A write that meets an existing row (another worker cached the same key meanwhile)
keeps the existing row: both point at the same Exact object, because every object is looked
up in Exact before it is created.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.connections.models import ExactLink
from app.db.base import utcnow
from app.db.upsert import insert_or_ignore


class LinkCache:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], connection_id: int, division: int,
                 kind: str) -> None:
        self.sessionmaker = sessionmaker
        self.connection_id = connection_id
        self.division = division
        self.kind = kind

    async def get_many(self, keys: Iterable[str]) -> dict[str, str]:
        wanted = sorted(set(keys))
        if not wanted:
            return {}
        async with self.sessionmaker() as db:
            rows = await db.execute(select(ExactLink.match_key, ExactLink.exact_id).where(
                ExactLink.connection_id == self.connection_id, ExactLink.division == self.division,
                ExactLink.kind == self.kind, ExactLink.match_key.in_(wanted)))
            return {key: exact_id for key, exact_id in rows.all()}

    async def get(self, key: str) -> str | None:
        return (await self.get_many([key])).get(key)

    async def put(self, key: str, exact_id: str, *, code: str | None = None, created: bool | None = None) -> None:
        async with self.sessionmaker() as db, db.begin():
            await insert_or_ignore(db, ExactLink, {
                "connection_id": self.connection_id, "division": self.division, "kind": self.kind,
                "match_key": key, "exact_id": exact_id, "code": code[:64] if code else None,
                "created_by_koppel": created, "created_at": utcnow(),
            }, ["connection_id", "division", "kind", "match_key"])

    async def forget(self, keys: Iterable[str]) -> None:
        keys = sorted(set(keys))
        if not keys:
            return
        async with self.sessionmaker() as db, db.begin():
            await db.execute(delete(ExactLink).where(
                ExactLink.connection_id == self.connection_id, ExactLink.division == self.division,
                ExactLink.kind == self.kind, ExactLink.match_key.in_(keys)))
