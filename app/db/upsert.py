"""INSERT … ON CONFLICT DO NOTHING, the same call on PostgreSQL and SQLite.

Statements are built once per (table, dialect, key) and executed with parameters: the
webhook path runs them on every delivery, and building a statement anew each time costs
more CPU than executing it.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from sqlalchemy import Insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession


@lru_cache(maxsize=64)
def _statement(model: type[Any], dialect: str, conflict_columns: tuple[str, ...]) -> Insert:
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return insert(model).on_conflict_do_nothing(index_elements=list(conflict_columns)).returning(model.id)


async def insert_or_ignore(session: AsyncSession, model: type[Any], values: dict[str, Any],
                           conflict_columns: Sequence[str]) -> int | None:
    """Insert one row; return its id, or None when a row with the same key already exists.

    On PostgreSQL a concurrent insert of the same key waits for the other transaction and
    then does nothing, which is what makes a storm of identical deliveries collapse into one.
    """
    connection = await session.connection()
    statement = _statement(model, connection.dialect.name, tuple(conflict_columns))
    result = await connection.execute(statement, values)
    return result.scalar_one_or_none()
