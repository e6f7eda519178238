"""A controllable clock: every time-dependent rule of the sandbox reads from here.

Token lifetimes, code expiry, refresh-token idle expiry and the rate-limit windows
are all defined in wall-clock terms. Tests and benchmarks must be able to jump ten
minutes or thirty days ahead without sleeping, so the sandbox never calls
``time.time()`` directly: it asks a ``SandboxClock`` that is real time plus an
offset the tests can move forward.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime


class SandboxClock:
    """Real time shifted by ``offset`` seconds; ``advance`` moves the offset forward."""

    def __init__(self, offset: float = 0.0) -> None:
        self.offset = float(offset)

    def now(self) -> float:
        """Seconds since the epoch, as the sandbox sees it."""
        return time.time() + self.offset

    def now_ms(self) -> int:
        return int(self.now() * 1000)

    def now_dt(self) -> datetime:
        """The sandbox's current moment as an aware UTC datetime."""
        return datetime.fromtimestamp(self.now(), tz=UTC)

    def advance(self, seconds: float) -> float:
        """Jump ahead (a negative value jumps back; tests occasionally need that)."""
        self.offset += float(seconds)
        return self.now()

    def set(self, epoch_seconds: float) -> None:
        """Pin 'now' to a given moment (it keeps ticking from there in real time)."""
        self.offset = float(epoch_seconds) - time.time()
