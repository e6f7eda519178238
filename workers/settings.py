"""arq worker settings: `koppel worker` (or `arq workers.settings.WorkerSettings`).

JSON, never pickle; short, uniform job timeouts (a killed worker's job is picked up again
after the largest timeout + 10 s); a health check every 30 s for `arq --check`.
"""

from __future__ import annotations

import socket
from typing import Any

from arq import cron, func

from app.queue import deserialize, redis_settings, serialize
from app.settings import get_settings
from workers.book_order import book_order
from workers.context import shutdown, startup
from workers.keepalive import keepalive_connections
from workers.reconcile import RECONCILE_MINUTES, reconcile_shops
from workers.reevaluate_open import REEVALUATE_HOUR, REEVALUATE_MINUTE, reevaluate_open
from workers.refresh_reference import REFERENCE_JOBS, refresh_all_reference
from workers.sweeper import sweep

_settings = get_settings()


class WorkerSettings:
    functions = [func(book_order, name="book_order", timeout=_settings.job_timeout_seconds, max_tries=10_000)]
    cron_jobs = [cron(sweep, second={0, 30}, run_at_startup=True, timeout=_settings.job_timeout_seconds)]
    # Exact connections: reference data per division (and nightly for divisions in use), and the
    # hourly keep-alive of idle token chains (app/connections/keepalive.py).
    # Timeouts stay the uniform job timeout: arq retries a killed worker's jobs after the largest.
    functions += [func(f, name=name, timeout=_settings.job_timeout_seconds, max_tries=50)
                  for name, f in REFERENCE_JOBS.items()]
    cron_jobs += [cron(refresh_all_reference, hour={2}, minute={30}, timeout=_settings.job_timeout_seconds),
                  cron(keepalive_connections, minute={7}, timeout=_settings.job_timeout_seconds)]
    # Shops with API credentials: orders whose webhooks were lost (app/reconcile/), and nightly,
    # after the reference refresh, the orders still open (workers/reevaluate_open.py).
    cron_jobs += [cron(reconcile_shops, minute=RECONCILE_MINUTES, timeout=_settings.job_timeout_seconds),
                  cron(reevaluate_open, hour={REEVALUATE_HOUR}, minute={REEVALUATE_MINUTE},
                       timeout=_settings.job_timeout_seconds)]
    on_startup = startup
    on_shutdown = shutdown
    queue_name = _settings.queue_name
    redis_settings = redis_settings(_settings.redis_url or "redis://127.0.0.1:6379/0")
    job_serializer = staticmethod(serialize)
    job_deserializer = staticmethod(deserialize)
    max_jobs = _settings.worker_max_jobs
    job_timeout = _settings.job_timeout_seconds
    health_check_interval = 30
    # Per host, so `arq --check` in each container checks that container's worker.
    health_check_key = f"{_settings.queue_name}:health-check:{socket.gethostname()}"
    job_completion_wait = 20
    keep_result = 3600
    # Booking attempts are counted in the database; arq's try counter would also count
    # every wait for Exact's rate budget, so it is only a backstop here.
    max_tries = 10_000


def worker_settings(**overrides: Any) -> dict[str, Any]:
    """WorkerSettings as a dict, for running a worker in-process (tests, `koppel run`)."""
    values = {name: getattr(WorkerSettings, name) for name in dir(WorkerSettings) if not name.startswith("_")}
    values.update(overrides)
    return values
