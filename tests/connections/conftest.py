from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from app.sandbox import SandboxState
from tests.booking.harness import sandbox_http


@pytest.fixture
def sandbox() -> SandboxState:
    return SandboxState()


@pytest.fixture
async def sandbox_client(sandbox: SandboxState) -> AsyncIterator[httpx.AsyncClient]:
    async with sandbox_http(sandbox) as client:
        yield client
