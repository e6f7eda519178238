"""The async Exact Online REST client.

``ExactClient`` is created once per process around the shared ``httpx.AsyncClient``, the
``TokenManager`` and the ``DivisionRateLimiter``. Work is done through an ``ExactSession``,
a cheap per-(connection, division) view that also counts the HTTP calls it made::

    session = client.for_division(conn, division)
    accounts = await session.get("crm/Accounts", {"$filter": f"Email eq {odata_string(email)}"})
    entry = await session.post("salesentry/SalesEntries", {...})
    session.calls  # → 2

Every call: reserve one call in the shared budget (``RateBudgetExhausted`` propagates:
defer the job), get a bearer token, send, feed the ``X-RateLimit-*`` headers back to the
limiter. A 401 triggers one forced token refresh and one retry. There is no retry loop for
anything else: errors are raised (see ``app.exact.errors``) and the job layer decides, so no
worker slot is held while waiting.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx
import structlog

from app.exact import metrics
from app.exact.encoding import dumps, loads
from app.exact.errors import (
    ExactAuthError,
    ExactError,
    ExactHTTPError,
    ExactNotFound,
    ExactRateLimited,
    ExactServerUnavailable,
    ExactTransportError,
    ExactValidationError,
)
from app.exact.hosts import me_url, normalize_base_url, rest_url
from app.exact.metrics import CallEvent
from app.exact.odata import build_query, error_message, next_link, unwrap_entity, unwrap_results
from app.exact.ratelimit import DivisionRateLimiter
from app.exact.retry_after import retry_after_ms
from app.exact.tokens import OAuthApp, TokenManager

log = structlog.get_logger("app.exact.client")

DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=5.0)
ME_SELECT = "CurrentDivision,UserID,UserName,FullName,Email"

Params = Mapping[str, Any] | None


@dataclass(frozen=True)
class ConnectionRef:
    """Which Exact connection (token chain) to use: our id, its host, its app registration."""

    id: int
    base_url: str
    app: OAuthApp


@dataclass(frozen=True)
class Page:
    items: list[dict[str, Any]]
    next_url: str | None


class ExactClient:
    """Process-wide entry point; hand out sessions with ``for_division``."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        tokens: TokenManager,
        limiter: DivisionRateLimiter,
        *,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        on_call: Callable[[CallEvent], None] | None = metrics.record_call,
    ) -> None:
        self.http = http
        self.tokens = tokens
        self.limiter = limiter
        self.timeout = timeout
        self.on_call = on_call

    def for_division(self, conn: ConnectionRef, division: int) -> ExactSession:
        return ExactSession(self, conn, division)

    def for_connection(self, conn: ConnectionRef) -> ExactSession:
        """A session without a division: only ``me()`` works (to discover divisions)."""
        return ExactSession(self, conn, None)


