"""Encryption at rest for Exact tokens and webhook secrets (Fernet: AES-CBC + HMAC)."""

from __future__ import annotations

import base64
import hashlib
import secrets
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken


@lru_cache(maxsize=8)
def _fernet(secret_key: str) -> Fernet:
    # Fernet wants 32 url-safe-base64 bytes; derive them from the configured secret.
    digest = hashlib.sha256(b"koppel-at-rest:" + secret_key.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def encrypt(secret_key: str, plaintext: str) -> str:
    return _fernet(secret_key).encrypt(plaintext.encode()).decode()


def decrypt(secret_key: str, ciphertext: str) -> str:
    try:
        return _fernet(secret_key).decrypt(ciphertext.encode()).decode()
    except InvalidToken as exc:
        raise ValueError("cannot decrypt: KOPPEL_SECRET_KEY differs from the one that encrypted it") from exc


def new_webhook_secret() -> str:
    """A Standard Webhooks secret: `whsec_` + base64 of 24 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def new_token(nbytes: int = 32) -> str:
    return secrets.token_urlsafe(nbytes)
