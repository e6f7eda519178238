"""The dashboard's browser session: one signed, http-only cookie, and its CSRF token.

The cookie carries a small JSON payload and an HMAC-SHA256 over it, keyed from
KOPPEL_SECRET_KEY (with a purpose label, so the key differs from the one that encrypts data
at rest). The payload holds

* `csrf`: a random token for this session; every POST must echo it in a hidden form field;
* `key`: the signed-in API key, Fernet-encrypted (app.crypto) — never the plain key;
* `iat` / `exp`: issue and expiry time (Unix seconds).

A visitor who has not signed in gets a session without `key`, so that the sign-in form is
CSRF-protected too. Every request re-authenticates the decrypted key with
`app.tenancy.auth.authenticate`, so a revoked key ends the session at once.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response

from app import crypto

COOKIE_NAME = "koppel_session"
COOKIE_PATH = "/dashboard"
LIFETIME_SECONDS = 12 * 3600
CSRF_FIELD = "csrf_token"
_VERSION = 1


@dataclass(frozen=True)
class BrowserSession:
    csrf: str
    key_enc: str | None
    issued_at: int
    expires_at: int

    @property
    def signed_in(self) -> bool:
        return self.key_enc is not None


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac_key(secret_key: str) -> bytes:
    return hashlib.sha256(b"koppel-dashboard-session:" + secret_key.encode()).digest()


def _mac(secret_key: str, payload: str) -> str:
    return _b64(hmac.new(_mac_key(secret_key), payload.encode(), hashlib.sha256).digest())


def new_session(secret_key: str, api_key: str | None = None, *, now: float | None = None) -> BrowserSession:
    issued = int(time.time() if now is None else now)
    return BrowserSession(
        csrf=secrets.token_urlsafe(32),
        key_enc=crypto.encrypt(secret_key, api_key) if api_key is not None else None,
        issued_at=issued,
        expires_at=issued + LIFETIME_SECONDS,
    )


def encode(secret_key: str, session: BrowserSession) -> str:
    body = {"v": _VERSION, "csrf": session.csrf, "iat": session.issued_at, "exp": session.expires_at}
    if session.key_enc is not None:
        body["key"] = session.key_enc
    payload = _b64(json.dumps(body, separators=(",", ":")).encode())
    return f"{payload}.{_mac(secret_key, payload)}"


def decode(secret_key: str, value: str | None, *, now: float | None = None) -> BrowserSession | None:
    """The session in a cookie value, or None when it is missing, forged, altered or expired."""
    if not value or value.count(".") != 1:
        return None
    payload, mac = value.split(".")
    if not hmac.compare_digest(mac, _mac(secret_key, payload)):
        return None
    try:
        body = json.loads(_unb64(payload))
        session = BrowserSession(csrf=str(body["csrf"]), key_enc=body.get("key"),
                                 issued_at=int(body["iat"]), expires_at=int(body["exp"]))
    except (ValueError, KeyError, TypeError, binascii.Error):
        return None
    if body.get("v") != _VERSION or (time.time() if now is None else now) >= session.expires_at:
        return None
    return session


def api_key(secret_key: str, session: BrowserSession) -> str | None:
    """The plain API key of a signed-in session (server side only)."""
    if session.key_enc is None:
        return None
    try:
        return crypto.decrypt(secret_key, session.key_enc)
    except ValueError:
        return None


def read(request: Request, secret_key: str) -> BrowserSession | None:
    return decode(secret_key, request.cookies.get(COOKIE_NAME))


def is_https(request: Request) -> bool:
    # Behind a proxy, uvicorn's proxy_headers turns X-Forwarded-Proto into the scheme.
    return request.url.scheme == "https"


def write(response: Response, request: Request, secret_key: str, session: BrowserSession) -> None:
    response.set_cookie(
        COOKIE_NAME, encode(secret_key, session), max_age=max(0, session.expires_at - int(time.time())),
        path=COOKIE_PATH, httponly=True, samesite="strict", secure=is_https(request),
    )


def clear(response: Response, request: Request) -> None:
    response.delete_cookie(COOKIE_NAME, path=COOKIE_PATH, httponly=True, samesite="strict",
                           secure=is_https(request))


def csrf_ok(request: Request, session: BrowserSession | None, submitted: object) -> bool:
    """The form's token equals the session's, and the browser does not call it cross-site."""
    if session is None or not isinstance(submitted, str) or not submitted:
        return False
    if request.headers.get("sec-fetch-site") == "cross-site":
        return False
    origin = request.headers.get("origin")
    if origin and origin != "null":
        host = request.headers.get("host", "")
        if origin.split("://", 1)[-1] != host:
            return False
    return hmac.compare_digest(submitted.encode(), session.csrf.encode())
