"""The hourly keep-alive job: refresh idle Exact connections before their refresh token dies.

See app/connections/keepalive.py for the rules (7 idle days, one token call per connection a
week, under the shared token lock). Also sets the `koppel_connections_needing_consent` gauge
of this worker from the database.
"""

from __future__ import annotations

from typing import Any

from app.connections.keepalive import keep_alive


async def keepalive_connections(ctx: dict[str, Any]) -> dict[str, object]:
    settings = ctx["settings"]
    # Stay well inside the job timeout; what is left over is the oldest-first start of the next run.
    report = await keep_alive(ctx["sessionmaker"], ctx["exact"].tokens, settings,
                              time_budget=max(5.0, settings.job_timeout_seconds - 20))
    return report.as_dict()
