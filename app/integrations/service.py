"""Creating integrations (and the tenants they belong to). Never commits."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app import crypto
from app.db.base import utcnow
from app.integrations.models import Integration
from app.integrations.settings import IntegrationSettings
from app.tenancy.models import Tenant


async def create_tenant(session: AsyncSession, name: str, parent_id: int | None = None) -> Tenant:
    tenant = Tenant(name=name, parent_id=parent_id, created_at=utcnow())
    session.add(tenant)
    await session.flush()
    return tenant


def default_settings_for(source: str) -> IntegrationSettings:
    """Defaults per source: the statuses that mean "paid" differ between shops."""
    from app.sources.registry import get_adapter

    adapter = get_adapter(source)
    statuses = getattr(adapter, "DEFAULT_PROCESSABLE_STATUSES", None) or ["paid"]
    return IntegrationSettings(processable_statuses=list(statuses))


async def create_integration(
    session: AsyncSession,
    *,
    secret_key: str,
    tenant_id: int,
    name: str,
    source: str,
    connection_id: int | None = None,
    division: int | None = None,
    settings: IntegrationSettings | dict[str, Any] | None = None,
    webhook_secret: str | None = None,
) -> tuple[Integration, str]:
    """Create an integration; returns it with its webhook secret in plain text (shown once)."""
    if settings is None:
        settings = default_settings_for(source)
    elif isinstance(settings, dict):
        settings = IntegrationSettings.model_validate(settings)
    secret = webhook_secret or crypto.new_webhook_secret()
    now = utcnow()
    integration = Integration(
        tenant_id=tenant_id, key=crypto.new_token(18), name=name, source=source,
        connection_id=connection_id, division=division,
        webhook_secret_enc=crypto.encrypt(secret_key, secret),
        settings=settings.model_dump(mode="json"), enabled=True, created_at=now, updated_at=now,
    )
    session.add(integration)
    await session.flush()
    return integration, secret
