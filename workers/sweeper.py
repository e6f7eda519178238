"""The sweeper: Redis only carries triggers, so anything it lost is re-sent from the database.

Every run relays outbox rows that were never enqueued, and re-enqueues each queued or
booking order whose arq job is gone (Redis flushed or restarted, a job expired, …).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import structlog
from arq.jobs import Job, JobStatus
from sqlalchemy import select

from app.db.base import utcnow
from app.orders import repository as orders
from app.orders.models import Order
from app.orders.outbox import JOB_EXPIRES, relay_once
from app.orders.states import OrderState

log = structlog.get_logger(__name__)


async def enqueue_booking(redis: Any, order_id: int, revision: int, *, suffix: str = "") -> bool:
    job_id = orders.book_job_id(order_id, revision) + suffix
    job = await redis.enqueue_job(orders.BOOK_ORDER, order_id, revision, _job_id=job_id, _expires=JOB_EXPIRES)
    return job is not None


async def sweep(ctx: dict[str, Any]) -> dict[str, int]:
    sessionmaker, redis, settings = ctx["sessionmaker"], ctx["redis"], ctx["settings"]
    relayed = await relay_once(sessionmaker, redis)
    # Give a freshly queued order time to reach Redis through the relay first.
    quiet_since = utcnow() - timedelta(seconds=settings.sweeper_interval_seconds)
    async with sessionmaker() as session:
        rows = (await session.execute(
            select(Order.id, Order.revision).where(
                Order.state.in_([OrderState.QUEUED, OrderState.BOOKING]), Order.updated_at < quiet_since
            ).order_by(Order.id).limit(1000)
        )).all()
    requeued = 0
    for order_id, revision in rows:
        job_id = orders.book_job_id(order_id, revision)
        status = await Job(job_id, redis).status()
        if status in (JobStatus.queued, JobStatus.deferred, JobStatus.in_progress):
            continue
        # Gone (not_found), or finished although the order is still queued (complete):
        # a finished id cannot be reused while arq keeps its result, so add a suffix.
        suffix = "" if status == JobStatus.not_found else f":sweep{int(utcnow().timestamp())}"
        if await enqueue_booking(redis, order_id, revision, suffix=suffix):
            requeued += 1
    if requeued or relayed:
        log.info("sweep", relayed=relayed, requeued=requeued)
    return {"relayed": relayed, "requeued": requeued}
