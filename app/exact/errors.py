"""Errors raised by the Exact Online client.

Every error carries a plain-language ``message`` and a ``retryable`` flag, so the job layer can
decide between "defer and try again" and "stop and ask a human" without knowing HTTP::

    ExactError                        base class; .message, .retryable, .retry_at_ms, .outcome_unknown
    ├── ExactTransportError           timeout / connection failure; outcome_unknown=True (the
    │                                 request may have been processed), retryable
    ├── ExactHTTPError                Exact answered with an error status; .status, .body, .headers
    │   ├── ExactRateLimited          429; .reset_at_ms; retryable at that time
    │   ├── ExactServerUnavailable    502/503/504, or 500 without a business message; retryable,
    │   │                             outcome_unknown=True
    │   ├── ExactValidationError      400, or 500 carrying Exact's {"error":{"message":{"value":…}}};
    │   │                             a business error, NOT retryable (Exact blocks an app after 10
    │   │                             errors per endpoint per hour, so never retry it blindly)
    │   ├── ExactAuthError            401/403 and token-endpoint refusals; .reason (the `Reason`
    │   │                             header, e.g. TooEarlyToRefreshTokens, NoDivisionAccess);
    │   │                             retryable only when constructed so (TooEarly)
    │   └── ExactNotFound             404; not retryable
    ├── NeedsConsent                  the refresh token is dead (reused, 30 days idle,
    │                                 invalid_grant) or missing; a user must authorize again
    ├── RateBudgetExhausted           our own shared limiter refused *before* sending;
    │                                 .retry_at_ms says when to run the job again
    └── TokenLockTimeout              could not get the cross-process token lock in time; retryable

``retry_at_ms`` (epoch milliseconds, or None) is the earliest sensible time for a retry when
the error knows one (rate-limit resets, Retry-After, the opening of the token refresh window).
``outcome_unknown`` is True when a write may have been applied although we saw no success:
look the document up by our own reference before creating it again.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class ExactError(Exception):
    """Base class of everything the Exact client raises on purpose."""

    default_retryable = False

    def __init__(
        self,
        message: str,
        *,
        retryable: bool | None = None,
        retry_at_ms: int | None = None,
        outcome_unknown: bool = False,
    ) -> None:
        super().__init__(message)
        self.message = message
        self._retryable = self.default_retryable if retryable is None else retryable
        self.retry_at_ms = retry_at_ms
        self.outcome_unknown = outcome_unknown

    @property
    def retryable(self) -> bool:
        return self._retryable

    def __str__(self) -> str:
        return self.message


class ExactTransportError(ExactError):
    """No HTTP answer: timeout, connection reset, DNS or TLS failure.

    ``outcome_unknown`` is True unless the failure happened while connecting (then the request
    cannot have reached Exact).
    """

    default_retryable = True

    def __init__(self, message: str, *, outcome_unknown: bool = True) -> None:
        super().__init__(message, outcome_unknown=outcome_unknown)


class ExactHTTPError(ExactError):
    """Exact answered with a non-success status."""

    def __init__(
        self,
        status: int,
        message: str,
        body: Any = None,
        *,
        headers: Mapping[str, str] | None = None,
        retryable: bool | None = None,
        retry_at_ms: int | None = None,
        outcome_unknown: bool = False,
    ) -> None:
        super().__init__(
            message, retryable=retryable, retry_at_ms=retry_at_ms, outcome_unknown=outcome_unknown
        )
        self.status = status
        self.body = body
        self.headers: dict[str, str] = dict(headers or {})

    def __str__(self) -> str:
        return f"{self.status}: {self.message}"


class ExactRateLimited(ExactHTTPError):
    """429 from Exact. Run again at ``reset_at_ms``."""

    default_retryable = True

    def __init__(
        self,
        message: str = "Exact rate limit reached",
        body: Any = None,
        *,
        reset_at_ms: int,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(429, message, body, headers=headers, retry_at_ms=reset_at_ms)
        self.reset_at_ms = reset_at_ms


class ExactServerUnavailable(ExactHTTPError):
    """A transient server-side failure. For writes the outcome is unknown."""

    default_retryable = True

    def __init__(
        self,
        status: int,
        message: str = "Exact is temporarily unavailable",
        body: Any = None,
        *,
        headers: Mapping[str, str] | None = None,
        retry_at_ms: int | None = None,
    ) -> None:
        super().__init__(
            status,
            message,
            body,
            headers=headers,
            retry_at_ms=retry_at_ms,
            outcome_unknown=True,
        )


class ExactValidationError(ExactHTTPError):
    """Exact rejected the request's content; ``message`` is Exact's own text (often Dutch)."""

    default_retryable = False


class ExactAuthError(ExactHTTPError):
    """401/403, or a refusal from the token endpoint. ``reason`` is Exact's `Reason` header."""

    default_retryable = False

    def __init__(
        self,
        status: int,
        message: str,
        body: Any = None,
        *,
        reason: str | None = None,
        headers: Mapping[str, str] | None = None,
        retryable: bool | None = None,
        retry_at_ms: int | None = None,
    ) -> None:
        super().__init__(
            status, message, body, headers=headers, retryable=retryable, retry_at_ms=retry_at_ms
        )
        self.reason = reason


class ExactNotFound(ExactHTTPError):
    """404: the entity or endpoint does not exist."""

    default_retryable = False


class NeedsConsent(ExactError):
    """The connection's refresh token can no longer be used; someone must authorize again."""

    default_retryable = False

    def __init__(self, connection_id: int, reason: str) -> None:
        super().__init__(
            f"Exact connection {connection_id} needs a new authorization: {reason}"
        )
        self.connection_id = connection_id
        self.reason = reason


class RateBudgetExhausted(ExactError):
    """Our shared per-division budget is used up; nothing was sent. Defer to ``retry_at_ms``."""

    default_retryable = True

    def __init__(self, retry_at_ms: int, *, window: str = "minutely") -> None:
        super().__init__(
            f"Exact call budget ({window}) used up; try again at epoch ms {retry_at_ms}",
            retry_at_ms=retry_at_ms,
        )
        self.window = window


class TokenLockTimeout(ExactError):
    """Another process held the token lock for too long; try again shortly."""

    default_retryable = True

    def __init__(self, connection_id: int) -> None:
        super().__init__(f"timed out waiting for the token lock of connection {connection_id}")
        self.connection_id = connection_id


__all__ = [
    "ExactError",
    "ExactTransportError",
    "ExactHTTPError",
    "ExactRateLimited",
    "ExactServerUnavailable",
    "ExactValidationError",
    "ExactAuthError",
    "ExactNotFound",
    "NeedsConsent",
    "RateBudgetExhausted",
    "TokenLockTimeout",
]
