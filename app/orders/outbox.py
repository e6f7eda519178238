"""The outbox relay: moves committed outbox rows into arq.

Rows are written in the same transaction as the state change that needs the job, and read
here only after commit. Enqueueing is idempotent (arq refuses a job id it already holds),
so two relays, or a relay that crashed between enqueue and marking, never make two jobs.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.orders import repository as orders

log = structlog.get_logger(__name__)

# arq drops a job key a day after its run time by default; a booking may wait longer than
# that for Exact's daily budget, so jobs live a week (the sweeper covers anything beyond).
JOB_EXPIRES = timedelta(days=7)


async def relay_once(sessionmaker: async_sessionmaker[AsyncSession], redis: Any, limit: int = 200) -> int:
    async with sessionmaker() as session:
        async with session.begin():
            rows = await orders.pending_outbox(session, limit)
        if not rows:
            return 0
        done: list[int] = []
        for row in rows:
            args = [row.order_id] if row.order_id is not None else []
            if row.function == orders.BOOK_ORDER:
                args.append(int(row.job_id.rsplit(":", 1)[1]))
            await redis.enqueue_job(row.function, *args, _job_id=row.job_id, _expires=JOB_EXPIRES)
            done.append(row.id)
        async with session.begin():
            await orders.mark_enqueued(session, done)
    return len(done)


class OutboxRelay:
    """A background loop in each process: relays when poked, and at least every `interval`."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], redis: Any, interval: float = 2.0) -> None:
        self._sessionmaker = sessionmaker
        self._redis = redis
        self._interval = interval
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def poke(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="outbox-relay")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self._interval)
            self._wake.clear()
            try:
                while await relay_once(self._sessionmaker, self._redis) > 0:
                    pass
            except Exception as exc:  # noqa: BLE001 - Redis or DB down: rows stay, next tick retries
                log.warning("outbox_relay_failed", error=str(exc))
