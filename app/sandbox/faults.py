"""Injected faults, so tests can prove the client survives a misbehaving Exact.

A rule matches on method and a regex searched in the URL path, and then does one of:

* ``status`` (no ``after_work``): answer that status without doing the work;
* ``delay_seconds``: sleep (real time, ``asyncio.sleep``) and then proceed —
  combine with ``status`` to answer late, e.g. to trip a client timeout;
* ``after_work: true``: do the work (a sales entry really gets booked), then throw
  the answer away and send ``status`` (default 502). This is the nasty case a
  client must handle with a YourRef lookup instead of a blind retry.

``times`` counts down per matching request; ``None`` means forever. The admin API
under ``/sandbox/`` is never faulted, or a test could lock itself out.
"""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass, field
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send


@dataclass
class FaultRule:
    method: str = "*"
    path_regex: str = ".*"
    status: int | None = None
    delay_seconds: float = 0.0
    after_work: bool = False
    times: int | None = 1
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None
    rule_id: int = 0
    hits: int = 0

    def __post_init__(self) -> None:
        self._pattern = re.compile(self.path_regex)
        if self.status is not None and not 100 <= int(self.status) <= 599:
            raise ValueError("status must be an HTTP status code")
        if self.delay_seconds < 0:
            raise ValueError("delay_seconds must be >= 0")
        if self.times is not None and self.times < 1:
            raise ValueError("times must be >= 1 (or null for unlimited)")

    def matches(self, method: str, path: str) -> bool:
        return (self.method == "*" or self.method.upper() == method.upper()) and bool(self._pattern.search(path))

    def describe(self) -> dict:
        return {
            "id": self.rule_id,
            "method": self.method,
            "path_regex": self.path_regex,
            "status": self.status,
            "delay_seconds": self.delay_seconds,
            "after_work": self.after_work,
            "times": self.times,
            "hits": self.hits,
        }


@dataclass
class FaultBook:
    rules: list[FaultRule] = field(default_factory=list)
    served: int = 0
    last_id: int = 0

    def add(self, rule: FaultRule) -> FaultRule:
        self.last_id += 1
        rule.rule_id = self.last_id
        self.rules.append(rule)
        return rule

    def clear(self) -> None:
        self.rules.clear()

    def take(self, method: str, path: str) -> FaultRule | None:
        """First matching rule, with one use counted down (and dropped when spent)."""
        for rule in self.rules:
            if rule.matches(method, path):
                rule.hits += 1
                self.served += 1
                if rule.times is not None:
                    rule.times -= 1
                    if rule.times <= 0:
                        self.rules.remove(rule)
                return rule
        return None

    def snapshot(self) -> dict:
        return {"active": [rule.describe() for rule in self.rules], "served": self.served}


class FaultMiddleware:
    """Pure ASGI middleware (so an after-work response can be discarded cleanly)."""

    def __init__(self, app: ASGIApp, state: Any) -> None:
        self.app = app
        self.state = state  # read .faults per request: a reset may replace the book

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/sandbox/"):
            await self.app(scope, receive, send)
            return
        rule = self.state.faults.take(scope["method"], scope["path"])
        if rule is None:
            await self.app(scope, receive, send)
            return
        if rule.delay_seconds:
            await asyncio.sleep(rule.delay_seconds)
        if rule.after_work:
            async def discard(message: Message) -> None:
                return None

            await self.app(scope, receive, discard)
            await _send_fault(send, rule, rule.status or 502)
        elif rule.status is not None:
            await _send_fault(send, rule, rule.status)
        else:
            await self.app(scope, receive, send)


async def _send_fault(send: Send, rule: FaultRule, status: int) -> None:
    if isinstance(rule.body, str):
        payload, content_type = rule.body.encode(), "text/plain; charset=utf-8"
    else:
        body = rule.body if rule.body is not None else {
            "error": {"code": "", "message": {"lang": "", "value": f"Sandbox fault: injected HTTP {status}."}}
        }
        payload, content_type = json.dumps(body).encode(), "application/json"
    headers = [(b"content-type", content_type.encode()), (b"content-length", str(len(payload)).encode())]
    headers += [(k.lower().encode(), str(v).encode()) for k, v in rule.headers.items()]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
