"""The cron job that reconciles every shop with API credentials (see app.reconcile.service).

Every quarter of an hour; arq gives each tick one job id, so one worker runs it however many
are started. It runs under the ordinary job timeout, because arq keeps every in-progress job
(a killed worker's `book_order` too) for the largest timeout of any job before it retries it:
the run spends at most `KOPPEL_JOB_TIMEOUT_SECONDS` minus the time one shop request may take,
and a listing that does not fit goes on at the next tick. The shop API client lives for one
run (its own timeouts, never the Exact client's) unless the caller hands one in as
`ctx["shop_http"]` (tests).
"""

from __future__ import annotations

from typing import Any

import httpx

from app.reconcile.service import reconcile_all

RECONCILE_MINUTES = {0, 15, 30, 45}
SHOP_API_TIMEOUT = httpx.Timeout(20.0, connect=10.0)
# Left of the job timeout for the request in flight when the budget runs out, and the bookkeeping.
MARGIN_SECONDS = 30.0


def budget_seconds(job_timeout_seconds: float) -> float:
    return max(job_timeout_seconds - MARGIN_SECONDS, 5.0)


async def reconcile_shops(ctx: dict[str, Any]) -> dict[str, int]:
    sessionmaker, settings = ctx["sessionmaker"], ctx["settings"]
    secret_key = settings.secret_key.get_secret_value()
    budget = budget_seconds(settings.job_timeout_seconds)
    if ctx.get("shop_http") is not None:
        runs = await reconcile_all(sessionmaker, ctx["shop_http"], secret_key, budget_seconds=budget)
    else:
        async with httpx.AsyncClient(timeout=SHOP_API_TIMEOUT, follow_redirects=False) as http:
            runs = await reconcile_all(sessionmaker, http, secret_key, budget_seconds=budget)
    queued = sum(run.queued for run in runs)
    if queued and ctx.get("relay") is not None:
        ctx["relay"].poke()  # book now rather than at the sweeper's next pass
    return {"shops": len(runs), "failed": sum(run.error is not None for run in runs),
            "unfinished": sum(run.error is None and not run.finished for run in runs),
            "taken_in": sum(run.counts["new"] + run.counts["updated"] for run in runs), "queued": queued}
