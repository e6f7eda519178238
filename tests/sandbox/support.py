"""Helpers shared by the sandbox tests (fixtures live in conftest.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx

from app.sandbox import DEFAULT_DIVISION, seed_guid

# One second past a whole minute: 60 calls in a row stay inside one rate-limit window.
T0 = datetime(2025, 3, 12, 10, 0, 1, tzinfo=UTC).timestamp()
DIV = DEFAULT_DIVISION


def bearer(access_token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {access_token}", "Accept": "application/json"}


def url(path: str, division: int = DIV) -> str:
    return f"/api/v1/{division}/{path}"


def gl(code: str, division: int = DIV) -> str:
    return seed_guid(division, "GLAccount", code)


def account_id(code: int, division: int = DIV) -> str:
    return seed_guid(division, "Account", str(code))


def item_id(code: str, division: int = DIV) -> str:
    return seed_guid(division, "Item", code)


def exact_error(response: httpx.Response) -> str:
    """The message of Exact's error envelope (asserting the envelope's shape on the way)."""
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == ""
    return body["error"]["message"]["value"]


def validation_error(response: httpx.Response) -> str:
    """A business-rule refusal: HTTP 500, Dutch message."""
    assert response.status_code == 500, response.text
    assert response.json()["error"]["message"]["lang"] == "nl-NL"
    return exact_error(response)
