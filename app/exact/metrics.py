"""Prometheus counters for the Exact client, and the default call hook that feeds them.

``ExactClient(on_call=...)`` accepts any callable taking a ``CallEvent``; the default is
``record_call``. Labels stay low-cardinality: division, HTTP status (or ``timeout``/``error``),
and a fixed set of refresh outcomes.
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import Counter

EXACT_CALLS = Counter(
    "koppel_exact_calls_total",
    "HTTP calls made to the Exact Online REST API",
    ["division", "status"],
)
EXACT_RATE_LIMITED = Counter(
    "koppel_exact_rate_limited_total",
    "429 answers from Exact Online",
    ["division"],
)
EXACT_TOKEN_REFRESHES = Counter(
    "koppel_exact_token_refreshes_total",
    "Exact token refresh attempts by outcome",
    ["outcome"],
)

# outcome label values for EXACT_TOKEN_REFRESHES
REFRESH_OK = "ok"
REFRESH_REUSED = "reused"  # another process had refreshed already; no network call
REFRESH_NEEDS_CONSENT = "needs_consent"
REFRESH_TOO_EARLY = "too_early"
REFRESH_ERROR = "error"


@dataclass(frozen=True)
class CallEvent:
    """One HTTP call to the REST API (token endpoint calls are not included)."""

    division: int | None
    method: str
    status: str  # "200", "429", … or "timeout" / "error"
    elapsed_s: float


def record_call(event: CallEvent) -> None:
    division = str(event.division) if event.division is not None else "none"
    EXACT_CALLS.labels(division=division, status=event.status).inc()
    if event.status == "429":
        EXACT_RATE_LIMITED.labels(division=division).inc()


def record_refresh(outcome: str) -> None:
    EXACT_TOKEN_REFRESHES.labels(outcome=outcome).inc()
