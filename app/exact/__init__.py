"""Exact Online: hosts, OAuth tokens, the shared rate limiter and the async REST client.

Modules, one concern each:

* ``errors``     – the exception hierarchy (drawn in its docstring)
* ``hosts``      – country → base URL, endpoint URLs
* ``tokens``     – ``TokenManager``: cross-process safe token refresh
* ``ratelimit``  – ``DivisionRateLimiter``: per (client_id, division) budget in Redis
* ``client``     – ``ExactClient`` / ``ExactSession``: the REST calls
* ``odata``      – literals for ``$filter``, envelope unwrapping, query strings
* ``encoding``   – exact JSON (Decimal in and out), ``/Date(ms)/`` parsing
* ``metrics``    – Prometheus counters and the default call hook
"""

from app.exact.client import ConnectionRef, ExactClient, ExactSession, Page
from app.exact.encoding import dumps, loads, parse_exact_date
from app.exact.errors import (
    ExactAuthError,
    ExactError,
    ExactHTTPError,
    ExactNotFound,
    ExactRateLimited,
    ExactServerUnavailable,
    ExactTransportError,
    ExactValidationError,
    NeedsConsent,
    RateBudgetExhausted,
    TokenLockTimeout,
)
from app.exact.hosts import base_url_for, resolve_base_url
from app.exact.odata import odata_datetime, odata_guid, odata_string
from app.exact.ratelimit import DivisionRateLimiter
from app.exact.tokens import OAuthApp, StoredToken, TokenManager, TokenStore, authorize_url

__all__ = [
    "ConnectionRef",
    "DivisionRateLimiter",
    "ExactAuthError",
    "ExactClient",
    "ExactError",
    "ExactHTTPError",
    "ExactNotFound",
    "ExactRateLimited",
    "ExactServerUnavailable",
    "ExactSession",
    "ExactTransportError",
    "ExactValidationError",
    "NeedsConsent",
    "OAuthApp",
    "Page",
    "RateBudgetExhausted",
    "StoredToken",
    "TokenLockTimeout",
    "TokenManager",
    "TokenStore",
    "authorize_url",
    "base_url_for",
    "dumps",
    "loads",
    "odata_datetime",
    "odata_guid",
    "odata_string",
    "parse_exact_date",
    "resolve_base_url",
]
