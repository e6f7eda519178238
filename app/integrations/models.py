"""An integration is one shop or till, booking into one Exact connection + division."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, BigIntPK, JSONType, UTCDateTime, utcnow


class Integration(Base):
    __tablename__ = "integrations"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"), index=True)
    # The unguessable part of the webhook URL: /webhooks/{source}/{key}.
    key: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    source: Mapped[str] = mapped_column(String(32))
    connection_id: Mapped[int | None] = mapped_column(ForeignKey("exact_connections.id"), index=True)
    division: Mapped[int | None] = mapped_column(Integer)
    webhook_secret_enc: Mapped[str] = mapped_column(Text)
    # IntegrationSettings (app.integrations.schemas) as JSON.
    settings: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class IntegrationAudit(Base):
    """One change to an integration: who (API key), when, and the configuration before/after."""

    __tablename__ = "integration_audit"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    integration_id: Mapped[int] = mapped_column(ForeignKey("integrations.id"), index=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    api_key_id: Mapped[int | None] = mapped_column(ForeignKey("api_keys.id"))
    actor: Mapped[str] = mapped_column(String(300))  # "API key 7 (ops)", "cli", …
    action: Mapped[str] = mapped_column(String(32))  # created | updated | paused | enabled
    changed: Mapped[list[str]] = mapped_column(JSONType, default=list)  # top-level keys that changed
    before: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
