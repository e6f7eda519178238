"""The integration audit log: every configuration change with who, when, before and after."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.base import utcnow
from app.integrations.models import Integration, IntegrationAudit


def snapshot(integration: Integration) -> dict[str, Any]:
    """The configuration of an integration as the audit log keeps it (never its secret)."""
    return {
        "name": integration.name, "source": integration.source, "connection_id": integration.connection_id,
        "division": integration.division, "enabled": bool(integration.enabled),
        "settings": dict(integration.settings or {}),
    }


def changed_keys(before: dict[str, Any] | None, after: dict[str, Any]) -> list[str]:
    """Top-level keys that differ, with settings keys as ``settings.<key>``."""
    before = before or {}
    changed: list[str] = []
    for key in after:
        if key == "settings":
            old, new = before.get("settings") or {}, after["settings"] or {}
            changed += [f"settings.{name}" for name in sorted({*old, *new}) if old.get(name) != new.get(name)]
        elif before.get(key) != after[key]:
            changed.append(key)
    return changed


async def record(session: AsyncSession, integration: Integration, *, action: str, actor: str,
                 api_key_id: int | None, before: dict[str, Any] | None, after: dict[str, Any]) -> IntegrationAudit:
    entry = IntegrationAudit(integration_id=integration.id, tenant_id=integration.tenant_id, at=utcnow(),
                             api_key_id=api_key_id, actor=actor, action=action,
                             changed=changed_keys(before, after), before=before, after=after)
    session.add(entry)
    await session.flush()
    return entry


async def entries(session: AsyncSession, integration_id: int, limit: int = 100) -> list[IntegrationAudit]:
    query = (select(IntegrationAudit).where(IntegrationAudit.integration_id == integration_id)
             .order_by(IntegrationAudit.id.desc()).limit(limit))
    return list((await session.execute(query)).scalars())


def entry_json(entry: IntegrationAudit) -> dict[str, Any]:
    return {"id": entry.id, "at": entry.at, "actor": entry.actor, "api_key_id": entry.api_key_id,
            "action": entry.action, "changed": entry.changed or [], "before": entry.before, "after": entry.after}
