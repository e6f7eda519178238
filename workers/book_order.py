"""The arq job that books one order revision. Safe to run any number of times."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from arq import Retry

from app.observability import JOB_SECONDS


async def book_order(ctx: dict[str, Any], order_id: int, revision: int) -> str:
    started = time.perf_counter()
    outcome = await ctx["booking"].run(order_id, revision)
    JOB_SECONDS.labels(outcome=outcome.name).observe(time.perf_counter() - started)
    if outcome.defer_ms is not None:
        # Come back later without holding a worker slot (rate budget, backoff, busy order).
        raise Retry(defer=timedelta(milliseconds=max(outcome.defer_ms, 100)))
    return f"{outcome.name}: {outcome.detail}" if outcome.detail else outcome.name
