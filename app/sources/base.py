"""What a source adapter is: signature check, delivery id, and payload → canonical order.

An adapter never touches the database. The intake service calls, in order:
`verify()` (→ `SignatureError`, answered 401), `is_ping()` (subscription pings answered
200 and not stored), `delivery_id()` (the sender's idempotency key), `decode()`
(→ `BodyNotJSON`, answered 400 and stored as rejected) and `to_order()`
(→ `MappingError`, answered 422 and stored as rejected with the failing field).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any, ClassVar

from pydantic import ValidationError

from app.integrations.settings import IntegrationSettings
from app.orders.canonical import CanonicalOrder


class SignatureError(Exception):
    """The delivery is not authentic (missing or bad signature, stale timestamp)."""


class BodyNotJSON(Exception):
    """The body could not be decoded as the source's JSON."""


class MappingError(Exception):
    """The JSON is not an order this adapter can map; `field` names what failed."""

    def __init__(self, field: str, reason: str, *, source_order_id: str | None = None) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason
        self.source_order_id = source_order_id

    @classmethod
    def from_validation(cls, error: ValidationError, *, prefix: str = "",
                        source_order_id: str | None = None) -> MappingError:
        first = error.errors()[0]
        location = ".".join(str(part) for part in first["loc"])
        field = f"{prefix}{location}" if location else prefix.rstrip(".") or "body"
        return cls(field, first["msg"], source_order_id=source_order_id)


class SourceAdapter:
    """Base class; each shop overrides what it does differently."""

    name: ClassVar[str]

    def verify(self, secret: str, body: bytes, headers: Mapping[str, str], now: float) -> None:
        raise NotImplementedError

    def is_ping(self, body: bytes, headers: Mapping[str, str]) -> bool:
        return False

    def delivery_id(self, body: bytes, headers: Mapping[str, str]) -> str:
        """The sender's event id; a hash of the body where the source sends none."""
        return "sha256:" + hashlib.sha256(body).hexdigest()

    def decode(self, body: bytes, headers: Mapping[str, str]) -> Any:
        try:
            return json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise BodyNotJSON(f"body is not JSON: {exc}") from exc

    def to_order(self, payload: Any, settings: IntegrationSettings) -> CanonicalOrder:
        raise NotImplementedError

    def headers_to_keep(self, headers: Mapping[str, str]) -> dict[str, str]:
        """Headers stored with the raw delivery (never a cookie or authorization header)."""
        skip = {"authorization", "cookie", "x-api-key"}
        return {k.lower(): v for k, v in headers.items() if k.lower() not in skip}
