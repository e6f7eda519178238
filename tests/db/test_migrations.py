"""The schema comes from Alembic only, and the models never drift from the migrations."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from app.db.base import Base
from app.db.migrate import current_revision, ensure_current, head_revision


async def test_models_and_migrations_do_not_drift(engine) -> None:
    def diff(connection):  # type: ignore[no-untyped-def]
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return compare_metadata(context, Base.metadata)

    async with engine.connect() as connection:
        differences = await connection.run_sync(diff)
    assert differences == [], f"models differ from migrations; run `make migration`: {differences}"


async def test_database_is_at_head_and_has_every_table(engine) -> None:
    assert await current_revision(engine) == head_revision()
    await ensure_current(engine)  # does not raise

    async with engine.connect() as connection:
        tables = await connection.run_sync(lambda c: set(inspect(c).get_table_names()))
    assert set(Base.metadata.tables) <= tables