class ExactSession:
    """Calls for one connection and division. ``calls`` counts the HTTP requests sent."""

    def __init__(self, client: ExactClient, conn: ConnectionRef, division: int | None) -> None:
        self._client = client
        self.conn = conn
        self.division = division
        self.base_url = normalize_base_url(conn.base_url)
        self.calls = 0
        self.rate_limited = 0

    # ------------------------------------------------------------------ reading

    async def get_page(self, path: str, params: Params = None) -> Page:
        """One page of a GET: its records and the ``__next`` link, if any."""
        payload = await self._json("GET", self._url(path), params=params)
        return Page(unwrap_results(payload), next_link(payload))

    async def get(self, path: str, params: Params = None) -> list[dict[str, Any]]:
        """The records of one GET (one page at most; see ``get_all``)."""
        return (await self.get_page(path, params)).items

    async def iter_all(self, path: str, params: Params = None) -> AsyncIterator[dict[str, Any]]:
        """Every record, following ``d.__next`` one page after the other (never in parallel)."""
        page = await self.get_page(path, params)
        while True:
            for item in page.items:
                yield item
            if page.next_url is None:
                return
            payload = await self._json("GET", self._same_host(page.next_url))
            page = Page(unwrap_results(payload), next_link(payload))

    async def get_all(
        self, path: str, params: Params = None, *, max_items: int | None = None
    ) -> list[dict[str, Any]]:
        """All records of a GET across pages (stops early once ``max_items`` are collected)."""
        items: list[dict[str, Any]] = []
        async for item in self.iter_all(path, params):
            items.append(item)
            if max_items is not None and len(items) >= max_items:
                break
        return items

    async def get_one(self, path: str, params: Params = None) -> dict[str, Any] | None:
        """The first record of a GET, or None. Pass ``$top=1`` or a key path to keep it cheap."""
        items = await self.get(path, params)
        return items[0] if items else None

    async def me(self, select: str | None = ME_SELECT) -> dict[str, Any]:
        """``current/Me``: the authorized user, with ``CurrentDivision``."""
        params = {"$select": select} if select else None
        payload = await self._json("GET", me_url(self.base_url), params=params)
        return unwrap_entity(payload)

    # ------------------------------------------------------------------ writing

    async def post(self, path: str, json: Any) -> dict[str, Any]:
        """Create; Exact answers 201 with ``{"d": {...}}``, returned unwrapped."""
        payload = await self._json("POST", self._url(path), body=dumps(json))
        return unwrap_entity(payload) if payload else {}

    async def put(self, path: str, json: Any) -> None:
        """Update (Exact answers with an empty body)."""
        await self._json("PUT", self._url(path), body=dumps(json))

    async def delete(self, path: str) -> None:
        await self._json("DELETE", self._url(path))

    # ------------------------------------------------------------------ machinery

    def _url(self, path: str) -> str:
        if self.division is None:
            raise ValueError("this session has no division; use client.for_division(...)")
        return rest_url(self.base_url, self.division, path)

    def _same_host(self, link: str) -> str:
        absolute = urljoin(self.base_url + "/", link)
        ours, theirs = urlsplit(self.base_url), urlsplit(absolute)
        if (ours.scheme, ours.netloc) != (theirs.scheme, theirs.netloc):
            # Never send the bearer token anywhere but the connection's own host.
            raise ExactError(f"refusing to follow a __next link to another host: {theirs.netloc}")
        return absolute

    async def _json(
        self, method: str, url: str, *, params: Params = None, body: bytes | None = None
    ) -> Any:
        response = await self._request(method, url, params=params, body=body)
        if not response.content:
            return None
        try:
            return loads(response.content)
        except ValueError as exc:
            raise ExactHTTPError(
                response.status_code,
                "Exact answered with something that is not JSON",
                response.text[:2000],
                headers=response.headers,
                outcome_unknown=method != "GET",
            ) from exc

    async def _request(
        self, method: str, url: str, *, params: Params = None, body: bytes | None = None
    ) -> httpx.Response:
        client = self._client
        query = build_query(params)
        if query:
            url = f"{url}{'&' if '?' in url else '?'}{query}"

        await self._reserve()
        token = await client.tokens.access_token(self.conn.id, self.base_url, self.conn.app)
        response = await self._send(method, url, token, body)
        if response.status_code == 401:
            log.info(
                "exact.unexpected_401",
                connection_id=self.conn.id,
                division=self.division,
                reason=response.headers.get("Reason"),
            )
            token = await client.tokens.force_refresh(
                self.conn.id, self.base_url, self.conn.app, token
            )
            await self._reserve()
            response = await self._send(method, url, token, body)
        if response.is_success:
            return response
        raise await self._error(method, response)

    async def _reserve(self) -> None:
        if self.division is not None:
            await self._client.limiter.acquire(self.conn.app.client_id, self.division)

    async def _send(self, method: str, url: str, token: str, body: bytes | None) -> httpx.Response:
        client = self._client
        headers = {
            "Authorization": f"Bearer {token}",
            "Accept": "application/json",
            "Content-Type": "application/json",
        }
        self.calls += 1
        started = time.monotonic()
        try:
            response = await client.http.request(
                method, url, content=body, headers=headers, timeout=client.timeout
            )
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            self._record(method, "error", started)
            raise ExactTransportError(
                f"could not connect to Exact ({type(exc).__name__}); the request was not sent",
                outcome_unknown=False,
            ) from exc
        except httpx.TimeoutException as exc:
            self._record(method, "timeout", started)
            raise ExactTransportError(
                f"Exact did not answer in time ({type(exc).__name__}); the outcome is unknown"
            ) from exc
        except httpx.TransportError as exc:
            self._record(method, "error", started)
            raise ExactTransportError(
                f"the connection to Exact failed ({type(exc).__name__}); the outcome is unknown"
            ) from exc
        self._record(method, str(response.status_code), started)
        if self.division is not None and response.status_code != 429:
            await client.limiter.observe(
                self.conn.app.client_id, self.division, response.headers
            )
        return response

    def _record(self, method: str, status: str, started: float) -> None:
        hook = self._client.on_call
        if hook is None:
            return
        try:
            hook(CallEvent(self.division, method, status, time.monotonic() - started))
        except Exception:  # a metrics hook must never break a booking
            log.exception("exact.metrics_hook_failed")

    async def _error(self, method: str, response: httpx.Response) -> ExactError:
        status = response.status_code
        headers = response.headers
        try:
            body: Any = loads(response.content) if response.content else None
        except ValueError:
            body = response.text[:2000]
        text = error_message(body)
        reason = headers.get("Reason")
        now_ms = int(time.time() * 1000)

        if status == 429:
            self.rate_limited += 1
            if self.division is not None:
                reset = await self._client.limiter.on_429(
                    self.conn.app.client_id, self.division, headers
                )
            else:
                reset = retry_after_ms(headers, now_ms) or (now_ms // 60_000 + 1) * 60_000
            log.warning("exact.rate_limited", connection_id=self.conn.id, division=self.division)
            return ExactRateLimited(
                text or "Exact rate limit reached", body, reset_at_ms=reset, headers=headers
            )
        if status == 400:
            return ExactValidationError(
                400, text or "Exact rejected the request as malformed", body, headers=headers
            )
        if status in (401, 403):
            what = "access token" if status == 401 else "request (no rights or scope)"
            return ExactAuthError(
                status,
                text or f"Exact refused the {what}" + (f": {reason}" if reason else ""),
                body,
                reason=reason,
                headers=headers,
            )
        if status == 404:
            return ExactNotFound(404, text or "not found in Exact", body, headers=headers)
        if status == 500 and text:
            # Exact's business validation ("Verplicht: …", "Ongeldige referentie: …").
            return ExactValidationError(500, text, body, headers=headers)
        if status >= 500:
            return ExactServerUnavailable(
                status,
                text or f"Exact is temporarily unavailable (HTTP {status})",
                body,
                headers=headers,
                retry_at_ms=retry_after_ms(headers, now_ms),
            )
        return ExactHTTPError(
            status, text or f"Exact answered HTTP {status}", body, headers=headers
        )
