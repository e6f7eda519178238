"""``Retry-After`` (RFC 9110 §10.2.3): delay-seconds or an HTTP-date, as epoch milliseconds."""

from __future__ import annotations

from collections.abc import Mapping
from email.utils import parsedate_to_datetime


def retry_after_ms(headers: Mapping[str, str], now_ms: int) -> int | None:
    """When the server asks us to come back, or None if it did not say (or said nonsense)."""
    raw = headers.get("Retry-After") or headers.get("retry-after")
    if not raw:
        return None
    raw = raw.strip()
    if raw.isdigit():
        return now_ms + int(raw) * 1000
    try:
        moment = parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError):
        return None
    if moment is None or moment.tzinfo is None:
        return None
    return max(now_ms, int(moment.timestamp() * 1000))
