"""SandboxState: everything the simulated Exact Online knows, plus its test controls.

One object owns the clock, the seeded licence (clients, users, divisions and their
tables), the token service, the rate limiter, the error monitor and the fault rules.
The admin HTTP API (``/sandbox/...``) is a thin layer over the methods here, so a
test that runs the sandbox in-process can call them directly instead.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from app.sandbox import schema
from app.sandbox.clock import SandboxClock
from app.sandbox.directory import OAuthClient, User
from app.sandbox.faults import FaultBook, FaultRule
from app.sandbox.monitor import RequestMonitor
from app.sandbox.ratelimit import RateLimiter, SandboxLimits
from app.sandbox.seed import CLIENT_ID, DEFAULT_USER_ID, build_seed
from app.sandbox.store import DivisionData
from app.sandbox.tokens import TokenService

# What GET /sandbox/state counts per division, under short names.
COUNTED_SETS = {
    "sales_entries": schema.SALES_ENTRIES.path,
    "sales_entry_lines": schema.SALES_ENTRY_LINES.path,
    "accounts": schema.ACCOUNTS.path,
    "addresses": schema.ADDRESSES.path,
    "items": schema.ITEMS.path,
    "sales_invoices": schema.SALES_INVOICES.path,
    "sales_orders": schema.SALES_ORDERS.path,
    "payment_conditions": schema.PAYMENT_CONDITIONS.path,
}


class SandboxState:
    def __init__(self, clock: SandboxClock | None = None, limits: SandboxLimits | None = None) -> None:
        self.clock = clock or SandboxClock()
        # One limits object shared by every component, so PUT /sandbox/limits is live.
        self.limits = limits or SandboxLimits()
        self.reset()

    def reset(self) -> None:
        """Reseed: fresh data, no tokens, no faults, zeroed counters.

        The clock and the limits survive a reset: a benchmark raises the limits
        once, and a test that moved time on does not expect it to jump back.
        """
        seed = build_seed()
        self.clients: dict[str, OAuthClient] = seed.clients
        self.users: dict[str, User] = seed.users
        self.divisions: dict[int, dict] = seed.divisions
        self.data: dict[int, DivisionData] = seed.data
        self.tokens = TokenService(self.clock, self.limits, self.clients, self.users)
        self.rate_limiter = RateLimiter(self.limits)
        self.monitor = RequestMonitor(self.limits)
        self.faults = FaultBook()

    def add_division(self, code: int, description: str | None = None, user: str | None = None) -> None:
        """Give a user (default: Jan) one more seeded division."""
        if code in self.divisions:
            raise ValueError(f"division {code} exists")
        from app.sandbox.seed import extra_division

        record, data = extra_division(code, description or f"Extra administratie {code}", 100000 + len(self.divisions))
        self.divisions[code] = record
        self.data[code] = data
        self.resolve_user(user).divisions.append(code)

    # -- directory -----------------------------------------------------------------------
    def resolve_user(self, user: str | None = None) -> User:
        """A user by GUID or e-mail (case-insensitive); the default user when None."""
        if not user:
            return self.users[DEFAULT_USER_ID]
        wanted = user.strip().lower()
        for candidate in self.users.values():
            if wanted in (candidate.user_id.lower(), candidate.email.lower(), candidate.user_name.lower()):
                return candidate
        raise KeyError(f"unknown user {user!r}")

    def register_client(self, client_id: str, client_secret: str, redirect_uris: Iterable[str]) -> OAuthClient:
        client = OAuthClient(client_id, client_secret, list(redirect_uris))
        self.clients[client_id] = client
        return client

    # -- controls ------------------------------------------------------------------------
    def advance_clock(self, seconds: float) -> float:
        return self.clock.advance(seconds)

    def set_limits(self, **values: Any) -> SandboxLimits:
        self.limits.update(values)
        return self.limits

    def add_fault(self, **rule: Any) -> FaultRule:
        return self.faults.add(FaultRule(**rule))

    def clear_faults(self) -> int:
        count = len(self.faults.rules)
        self.faults.clear()
        return count

    def issue_tokens(self, client_id: str = CLIENT_ID, user: str | None = None) -> dict:
        """Mint a chain as if the user had consented and the code was exchanged."""
        return self.tokens.issue_chain(client_id, self.resolve_user(user).user_id)

    def _chain_filter(self, client_id: str | None, user: str | None) -> tuple[str | None, str | None]:
        return client_id, (self.resolve_user(user).user_id if user else None)

    def expire_refresh_tokens(
        self, client_id: str | None = None, user: str | None = None, refresh_token: str | None = None
    ) -> int:
        """Make matching chains' refresh tokens dead, as after 30 idle days."""
        client_id, user_id = self._chain_filter(client_id, user)
        return self.tokens.expire_refresh(client_id, user_id, refresh_token)

    def expire_access_tokens(
        self, client_id: str | None = None, user: str | None = None, refresh_token: str | None = None
    ) -> int:
        client_id, user_id = self._chain_filter(client_id, user)
        return self.tokens.expire_access(client_id, user_id, refresh_token)

    # -- inspection ----------------------------------------------------------------------
    def division_data(self, division: int) -> DivisionData:
        return self.data[division]

    def records(self, division: int, path: str) -> list[dict]:
        """Raw stored rows of one entity set (Python values: Decimal, datetime)."""
        entity_set = schema.ENTITY_SETS[path.lower()]
        return self.data[division].rows(entity_set)

    def sales_entries(self, division: int) -> list[dict]:
        """Stored sales entries, each with its lines under "SalesEntryLines"."""
        data = self.data[division]
        return [
            {**entry, "SalesEntryLines": data.children(schema.SALES_ENTRY_LINES, "EntryID", entry["EntryID"])}
            for entry in data.rows(schema.SALES_ENTRIES)
        ]

    def token_stats(self) -> dict:
        return dict(self.tokens.stats.__dict__)

    def snapshot(self) -> dict:
        """Everything GET /sandbox/state returns (values still Python; dumps() encodes)."""
        divisions = {}
        for code, data in self.data.items():
            divisions[str(code)] = {
                "description": self.divisions[code]["Description"],
                "counts": {name: len(data.table(path)) for name, path in COUNTED_SETS.items()},
                "requests": self.monitor.requests.get(code, 0),
                "statuses": {str(k): v for k, v in self.monitor.statuses.get(code, {}).items()},
                "rate_limited": self.rate_limiter.rejected.get(code, 0),
                "sales_entries": [_entry_summary(entry) for entry in self.sales_entries(code)],
            }
        return {
            "clock": {"now": self.clock.now(), "now_ms": self.clock.now_ms(), "offset": self.clock.offset},
            "limits": self.limits.as_dict(),
            "divisions": divisions,
            "requests": {str(k): v for k, v in self.monitor.requests.items()},
            "rate_limited": {str(k): v for k, v in self.rate_limiter.rejected.items()},
            "rate_usage": self.rate_limiter.usage(),
            "tokens": self.tokens.snapshot(),
            "errors": self.monitor.snapshot(),
            "faults": self.faults.snapshot(),
            "clients": [client.public() for client in self.clients.values()],
        }


def _entry_summary(entry: dict) -> dict:
    return {
        "EntryID": entry["EntryID"],
        "EntryNumber": entry["EntryNumber"],
        "YourRef": entry["YourRef"],
        "Journal": entry["Journal"],
        "Customer": entry["Customer"],
        "EntryDate": entry["EntryDate"].date().isoformat(),
        "Description": entry["Description"],
        "AmountDC": entry["AmountDC"],
        "VATAmountDC": entry["VATAmountDC"],
        "lines": [
            {
                "GLAccount": line["GLAccount"],
                "GLAccountCode": line["GLAccountCode"],
                "Description": line["Description"],
                "AmountFC": line["AmountFC"],
                "VATCode": line["VATCode"],
                "VATAmountFC": line["VATAmountFC"],
            }
            for line in entry["SalesEntryLines"]
        ],
    }


__all__ = ["SandboxState", "COUNTED_SETS"]
