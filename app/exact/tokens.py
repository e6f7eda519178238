"""Exact Online OAuth2 tokens, shared safely by every process.

Exact's rules (see shared/reference/exact-online.md §1) drive the design:

* an access token lives 600 s and may only be refreshed in its last 30 s
  (earlier → ``TooEarlyToRefreshTokens``), so we refresh exactly then and never sooner;
* the refresh token rotates on every refresh and the old one dies, so two processes refreshing
  at once kill the connection ("Old refresh token used"). All refreshes therefore run under one
  Redis lock per connection (``koppel:exact:token-lock:<connection_id>``), the stored token is
  reloaded inside the lock, and the rotated token is saved (durably) before anyone uses it;
* a dead refresh token cannot be repaired by code: the connection is marked and the caller gets
  ``NeedsConsent``.

OAuth2 request bodies and the authorize URL are built with authlib; all HTTP goes through the
one shared ``httpx.AsyncClient`` of the process. Tokens and secrets are never logged.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from urllib.parse import unquote

import httpx
import redis.asyncio as aioredis
import structlog
from authlib.oauth2.rfc6749 import OAuth2Token
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri, prepare_token_request
from redis.exceptions import LockError

from app.exact import metrics
from app.exact.errors import (
    ExactAuthError,
    ExactRateLimited,
    ExactServerUnavailable,
    ExactTransportError,
    NeedsConsent,
    TokenLockTimeout,
)
from app.exact.hosts import authorize_endpoint, token_endpoint
from app.exact.retry_after import retry_after_ms

log = structlog.get_logger("app.exact.tokens")

LOCK_KEY = "koppel:exact:token-lock:{connection_id}"
DEFAULT_EXPIRES_IN = 600  # seconds; what Exact documents when a response omits it
TOO_EARLY_REASON = "TooEarlyToRefreshTokens"


@dataclass(frozen=True)
class StoredToken:
    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    expires_at: datetime  # UTC-aware


class TokenStore(Protocol):
    async def load(self, connection_id: int) -> StoredToken | None: ...

    async def save(self, connection_id: int, token: StoredToken) -> None:
        """Must be durable (committed) when it returns."""
        ...

    async def mark_needs_consent(self, connection_id: int, reason: str) -> None: ...


@dataclass(frozen=True)
class OAuthApp:
    """The Exact App Center registration a connection was authorized with."""

    client_id: str
    client_secret: str = field(repr=False)
    redirect_uri: str


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _seconds(value: float | timedelta) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


class TokenManager:
    """Hands out valid access tokens; refreshes under a cross-process lock when needed."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        redis: aioredis.Redis,
        store: TokenStore,
        *,
        clock: Callable[[], datetime] = _utcnow,
        refresh_margin: float | timedelta = 30.0,
        lock_timeout: float | timedelta = 60.0,
        lock_wait: float | timedelta | None = None,
        request_timeout: float = 20.0,
    ) -> None:
        self._http = http
        self._redis = redis
        self._store = store
        self._clock = clock
        self._margin = timedelta(seconds=_seconds(refresh_margin))
        self._lock_timeout = _seconds(lock_timeout)
        # How long a caller waits for another process's refresh before giving up (retryable).
        self._lock_wait = _seconds(lock_wait) if lock_wait is not None else self._lock_timeout / 2
        # Must stay well below lock_timeout: the lock may not expire while we refresh.
        self._request_timeout = min(request_timeout, self._lock_timeout / 2)
        self._local_locks: dict[int, asyncio.Lock] = {}
        # The last token this process loaded or saved per connection. An access token stays
        # valid until its own expiry even after another process refreshed, so a fresh one is
        # used without a database read and two decryptions per Exact call; a 401 goes
        # through force_refresh, which always reloads.
        self._known: dict[int, StoredToken] = {}

    # ------------------------------------------------------------------ public API

    def authorize_url(
        self, base_url: str, app: OAuthApp, state: str, force_login: bool = True
    ) -> str:
        """The URL to send a user to for consent (authorization code grant)."""
        return authorize_url(base_url, app, state, force_login=force_login)

    async def access_token(self, connection_id: int, base_url: str, app: OAuthApp) -> str:
        """A usable access token; refreshes only inside the last ``refresh_margin`` of its life."""
        known = self._known.get(connection_id)
        if known is not None and self._fresh(known):
            return known.access_token
        token = await self._store.load(connection_id)
        if token is not None and self._fresh(token):
            self._known[connection_id] = token
            return token.access_token
        async with self._locked(connection_id):
            token = await self._load_or_consent(connection_id)
            if self._fresh(token):
                metrics.record_refresh(metrics.REFRESH_REUSED)
                return token.access_token
            return (await self._refresh(connection_id, base_url, app, token)).access_token

    async def force_refresh(
        self, connection_id: int, base_url: str, app: OAuthApp, seen_access_token: str
    ) -> str:
        """After an unexpected 401 with ``seen_access_token``: refresh unless another process
        already did (then its newer token is returned)."""
        async with self._locked(connection_id):
            token = await self._load_or_consent(connection_id)
            if token.access_token != seen_access_token and self._fresh(token):
                metrics.record_refresh(metrics.REFRESH_REUSED)
                return token.access_token
            return (await self._refresh(connection_id, base_url, app, token)).access_token

    async def exchange_code(self, base_url: str, app: OAuthApp, code: str) -> StoredToken:
        """Trade the authorization code from the OAuth callback for a first token pair.

        The caller stores the result (``TokenStore.save``) at once: the code is single-use.
        """
        if "%" in code:
            code = unquote(code)  # Exact's codes arrive URL-encoded (%21 → !)
        body = prepare_token_request(
            "authorization_code",
            code=code,
            redirect_uri=app.redirect_uri,
            client_id=app.client_id,
            client_secret=app.client_secret,
        )
        response, payload = await self._post_token(base_url, body)
        token = self._parse_token(payload)
        if response.is_success and token is not None:
            log.info("exact.token.code_exchanged", client_id=app.client_id)
            return token
        self._raise_for_token_response(response, payload, during="authorization code exchange")
        raise ExactAuthError(response.status_code, "token response without tokens", payload)

    # ------------------------------------------------------------------ internals

    def _fresh(self, token: StoredToken) -> bool:
        return token.expires_at - self._clock() > self._margin

    async def _load_or_consent(self, connection_id: int) -> StoredToken:
        token = await self._store.load(connection_id)
        if token is None:
            self._known.pop(connection_id, None)
            reason = "no token stored for this connection"
            await self._store.mark_needs_consent(connection_id, reason)
            raise NeedsConsent(connection_id, reason)
        self._known[connection_id] = token
        return token

    @asynccontextmanager
    async def _locked(self, connection_id: int) -> AsyncIterator[None]:
        # The local lock keeps this process's coroutines from all polling Redis at once;
        # the Redis lock is the one that matters across processes.
        local = self._local_locks.setdefault(connection_id, asyncio.Lock())
        async with local:
            lock = self._redis.lock(
                LOCK_KEY.format(connection_id=connection_id),
                timeout=self._lock_timeout,
                blocking_timeout=self._lock_wait,
                sleep=0.05,
                thread_local=False,
            )
            if not await lock.acquire():
                log.warning("exact.token.lock_timeout", connection_id=connection_id)
                raise TokenLockTimeout(connection_id)
            try:
                yield
            finally:
                try:
                    await lock.release()
                except LockError:
                    log.warning("exact.token.lock_expired_before_release", connection_id=connection_id)

    async def _refresh(
        self, connection_id: int, base_url: str, app: OAuthApp, current: StoredToken
    ) -> StoredToken:
        body = prepare_token_request(
            "refresh_token",
            refresh_token=current.refresh_token,
            client_id=app.client_id,
            client_secret=app.client_secret,
        )
        try:
            response, payload = await self._post_token(base_url, body)
        except ExactTransportError:
            metrics.record_refresh(metrics.REFRESH_ERROR)
            log.warning("exact.token.refresh_transport_error", connection_id=connection_id)
            raise
        token = self._parse_token(payload, fallback=current)
        if token is not None and token != current:
            # Whatever came back is now the live token pair, even on a 4xx (GH#559): persist
            # it before anything else can happen to it.
            await self._save(connection_id, token)
            if token.access_token != current.access_token:
                metrics.record_refresh(metrics.REFRESH_OK)
                log.info(
                    "exact.token.refreshed",
                    connection_id=connection_id,
                    status=response.status_code,
                )
                return token
        try:
            self._raise_for_token_response(
                response, payload, during="token refresh", connection_id=connection_id, current=current
            )
            raise ExactAuthError(
                response.status_code, "token refresh returned no new tokens", _safe_body(payload)
            )
        except NeedsConsent as exc:
            metrics.record_refresh(metrics.REFRESH_NEEDS_CONSENT)
            log.error(
                "exact.token.needs_consent", connection_id=connection_id, status=response.status_code
            )
            await self._store.mark_needs_consent(connection_id, exc.reason)
            raise
        except ExactAuthError as exc:
            outcome = metrics.REFRESH_TOO_EARLY if exc.reason == TOO_EARLY_REASON else metrics.REFRESH_ERROR
            metrics.record_refresh(outcome)
            log.warning(
                "exact.token.refresh_refused",
                connection_id=connection_id,
                status=response.status_code,
                reason=exc.reason,
            )
            raise
        except Exception:
            metrics.record_refresh(metrics.REFRESH_ERROR)
            log.warning(
                "exact.token.refresh_failed", connection_id=connection_id, status=response.status_code
            )
            raise

    async def _save(self, connection_id: int, token: StoredToken) -> None:
        try:
            await self._store.save(connection_id, token)
            self._known[connection_id] = token
        except Exception:
            # The rotated refresh token exists only in memory now. Not using it keeps the
            # stored (older) one valid in Invantive's reading; either way a human must look.
            log.critical("exact.token.persist_failed", connection_id=connection_id)
            raise

    async def _post_token(self, base_url: str, body: str) -> tuple[httpx.Response, dict[str, Any]]:
        try:
            response = await self._http.post(
                token_endpoint(base_url),
                content=body.encode("ascii"),
                headers={
                    "Content-Type": "application/x-www-form-urlencoded",
                    "Accept": "application/json",
                },
                timeout=self._request_timeout,
            )
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise ExactTransportError(
                f"could not connect to the Exact token endpoint ({type(exc).__name__})",
                outcome_unknown=False,
            ) from exc
        except httpx.TransportError as exc:
            raise ExactTransportError(
                f"no answer from the Exact token endpoint ({type(exc).__name__})"
            ) from exc
        try:
            payload = response.json()
        except ValueError:
            payload = {}
        return response, payload if isinstance(payload, dict) else {}

    def _parse_token(
        self, payload: dict[str, Any], fallback: StoredToken | None = None
    ) -> StoredToken | None:
        """A StoredToken from a token response; ``None`` if it holds no refresh token.

        A refresh answer with an access token but no refresh token keeps the current one.

        A response with only a refresh token (seen on refused refreshes) keeps the fallback's
        access token and expiry, so the new refresh token can still be persisted.
        """
        refresh = payload.get("refresh_token")
        access = payload.get("access_token")
        if (not isinstance(refresh, str) or not refresh) and fallback is not None and access:
            refresh = fallback.refresh_token  # an app with refresh-token reuse enabled
        if not isinstance(refresh, str) or not refresh:
            return None
        if isinstance(access, str) and access:
            expires_in = _int_or(payload.get("expires_in"), DEFAULT_EXPIRES_IN)
            try:
                parsed = OAuth2Token.from_dict(
                    {"access_token": access, "refresh_token": refresh, "expires_in": expires_in}
                )
            except (TypeError, ValueError):
                return None
            # Expiry counts from receipt: later than Exact's issue time, so a refresh at
            # "expires_at - 30 s" never lands before Exact's 9:30 min mark.
            return StoredToken(
                access_token=parsed["access_token"],
                refresh_token=parsed["refresh_token"],
                expires_at=self._clock() + timedelta(seconds=int(parsed["expires_in"])),
            )
        if fallback is None:
            return None
        return StoredToken(
            access_token=fallback.access_token, refresh_token=refresh, expires_at=fallback.expires_at
        )

    def _raise_for_token_response(
        self,
        response: httpx.Response,
        payload: dict[str, Any],
        *,
        during: str,
        connection_id: int | None = None,
        current: StoredToken | None = None,
    ) -> None:
        status = response.status_code
        reason = response.headers.get("Reason")
        error = str(payload.get("error") or "")
        description = str(payload.get("error_description") or "")
        lowered = description.lower()
        body = _safe_body(payload)
        now_ms = int(self._clock().timestamp() * 1000)

        if reason == TOO_EARLY_REASON or "not expired" in lowered:
            retry_at = now_ms + 10_000
            if current is not None:
                window_opens = int((current.expires_at - self._margin).timestamp() * 1000)
                retry_at = max(retry_at, window_opens)
            raise ExactAuthError(
                status,
                "Exact refused the refresh: the current access token has not expired yet",
                body,
                reason=TOO_EARLY_REASON,
                headers=response.headers,
                retryable=True,
                retry_at_ms=retry_at,
            )
        if connection_id is not None and status in (400, 401):
            dead = (
                "old refresh token used" in lowered
                or error == "invalid_grant"
                or (error == "invalid_request" and "refresh token" in lowered and "expired" in lowered)
            )
            if dead:
                raise NeedsConsent(connection_id, description or error or f"HTTP {status}")
        if status == 429:
            raise ExactRateLimited(
                "Exact's token endpoint is rate limited",
                body,
                reset_at_ms=retry_after_ms(response.headers, now_ms) or now_ms + 60_000,
                headers=response.headers,
            )
        if status >= 500:
            raise ExactServerUnavailable(
                status,
                f"Exact's token endpoint failed during {during}",
                body,
                headers=response.headers,
                retry_at_ms=retry_after_ms(response.headers, now_ms),
            )
        if not response.is_success:
            raise ExactAuthError(
                status,
                f"Exact refused the {during}: {description or error or 'no reason given'}",
                body,
                reason=reason,
                headers=response.headers,
            )


def authorize_url(base_url: str, app: OAuthApp, state: str, force_login: bool = True) -> str:
    """``{base}/api/oauth2/auth?response_type=code&client_id=…&redirect_uri=…&state=…``."""
    extra: dict[str, Any] = {"force_login": 1} if force_login else {}
    return prepare_grant_uri(
        authorize_endpoint(base_url),
        app.client_id,
        "code",
        redirect_uri=app.redirect_uri,
        state=state,
        **extra,
    )


def _int_or(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _safe_body(payload: dict[str, Any]) -> dict[str, Any]:
    """An error body fit for exceptions and logs: tokens removed."""
    return {k: v for k, v in payload.items() if k not in ("access_token", "refresh_token")}
