"""The order state machine. The database row is the truth; jobs only trigger transitions.

    received ─┬─> rejected                     (payload not an order; raw kept)
              ├─> open ──(update: processable)─┐
              ├─> failed <──────────────┐      │
              └─> queued ──> booking ──>┴─> booked
                    ^   waiting (Exact connection needs consent)
                    └── reprocess (failed | rejected | waiting)
"""

from __future__ import annotations

from enum import StrEnum


class OrderState(StrEnum):
    REJECTED = "rejected"
    OPEN = "open"
    FAILED = "failed"
    QUEUED = "queued"
    BOOKING = "booking"
    BOOKED = "booked"
    WAITING = "waiting"


# Orders in these states may be changed by an update delivery and re-evaluated.
CHANGEABLE = {OrderState.REJECTED, OrderState.OPEN, OrderState.FAILED, OrderState.QUEUED, OrderState.WAITING}
# Orders in these states may have reached Exact: a change is recorded, never booked.
LOCKED = {OrderState.BOOKING, OrderState.BOOKED}
REPROCESSABLE = {OrderState.FAILED, OrderState.REJECTED, OrderState.WAITING}
ALL_STATES = [state.value for state in OrderState]
