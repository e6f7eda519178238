"""Exact Online sandbox: a faithful in-memory simulator of the Exact API Koppel uses.

Follows /work/shared/reference/exact-online.md (tokens, limits, envelopes, errors).
Start with ``create_sandbox_app()`` (ASGI app) or ``run(host, port)`` (uvicorn).
"""

from app.sandbox.app import create_sandbox_app
from app.sandbox.clock import SandboxClock
from app.sandbox.ratelimit import SandboxLimits
from app.sandbox.seed import (
    CLIENT_ID,
    CLIENT_SECRET,
    DEFAULT_DIVISION,
    DEFAULT_USER_EMAIL,
    DEFAULT_USER_ID,
    EXISTING_CUSTOMER_EMAIL,
    FOREIGN_DIVISION,
    OTHER_USER_EMAIL,
    OTHER_USER_ID,
    REDIRECT_URIS,
    SECOND_DIVISION,
    seed_guid,
)
from app.sandbox.server import run
from app.sandbox.state import SandboxState

__all__ = [
    "CLIENT_ID",
    "CLIENT_SECRET",
    "DEFAULT_DIVISION",
    "DEFAULT_USER_EMAIL",
    "DEFAULT_USER_ID",
    "EXISTING_CUSTOMER_EMAIL",
    "FOREIGN_DIVISION",
    "OTHER_USER_EMAIL",
    "OTHER_USER_ID",
    "REDIRECT_URIS",
    "SECOND_DIVISION",
    "SandboxClock",
    "SandboxLimits",
    "SandboxState",
    "create_sandbox_app",
    "run",
    "seed_guid",
]
