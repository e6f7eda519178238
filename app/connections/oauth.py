"""The OAuth ``state`` parameter: which connection a consent belongs to, signed and short-lived.

The state travels through the user's browser to Exact and back to our callback, so it must
not be forgeable (else anyone could attach their Exact tokens to someone else's connection)
and must not live long. Format::

    <payload>.<mac>     payload = base64url(JSON {"c": connection id, "t": issued (unix s), "n": nonce})
                        mac     = base64url(HMAC-SHA256(key, payload)), key derived from KOPPEL_SECRET_KEY

It deliberately is not bound to a browser cookie: an accounting firm often sends the authorize
link to the client who owns the Exact login, and that person's browser never saw ours.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time

STATE_MAX_AGE_SECONDS = 600  # ten minutes from the authorize redirect to the callback
_CLOCK_SKEW_SECONDS = 60


class BadState(Exception):
    """The state is missing, malformed, forged or expired. ``code`` is stable for clients."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _key(secret_key: str) -> bytes:
    # A key of its own, so a state MAC can never be confused with any other use of the secret.
    return hashlib.sha256(b"koppel-oauth-state\x00" + secret_key.encode()).digest()


def _mac(secret_key: str, payload: str) -> str:
    return _b64(hmac.new(_key(secret_key), payload.encode("ascii"), hashlib.sha256).digest())


def sign_state(secret_key: str, connection_id: int, *, now: float | None = None) -> str:
    issued = int(time.time() if now is None else now)
    body = json.dumps({"c": connection_id, "t": issued, "n": secrets.token_urlsafe(9)}, separators=(",", ":"))
    payload = _b64(body.encode())
    return f"{payload}.{_mac(secret_key, payload)}"


def read_state(secret_key: str, state: str | None, *, now: float | None = None,
               max_age: float = STATE_MAX_AGE_SECONDS) -> int:
    """The connection id the state names; raises ``BadState`` for anything else."""
    if not state:
        raise BadState("invalid_state", "the callback has no state parameter; start again from the authorize link")
    payload, dot, mac = state.partition(".")
    if not dot or not payload or not mac or len(state) > 1000:
        raise BadState("invalid_state", "the state parameter is not one Koppel issued")
    if not hmac.compare_digest(mac, _mac(secret_key, payload)):
        raise BadState("invalid_state", "the state parameter is not one Koppel issued (its signature is wrong)")
    try:
        data = json.loads(_unb64(payload))
        connection_id, issued = int(data["c"]), int(data["t"])
    except (ValueError, KeyError, TypeError) as exc:
        raise BadState("invalid_state", "the state parameter is not one Koppel issued") from exc
    current = time.time() if now is None else now
    if issued > current + _CLOCK_SKEW_SECONDS or current - issued > max_age:
        minutes = int(max_age // 60)
        raise BadState("state_expired", f"this authorization link has expired (they are valid for {minutes} "
                                        "minutes); start again from the authorize link")
    return connection_id
