"""The database behind the Exact token manager: tokens encrypted at rest, saved durably.

Each call runs in its own short transaction and commits before returning, because the
token manager must have the rotated refresh token on disk before anyone uses it.
"""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app import crypto
from app.connections.models import ExactConnection
from app.db.base import utcnow
from app.exact.tokens import StoredToken


class DatabaseTokenStore:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], secret_key: str) -> None:
        self._sessionmaker = sessionmaker
        self._secret_key = secret_key

    async def load(self, connection_id: int) -> StoredToken | None:
        async with self._sessionmaker() as session, session.begin():
            row = (await session.execute(
                select(ExactConnection.access_token_enc, ExactConnection.refresh_token_enc,
                       ExactConnection.access_expires_at).where(ExactConnection.id == connection_id)
            )).first()
        if row is None or not row[0] or not row[1] or row[2] is None:
            return None
        return StoredToken(
            access_token=crypto.decrypt(self._secret_key, row[0]),
            refresh_token=crypto.decrypt(self._secret_key, row[1]),
            expires_at=row[2],
        )

    async def save(self, connection_id: int, token: StoredToken) -> None:
        async with self._sessionmaker() as session, session.begin():
            await save_token(session, self._secret_key, connection_id, token)

    async def mark_needs_consent(self, connection_id: int, reason: str) -> None:
        async with self._sessionmaker() as session, session.begin():
            await session.execute(update(ExactConnection).where(ExactConnection.id == connection_id).values(
                state="needs_consent", state_reason=reason, updated_at=utcnow()))


async def save_token(session: AsyncSession, secret_key: str, connection_id: int, token: StoredToken) -> None:
    """Store a token pair on the connection (in the caller's transaction) and mark it active."""
    await session.execute(update(ExactConnection).where(ExactConnection.id == connection_id).values(
        access_token_enc=crypto.encrypt(secret_key, token.access_token),
        refresh_token_enc=crypto.encrypt(secret_key, token.refresh_token),
        access_expires_at=token.expires_at,
        refreshed_at=utcnow(),
        state="active",
        state_reason=None,
        updated_at=utcnow(),
    ))
