"""Reference data jobs: one division's refresh, one connection's division list, and the nightly
pass that enqueues them.

`refresh_reference(connection_id, division)` reads the division's VAT codes, GL accounts,
journals, payment conditions, warehouses, cost centres, cost units and projects through the
rate-limited client and replaces the cache. `refresh_divisions(connection_id)` re-reads the
Exact user's divisions. The nightly cron only enqueues: one divisions job per active
connection and one reference job per division an integration books into (job ids carry the
date, so a second run the same day adds nothing), so it stays short however many there are.
A division whose budget is used up is deferred by arq until the limiter's reset.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import structlog
from arq import Retry
from sqlalchemy import select

from app.connections.models import ExactConnection
from app.connections.service import ACTIVE, refresh_divisions, refresh_reference
from app.db.base import utcnow
from app.exact.errors import ExactError, NeedsConsent, RateBudgetExhausted
from app.integrations.models import Integration

log = structlog.get_logger(__name__)

REFRESH_REFERENCE = "refresh_reference"
REFRESH_DIVISIONS = "refresh_divisions"


def _retry_later(exc: ExactError) -> Retry:
    if isinstance(exc, RateBudgetExhausted) and exc.retry_at_ms:
        return Retry(defer=timedelta(milliseconds=max(1_000, exc.retry_at_ms - int(utcnow().timestamp() * 1000))))
    return Retry(defer=timedelta(minutes=1 if isinstance(exc, RateBudgetExhausted) else 5))


async def refresh_reference_job(ctx: dict[str, Any], connection_id: int, division: int) -> dict[str, int] | str:
    try:
        return await refresh_reference(ctx["sessionmaker"], ctx["exact"], ctx["settings"], connection_id, division)
    except (NeedsConsent, LookupError) as exc:
        return f"skipped: {exc}"
    except ExactError as exc:
        if exc.retryable:
            raise _retry_later(exc) from exc
        log.warning("reference_refresh_failed", connection_id=connection_id, division=division, error=exc.message)
        return f"failed: {exc.message}"


async def refresh_divisions_job(ctx: dict[str, Any], connection_id: int) -> list[int] | str:
    try:
        divisions = await refresh_divisions(ctx["sessionmaker"], ctx["exact"], ctx["settings"], connection_id)
    except (NeedsConsent, LookupError) as exc:
        return f"skipped: {exc}"
    except ExactError as exc:
        if exc.retryable:
            raise _retry_later(exc) from exc
        log.warning("division_refresh_failed", connection_id=connection_id, error=exc.message)
        return f"failed: {exc.message}"
    return [d.code for d in divisions if d.available]


async def refresh_all_reference(ctx: dict[str, Any]) -> dict[str, int]:
    """Nightly: enqueue the divisions of every active connection and the reference data of
    every division in use."""
    sessionmaker, redis = ctx["sessionmaker"], ctx["redis"]
    async with sessionmaker() as session:
        connections = list((await session.execute(
            select(ExactConnection.id).where(ExactConnection.state == ACTIVE).order_by(ExactConnection.id))).scalars())
        in_use = (await session.execute(
            select(Integration.connection_id, Integration.division).where(
                Integration.connection_id.in_(connections), Integration.division.is_not(None))
            .distinct().order_by(Integration.connection_id, Integration.division))).all()
    day = utcnow().strftime("%Y%m%d")
    counts = {"divisions": 0, "reference": 0}
    for connection_id in connections:
        job = await redis.enqueue_job(REFRESH_DIVISIONS, connection_id, _job_id=f"divisions:{connection_id}:{day}")
        counts["divisions"] += job is not None
    for connection_id, division in in_use:
        job = await redis.enqueue_job(REFRESH_REFERENCE, connection_id, division,
                                      _job_id=f"reference:{connection_id}:{division}:{day}")
        counts["reference"] += job is not None
    return counts


REFERENCE_JOBS: dict[str, Callable[..., Awaitable[Any]]] = {
    REFRESH_REFERENCE: refresh_reference_job,
    REFRESH_DIVISIONS: refresh_divisions_job,
}
