"""Exact's OAuth2 token rules, without HTTP.

The rules that break real integrations, and that this module therefore enforces:

* authorization codes are single-use and live 3 minutes;
* access tokens live 600 s; a refresh is refused while the current access token of
  the chain has more than 30 s left (400 + ``Reason: TooEarlyToRefreshTokens``);
* refresh tokens are single-use and rotate; replaying one is a 401
  "Old refresh token used."; one idle for 30 days is dead (400 invalid_request);
* one chain per (Exact user, app): a new consent starts a new chain, and the first
  refresh on the new chain kills every older chain of that user and app;
* at most 200 token-endpoint calls per (app, user) per UTC day (429 beyond).

Decisions where the sources are silent (documented so client code does not come to
depend on them by accident):

* a too-early refresh does **not** consume the refresh token; the client may retry
  with the same one inside the window;
* a replayed refresh token does not kill the chain; the newest token keeps working;
* after a refresh the previous access token stays valid until its own expiry.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime

from app.sandbox.clock import SandboxClock
from app.sandbox.directory import OAuthClient, User
from app.sandbox.errors import OAuthError
from app.sandbox.ratelimit import DAY, SandboxLimits

ACCESS_TOKEN_SECONDS = 600
REFRESH_WINDOW_SECONDS = 30
CODE_SECONDS = 180
REFRESH_IDLE_SECONDS = 30 * DAY


@dataclass
class AuthCode:
    code: str
    client_id: str
    user_id: str
    redirect_uri: str
    issued_at: float
    used: bool = False


@dataclass
class TokenChain:
    chain_id: int
    client_id: str
    user_id: str
    created_at: float
    origin: str  # "authorization_code" | "issued" (admin shortcut)
    access_expires_at: float = 0.0
    refresh_token: str = ""
    activated: bool = False  # its refresh token has been used at least once
    revoked: bool = False
    revoked_reason: str | None = None
    refreshes: int = 0

    def summary(self) -> dict:
        return {
            "chain_id": self.chain_id,
            "client_id": self.client_id,
            "user_id": self.user_id,
            "origin": self.origin,
            "created_at": self.created_at,
            "access_expires_at": self.access_expires_at,
            "refreshes": self.refreshes,
            "activated": self.activated,
            "revoked": self.revoked,
            "revoked_reason": self.revoked_reason,
        }


@dataclass
class AccessToken:
    token: str
    chain_id: int
    client_id: str
    user_id: str
    expires_at: float


@dataclass
class RefreshToken:
    token: str
    chain_id: int
    issued_at: float
    expires_at: float
    used: bool = False


@dataclass
class TokenStats:
    token_calls: int = 0
    codes_issued: int = 0
    consents_denied: int = 0
    code_exchanges: int = 0
    chains_issued: int = 0  # chains minted via the admin shortcut
    refreshes: int = 0
    too_early: int = 0
    old_refresh_token_used: int = 0
    expired_refresh_token: int = 0
    invalid_grant: int = 0
    invalid_client: int = 0
    quota_exceeded: int = 0


def _exact_timestamp(epoch: float) -> str:
    """Exact prints times US-style in these messages: 10/11/2022 9:18:20 PM."""
    moment = datetime.fromtimestamp(epoch, tz=UTC)
    hour = moment.hour % 12 or 12
    meridiem = "AM" if moment.hour < 12 else "PM"
    return f"{moment.month}/{moment.day}/{moment.year} {hour}:{moment:%M:%S} {meridiem}"


@dataclass
class TokenService:
    clock: SandboxClock
    limits: SandboxLimits
    clients: dict[str, OAuthClient]
    users: dict[str, User]
    codes: dict[str, AuthCode] = field(default_factory=dict)
    chains: dict[int, TokenChain] = field(default_factory=dict)
    access_tokens: dict[str, AccessToken] = field(default_factory=dict)
    refresh_tokens: dict[str, RefreshToken] = field(default_factory=dict)
    calls: dict[tuple[str, str, int], int] = field(default_factory=dict)  # (client, user, day) -> n
    stats: TokenStats = field(default_factory=TokenStats)

    # -- consent -------------------------------------------------------------------------
    def issue_code(self, client_id: str, user_id: str, redirect_uri: str) -> str:
        # Exact's codes carry a '!' which must survive URL-encoding (%21) in the redirect.
        code = f"sbx{secrets.token_urlsafe(6)}!IAAAA{secrets.token_urlsafe(40)}"
        self.codes[code] = AuthCode(code, client_id, user_id, redirect_uri, self.clock.now())
        self.stats.codes_issued += 1
        return code

    # -- token endpoint ------------------------------------------------------------------
    def token_request(self, form: dict[str, str]) -> dict:
        """Handle one POST /api/oauth2/token; raises OAuthError for every refusal."""
        self.stats.token_calls += 1
        grant = form.get("grant_type", "")
        if grant == "authorization_code":
            return self._exchange_code(form)
        if grant == "refresh_token":
            return self._refresh(form)
        raise OAuthError(400, "unsupported_grant_type", f"The grant type '{grant}' is not supported.")

    def _client(self, form: dict[str, str]) -> OAuthClient:
        client = self.clients.get(form.get("client_id", ""))
        if client is None or not secrets.compare_digest(client.client_secret, form.get("client_secret", "")):
            self.stats.invalid_client += 1
            raise OAuthError(401, "invalid_client", "Client authentication failed.")
        return client

    def _count_call(self, client_id: str, user_id: str) -> None:
        key = (client_id, user_id, int(self.clock.now() // DAY))
        self.calls[key] = self.calls.get(key, 0) + 1
        if self.calls[key] > self.limits.token_daily:
            self.stats.quota_exceeded += 1
            raise OAuthError(
                429,
                "access_denied",
                f"Rate limit exceeded: more than {self.limits.token_daily} token requests today.",
            )

    def _invalid_grant(self, description: str) -> OAuthError:
        self.stats.invalid_grant += 1
        return OAuthError(400, "invalid_grant", description)

    def _exchange_code(self, form: dict[str, str]) -> dict:
        for name in ("code", "redirect_uri", "client_id", "client_secret"):
            if not form.get(name):
                raise OAuthError(400, "invalid_request", f"The parameter '{name}' is missing.")
        client = self._client(form)
        code = self.codes.get(form["code"])
        if code is None:
            raise self._invalid_grant("The authorization code is invalid.")
        self._count_call(client.client_id, code.user_id)
        if code.used:
            raise self._invalid_grant("The authorization code has already been used.")
        if self.clock.now() > code.issued_at + CODE_SECONDS:
            raise self._invalid_grant("The authorization code has expired.")
        if code.client_id != client.client_id or code.redirect_uri != form["redirect_uri"]:
            raise self._invalid_grant("The authorization code was issued to another client or redirect URI.")
        code.used = True
        self.stats.code_exchanges += 1
        return self._new_chain(client.client_id, code.user_id, "authorization_code")

    def _refresh(self, form: dict[str, str]) -> dict:
        for name in ("refresh_token", "client_id", "client_secret"):
            if not form.get(name):
                raise OAuthError(400, "invalid_request", f"The parameter '{name}' is missing.")
        client = self._client(form)
        presented = self.refresh_tokens.get(form["refresh_token"])
        if presented is None:
            raise self._invalid_grant("The refresh token is invalid.")
        chain = self.chains[presented.chain_id]
        if chain.client_id != client.client_id:
            raise self._invalid_grant("The refresh token was issued to another client.")
        self._count_call(chain.client_id, chain.user_id)
        now = self.clock.now()

        if presented.used or chain.revoked:
            self.stats.old_refresh_token_used += 1
            raise OAuthError(401, "unauthorized_client", "Old refresh token used.")
        if now > presented.expires_at:
            self.stats.expired_refresh_token += 1
            raise OAuthError(
                400,
                "invalid_request",
                f"The refresh token expired at {_exact_timestamp(presented.expires_at)} "
                f"and it is now {_exact_timestamp(now)}.",
            )
        if chain.access_expires_at - now > REFRESH_WINDOW_SECONDS:
            self.stats.too_early += 1
            raise OAuthError(
                400,
                "access_denied",
                "Rate limit exceeded: access_token not expired",
                headers={"Reason": "TooEarlyToRefreshTokens"},
            )

        presented.used = True
        chain.refreshes += 1
        self.stats.refreshes += 1
        if not chain.activated:
            chain.activated = True
            self._revoke_older_chains(chain)
        return self._mint(chain)

    # -- chains --------------------------------------------------------------------------
    def _new_chain(self, client_id: str, user_id: str, origin: str) -> dict:
        chain_id = max(self.chains, default=0) + 1
        chain = TokenChain(chain_id, client_id, user_id, self.clock.now(), origin)
        self.chains[chain_id] = chain
        return self._mint(chain)

    def _revoke_older_chains(self, chain: TokenChain) -> None:
        """Invantive: the first use of a new refresh token expires all earlier ones."""
        for other in self.chains.values():
            if (
                other.chain_id < chain.chain_id
                and other.client_id == chain.client_id
                and other.user_id == chain.user_id
                and not other.revoked
            ):
                other.revoked = True
                other.revoked_reason = f"superseded by chain {chain.chain_id}"

    def _mint(self, chain: TokenChain) -> dict:
        now = self.clock.now()
        access = AccessToken(
            f"sbx-at.{secrets.token_urlsafe(48)}",
            chain.chain_id,
            chain.client_id,
            chain.user_id,
            now + ACCESS_TOKEN_SECONDS,
        )
        refresh = RefreshToken(f"sbx-rt.{secrets.token_urlsafe(40)}", chain.chain_id, now, now + REFRESH_IDLE_SECONDS)
        self.access_tokens[access.token] = access
        self.refresh_tokens[refresh.token] = refresh
        chain.access_expires_at = access.expires_at
        chain.refresh_token = refresh.token
        return {
            "access_token": access.token,
            "token_type": "bearer",
            "expires_in": str(ACCESS_TOKEN_SECONDS),  # Exact sends a string
            "refresh_token": refresh.token,
        }

    def issue_chain(self, client_id: str, user_id: str) -> dict:
        """Admin shortcut: what a consent + code exchange would return, minus the browser."""
        if client_id not in self.clients:
            raise KeyError(f"unknown client {client_id}")
        if user_id not in self.users:
            raise KeyError(f"unknown user {user_id}")
        self.stats.chains_issued += 1
        return self._new_chain(client_id, user_id, "issued")

    def _select_chains(self, client_id: str | None, user_id: str | None, refresh_token: str | None) -> list[TokenChain]:
        if refresh_token:
            token = self.refresh_tokens.get(refresh_token)
            return [self.chains[token.chain_id]] if token else []
        return [
            chain
            for chain in self.chains.values()
            if (client_id is None or chain.client_id == client_id)
            and (user_id is None or chain.user_id == user_id)
            and not chain.revoked
        ]

    def expire_refresh(
        self, client_id: str | None = None, user_id: str | None = None, refresh_token: str | None = None
    ) -> int:
        """Age the live refresh tokens of matching chains past 30 idle days."""
        now = self.clock.now()
        count = 0
        for chain in self._select_chains(client_id, user_id, refresh_token):
            token = self.refresh_tokens.get(chain.refresh_token)
            if token is not None and not token.used:
                token.expires_at = now - 1
                token.issued_at = token.expires_at - REFRESH_IDLE_SECONDS
                count += 1
        return count

    def expire_access(
        self, client_id: str | None = None, user_id: str | None = None, refresh_token: str | None = None
    ) -> int:
        """End the access tokens of matching chains now (an early 401, no clock jump)."""
        now = self.clock.now()
        chain_ids = {chain.chain_id for chain in self._select_chains(client_id, user_id, refresh_token)}
        count = 0
        for access in self.access_tokens.values():
            if access.chain_id in chain_ids and access.expires_at > now:
                access.expires_at = now - 1
                count += 1
        for chain_id in chain_ids:
            self.chains[chain_id].access_expires_at = min(self.chains[chain_id].access_expires_at, now - 1)
        return count

    # -- REST side -----------------------------------------------------------------------
    def lookup_access(self, token: str) -> tuple[AccessToken | None, bool]:
        """(token record if known, whether it is valid right now)."""
        access = self.access_tokens.get(token)
        if access is None:
            return None, False
        chain = self.chains[access.chain_id]
        return access, not chain.revoked and self.clock.now() < access.expires_at

    def snapshot(self) -> dict:
        return {
            **self.stats.__dict__,
            "chains": [chain.summary() for chain in self.chains.values()],
            "calls_today": [
                {"client_id": c, "user_id": u, "calls": n}
                for (c, u, day), n in self.calls.items()
                if day == int(self.clock.now() // DAY)
            ],
        }
