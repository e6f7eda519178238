"""Prometheus metrics and structured JSON logs (structlog). Secrets never reach either."""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog
from prometheus_client import Counter, Gauge, Histogram

DELIVERIES = Counter("koppel_deliveries_total", "Webhook deliveries by source and answer", ["source", "status"])
ORDERS_BY_STATE = Gauge("koppel_orders", "Orders by state", ["state"])
JOB_SECONDS = Histogram("koppel_job_seconds", "Booking job duration", ["outcome"],
                        buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60))
CONNECTIONS_NEEDING_CONSENT = Gauge("koppel_connections_needing_consent", "Exact connections that need consent")


async def refresh_gauges(resources: Any) -> None:
    """Set the order and connection gauges from the database (called when /metrics is scraped)."""
    from sqlalchemy import func, select

    from app.connections.models import ExactConnection
    from app.orders.models import Order
    from app.orders.states import ALL_STATES

    try:
        async with resources.sessionmaker() as session:
            counts = dict((await session.execute(select(Order.state, func.count()).group_by(Order.state))).all())
            consent = (await session.execute(select(func.count()).select_from(ExactConnection)
                                             .where(ExactConnection.state == "needs_consent"))).scalar_one()
    except Exception:  # noqa: BLE001 - a scrape must not fail because the database is down
        return
    for state in ALL_STATES:
        ORDERS_BY_STATE.labels(state=state).set(counts.get(state, 0))
    CONNECTIONS_NEEDING_CONSENT.set(consent)


def configure_logging(level: str = "INFO", json: bool = True) -> None:
    processors: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
    ]
    processors.append(structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer())
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        # Not cached: tests (and operators, via configure_logging) may reconfigure later.
        cache_logger_on_first_use=False,
    )
