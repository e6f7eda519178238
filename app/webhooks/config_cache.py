"""What the webhook path needs about an integration, cached in the process for a few seconds.

Every delivery needs the integration (by its URL key), its decrypted secret, its parsed
settings and its division's VAT codes. They change rarely, so each API process keeps them
for `ttl` seconds instead of reading and decrypting them on every request.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from app import crypto
from app.connections import repository as connections
from app.integrations import repository as integrations
from app.integrations.models import Integration
from app.integrations.settings import IntegrationSettings
from app.orders.checks import VatCodeInfo


class SecretUnreadable(Exception):
    """The stored webhook secret cannot be decrypted with this server's KOPPEL_SECRET_KEY."""


@dataclass(frozen=True)
class IntakeConfig:
    integration: Integration
    secret: str
    settings: IntegrationSettings
    vat_codes: dict[str, VatCodeInfo] | None
    loaded_at: float


class IntakeConfigCache:
    def __init__(self, secret_key: str, ttl: float = 5.0) -> None:
        self._secret_key = secret_key
        self._ttl = ttl
        self._entries: dict[str, IntakeConfig] = {}

    async def get(self, session: AsyncSession, key: str) -> IntakeConfig | None:
        now = time.monotonic()
        entry = self._entries.get(key)
        if entry is not None and now - entry.loaded_at < self._ttl:
            return entry
        integration = await integrations.get_by_key(session, key)
        if integration is None:
            self._entries.pop(key, None)
            return None
        try:
            secret = crypto.decrypt(self._secret_key, integration.webhook_secret_enc)
        except ValueError as exc:
            raise SecretUnreadable from exc
        vat_codes = None
        if integration.connection_id is not None and integration.division is not None:
            vat_codes = await connections.vat_codes(session, integration.connection_id, integration.division)
        session.expunge(integration)
        entry = IntakeConfig(integration, secret, IntegrationSettings.model_validate(integration.settings or {}),
                             vat_codes, now)
        if self._ttl > 0:
            self._entries[key] = entry
        return entry

    def forget(self, key: str) -> None:
        """Drop one integration's entry (after its settings changed or it was paused here)."""
        self._entries.pop(key, None)
