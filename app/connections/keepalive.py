"""Token health: keep idle Exact connections alive, and count the ones that need consent.

Exact's refresh token dies after 30 days without use, and a user + app may make at most 200
token calls a day. A connection that books every day refreshes on its own; one that is idle
(a seasonal shop, a division that only books at month end) would silently die. So a scheduled
job refreshes every active connection whose last refresh is older than ``KEEPALIVE_AFTER``
(7 days: four chances before day 30). Such a connection's access token (600 s) has long
expired, so Exact allows the refresh at once (no ``TooEarlyToRefreshTokens``); it costs one
token call per connection per week, far inside the daily 200. The refresh goes through the
shared ``TokenManager``, under the same Redis lock as every worker's, so it can never race a
booking's refresh into "Old refresh token used".
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import structlog
from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.connections.models import ExactConnection
from app.connections.service import ACTIVE, NEEDS_CONSENT, oauth_app
from app.db.base import utcnow
from app.exact.errors import ExactError, NeedsConsent
from app.exact.tokens import TokenManager
from app.observability import CONNECTIONS_NEEDING_CONSENT
from app.settings import Settings

log = structlog.get_logger(__name__)

KEEPALIVE_AFTER = timedelta(days=7)
BATCH = 200  # per run; the job runs hourly, so even a large installation catches up in a day


@dataclass
class KeepAliveReport:
    refreshed: list[int] = field(default_factory=list)
    needs_consent: list[int] = field(default_factory=list)
    failed: dict[int, str] = field(default_factory=dict)
    untouched: list[int] = field(default_factory=list)  # still had a live access token: no call made
    postponed: int = 0  # due, but left for the next run (time budget spent)
    needing_consent_total: int = 0

    def as_dict(self) -> dict[str, object]:
        return {"refreshed": self.refreshed, "needs_consent": self.needs_consent, "failed": self.failed,
                "untouched": self.untouched, "postponed": self.postponed,
                "needing_consent_total": self.needing_consent_total}


async def count_needing_consent(sessionmaker: async_sessionmaker[AsyncSession]) -> int:
    """Set the ``koppel_connections_needing_consent`` gauge from the database and return it."""
    async with sessionmaker() as session:
        total = int((await session.execute(select(func.count()).select_from(ExactConnection)
                                           .where(ExactConnection.state == NEEDS_CONSENT))).scalar_one())
    CONNECTIONS_NEEDING_CONSENT.set(total)
    return total


async def idle_connections(session: AsyncSession, cutoff: datetime, limit: int = BATCH) -> list[ExactConnection]:
    query = (select(ExactConnection)
             .where(ExactConnection.state == ACTIVE, ExactConnection.refresh_token_enc.is_not(None),
                    or_(ExactConnection.refreshed_at.is_(None), ExactConnection.refreshed_at < cutoff))
             .order_by(ExactConnection.refreshed_at.asc().nulls_first(), ExactConnection.id).limit(limit))
    return list((await session.execute(query)).scalars())


async def keep_alive(sessionmaker: async_sessionmaker[AsyncSession], tokens: TokenManager, settings: Settings, *,
                     now: datetime | None = None, idle_after: timedelta = KEEPALIVE_AFTER,
                     limit: int = BATCH, time_budget: float | None = None) -> KeepAliveReport:
    """Refresh each connection idle for longer than ``idle_after``, once. With a ``time_budget``
    (seconds) no new refresh starts after it is spent; the oldest go first, the rest next run."""
    cutoff = (now or utcnow()) - idle_after
    async with sessionmaker() as session:
        due = [(c.id, c.base_url, c.client_id) for c in await idle_connections(session, cutoff, limit)]
    report = KeepAliveReport()
    started = time.monotonic()
    for index, (connection_id, base_url, client_id) in enumerate(due):
        if time_budget is not None and time.monotonic() - started > time_budget:
            report.postponed = len(due) - index
            break
        try:
            # Refreshes only when the stored access token is (nearly) expired: for a connection
            # idle for days it always is. A live token means someone just used it: nothing to do.
            await tokens.access_token(connection_id, base_url, oauth_app(settings, client_id))
        except NeedsConsent as exc:
            report.needs_consent.append(connection_id)
            log.warning("exact.keepalive.needs_consent", connection_id=connection_id, reason=exc.reason)
            continue
        except ExactError as exc:  # transient (lock, 5xx, transport): the next hourly run retries
            report.failed[connection_id] = exc.message
            log.warning("exact.keepalive.failed", connection_id=connection_id, error=exc.message)
            continue
        async with sessionmaker() as session:
            refreshed_at = (await session.execute(select(ExactConnection.refreshed_at)
                                                  .where(ExactConnection.id == connection_id))).scalar_one_or_none()
        if refreshed_at is not None and refreshed_at >= cutoff:
            report.refreshed.append(connection_id)
        else:
            report.untouched.append(connection_id)
    report.needing_consent_total = await count_needing_consent(sessionmaker)
    if due:
        log.info("exact.keepalive", **report.as_dict())
    return report
