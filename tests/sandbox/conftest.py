"""Fixtures for the sandbox suite: a seeded state on a pinned clock, and an in-process client."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from app.sandbox import SandboxClock, SandboxState, create_sandbox_app
from tests.sandbox.support import T0, bearer


@pytest.fixture
def clock() -> SandboxClock:
    clock = SandboxClock()
    clock.set(T0)
    return clock


@pytest.fixture
def state(clock: SandboxClock) -> SandboxState:
    return SandboxState(clock=clock)


@pytest.fixture
async def client(state: SandboxState) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_sandbox_app(state))
    async with httpx.AsyncClient(transport=transport, base_url="http://sandbox") as http:
        yield http


@pytest.fixture
def tokens(state: SandboxState) -> dict:
    """A fresh token chain for the default user and the seeded client."""
    return state.issue_tokens()


@pytest.fixture
def auth(tokens: dict) -> dict[str, str]:
    return bearer(tokens["access_token"])
