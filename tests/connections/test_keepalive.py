"""The keep-alive job: an idle connection is refreshed once, a busy one is left alone, a dead
one is marked needing consent and counted in the gauge and /api/v1/stats."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from prometheus_client import REGISTRY
from sqlalchemy import update

from app.connections.keepalive import keep_alive
from app.connections.models import ExactConnection
from app.connections.service import make_exact_client
from app.connections.tokens import save_token
from app.db.base import utcnow
from app.exact.tokens import StoredToken
from app.sandbox.seed import DEFAULT_USER_ID, OTHER_USER_EMAIL
from tests.booking.harness import SANDBOX_URL, e2e_settings
from tests.connections.support import connect, installation_admin, koppel_api, new_connection, tenant
from tests.factories import SECRET_KEY
from workers.keepalive import keepalive_connections


def gauge() -> float | None:
    return REGISTRY.get_sample_value("koppel_connections_needing_consent")


async def _dead_connection(sessionmaker, tenant_id: int) -> int:  # type: ignore[no-untyped-def]
    """A connection whose refresh token Exact no longer knows (as after 30 idle days)."""
    async with sessionmaker() as session, session.begin():
        connection = ExactConnection(tenant_id=tenant_id, name="Vergeten", base_url=SANDBOX_URL,
                                     client_id="koppel-sandbox", state="active", created_at=utcnow(),
                                     updated_at=utcnow())
        session.add(connection)
        await session.flush()
        await save_token(session, SECRET_KEY, connection.id,
                         StoredToken("sbx-at.gone", "sbx-rt.gone", datetime.now(UTC) - timedelta(days=40)))
        await session.execute(update(ExactConnection).where(ExactConnection.id == connection.id)
                              .values(refreshed_at=datetime.now(UTC) - timedelta(days=40)))
        return connection.id


async def test_keepalive_refreshes_idle_connections_once_and_counts_dead_ones(
        database_url, sessionmaker, redis_client, redis_url, sandbox, sandbox_client) -> None:
    settings = e2e_settings(database_url, redis_url)
    firm = await tenant(sessionmaker, "Kantoor")
    install = await installation_admin(sessionmaker)
    async with koppel_api(database_url, redis_url, sandbox_client) as api:
        idle = await new_connection(api, install, firm.tenant_id, name="Seizoenswinkel")
        assert (await connect(api, sandbox_client, idle, firm.admin)).status_code == 200
        busy = await new_connection(api, install, firm.tenant_id, name="Drukke winkel")
        assert (await connect(api, sandbox_client, busy, firm.admin, sandbox_user=OTHER_USER_EMAIL)).status_code == 200
        dead = await _dead_connection(sessionmaker, firm.tenant_id)
        # Eight days without a refresh: the access token expired long ago, at Exact too.
        eight_days_ago = datetime.now(UTC) - timedelta(days=8)
        async with sessionmaker() as session, session.begin():
            await session.execute(update(ExactConnection).where(ExactConnection.id == idle).values(
                refreshed_at=eight_days_ago, access_expires_at=eight_days_ago + timedelta(minutes=10)))
        sandbox.expire_access_tokens(user=DEFAULT_USER_ID)
        before = sandbox.token_stats()["refreshes"]
        async with sessionmaker() as session:
            busy_refreshed_at = (await session.get(ExactConnection, busy)).refreshed_at  # type: ignore[union-attr]

        ctx = {"sessionmaker": sessionmaker, "settings": settings,
               "exact": make_exact_client(sandbox_client, redis_client, sessionmaker, settings)}
        first = await keepalive_connections(ctx)
        second = await keepalive_connections(ctx)
        stats = (await api.get("/api/v1/stats", headers=firm.viewer)).json()

    assert first["refreshed"] == [idle] and first["needs_consent"] == [dead] and first["failed"] == {}
    assert busy not in first["refreshed"] + first["untouched"]  # not idle: not even looked at
    assert second["refreshed"] == [] and second["needs_consent"] == []  # once is enough
    assert sandbox.token_stats()["refreshes"] - before == 1
    assert sandbox.token_stats()["old_refresh_token_used"] == 0 and sandbox.token_stats()["too_early"] == 0
    async with sessionmaker() as session:
        rows = {c: await session.get(ExactConnection, c) for c in (idle, busy, dead)}
    assert rows[idle].refreshed_at > datetime.now(UTC) - timedelta(minutes=1)  # type: ignore[union-attr,operator]
    assert rows[idle].state == "active"  # type: ignore[union-attr]
    assert rows[busy].refreshed_at == busy_refreshed_at  # type: ignore[union-attr]
    assert rows[dead].state == "needs_consent"  # type: ignore[union-attr]
    assert first["needing_consent_total"] == 1 and gauge() == 1
    assert stats["connections_needing_consent"] == 1


async def test_gauge_is_set_from_the_database_not_counted_up(database_url, sessionmaker, redis_client, redis_url,
                                                             sandbox, sandbox_client) -> None:
    settings = e2e_settings(database_url, redis_url)
    firm = await tenant(sessionmaker, "Kantoor")
    dead = await _dead_connection(sessionmaker, firm.tenant_id)
    ctx = {"sessionmaker": sessionmaker, "settings": settings,
           "exact": make_exact_client(sandbox_client, redis_client, sessionmaker, settings)}
    postponed = await keep_alive(sessionmaker, ctx["exact"].tokens, settings, time_budget=-1)
    assert postponed.postponed == 1 and postponed.needs_consent == []  # over budget: left for the next run
    await keepalive_connections(ctx)
    await keepalive_connections(ctx)  # the dead one is not refreshed again, nor counted twice
    assert gauge() == 1
    async with sessionmaker() as session, session.begin():
        await session.execute(update(ExactConnection).where(ExactConnection.id == dead).values(state="active",
                              refreshed_at=utcnow()))
    await keepalive_connections(ctx)
    assert gauge() == 0
