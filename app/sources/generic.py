"""The `generic` source: the canonical order JSON, signed per Standard Webhooks.

Signature: `webhook-signature` holds space-separated `v1,<base64>` entries (several while a
key rotates); each is HMAC-SHA256 over `{webhook-id}.{webhook-timestamp}.{raw body}` with
the secret after its `whsec_` prefix, base64-decoded. Timestamps more than five minutes
off, either way, are refused (the reference library's tolerance).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from app.integrations.settings import IntegrationSettings
from app.orders.canonical import CanonicalOrder
from app.sources.base import MappingError, SignatureError, SourceAdapter

TOLERANCE_SECONDS = 300
SECRET_PREFIX = "whsec_"


def signing_key(secret: str) -> bytes:
    raw = secret[len(SECRET_PREFIX):] if secret.startswith(SECRET_PREFIX) else secret
    try:
        return base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        # A secret that is not base64 is used as bytes, as some senders do.
        return raw.encode()


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` header value a sender would send (used by demo and tests)."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(signing_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


class GenericAdapter(SourceAdapter):
    name = "generic"

    def verify(self, secret: str, body: bytes, headers: Mapping[str, str], now: float) -> None:
        msg_id = headers.get("webhook-id")
        timestamp = headers.get("webhook-timestamp")
        signatures = headers.get("webhook-signature")
        if not msg_id or not timestamp or not signatures:
            raise SignatureError("missing webhook-id, webhook-timestamp or webhook-signature header")
        try:
            sent_at = int(timestamp)
        except ValueError as exc:
            raise SignatureError("webhook-timestamp is not a Unix timestamp") from exc
        if abs(now - sent_at) > TOLERANCE_SECONDS:
            raise SignatureError("webhook-timestamp is more than 5 minutes away from now")
        expected = sign(secret, msg_id, sent_at, body).split(",", 1)[1].encode()
        for entry in signatures.split():
            version, _, value = entry.partition(",")
            if version == "v1" and hmac.compare_digest(value.encode(), expected):
                return
        raise SignatureError("no webhook-signature matches the body")

    def delivery_id(self, body: bytes, headers: Mapping[str, str]) -> str:
        return headers["webhook-id"]

    def to_order(self, payload: Any, settings: IntegrationSettings) -> CanonicalOrder:
        if not isinstance(payload, dict):
            raise MappingError("body", "expected a JSON object with the canonical order")
        source_id = payload.get("source_order_id")
        try:
            return CanonicalOrder.model_validate(payload)
        except ValidationError as exc:
            raise MappingError.from_validation(
                exc, source_order_id=str(source_id) if isinstance(source_id, (str, int)) and source_id != "" else None
            ) from exc
