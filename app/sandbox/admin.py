"""Test-control API under ``/sandbox/`` for tests and benchmarks in another process.

None of this exists on Exact. It is a thin HTTP layer over ``SandboxState`` methods,
never faulted, never rate-limited, and unauthenticated: the sandbox is a local
development tool and must not be exposed.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field
from starlette.responses import JSONResponse, Response

from app.sandbox import schema, seed
from app.sandbox.state import SandboxState
from app.sandbox.values import dumps, to_wire


class FaultIn(BaseModel):
    method: str = "*"
    path_regex: str = ".*"
    status: int | None = None
    delay_seconds: float = Field(default=0.0, ge=0)
    after_work: bool = False
    times: int | None = Field(default=1, ge=1)
    headers: dict[str, str] = Field(default_factory=dict)
    body: Any = None


class AdvanceIn(BaseModel):
    seconds: float


class LimitsIn(BaseModel):
    minutely: int | None = Field(default=None, ge=0)
    daily: int | None = Field(default=None, ge=0)
    token_daily: int | None = Field(default=None, ge=0)
    errors_per_hour: int | None = Field(default=None, ge=0)
    block_on_errors: bool | None = None


class ClientIn(BaseModel):
    client_id: str = Field(min_length=1)
    client_secret: str = Field(min_length=1)
    redirect_uris: list[str] = Field(default_factory=list)


class IssueIn(BaseModel):
    client_id: str = seed.CLIENT_ID
    user: str | None = None


class DivisionIn(BaseModel):
    code: int
    description: str | None = None
    user: str | None = None


class ChainSelector(BaseModel):
    client_id: str | None = None
    user: str | None = None
    refresh_token: str | None = None


def _json(body: Any, status: int = 200) -> Response:
    return Response(dumps(body), status_code=status, media_type="application/json")


def _problem(status: int, message: str) -> JSONResponse:
    return JSONResponse({"detail": message}, status_code=status)


class AdminApi:
    def __init__(self, state: SandboxState) -> None:
        self.state = state

    def router(self) -> APIRouter:
        r = APIRouter(prefix="/sandbox", tags=["sandbox admin"])
        r.add_api_route("/info", self.info, methods=["GET"])
        r.add_api_route("/state", self.snapshot, methods=["GET"])
        r.add_api_route("/reset", self.reset, methods=["POST"])
        r.add_api_route("/faults", self.list_faults, methods=["GET"])
        r.add_api_route("/faults", self.add_fault, methods=["POST"], status_code=201)
        r.add_api_route("/faults", self.clear_faults, methods=["DELETE"])
        r.add_api_route("/clock", self.clock, methods=["GET"])
        r.add_api_route("/clock/advance", self.advance, methods=["POST"])
        r.add_api_route("/limits", self.get_limits, methods=["GET"])
        r.add_api_route("/limits", self.put_limits, methods=["PUT"])
        r.add_api_route("/clients", self.add_client, methods=["POST"], status_code=201)
        r.add_api_route("/tokens/issue", self.issue, methods=["POST"])
        r.add_api_route("/tokens/expire-refresh", self.expire_refresh, methods=["POST"])
        r.add_api_route("/tokens/expire-access", self.expire_access, methods=["POST"])
        r.add_api_route("/records/{division}/{service}/{entity}", self.records, methods=["GET"])
        r.add_api_route("/divisions", self.add_division, methods=["POST"], status_code=201)
        return r

    async def add_division(self, body: DivisionIn) -> Response:
        try:
            self.state.add_division(body.code, body.description, body.user)
        except ValueError as exc:
            return _problem(409, str(exc))
        return _json({"code": body.code}, status=201)

    async def info(self) -> Response:
        """The seed constants a developer needs to point Koppel at this sandbox."""
        return _json(
            {
                "client_id": seed.CLIENT_ID,
                "client_secret": seed.CLIENT_SECRET,
                "redirect_uris": seed.REDIRECT_URIS,
                "users": [
                    {"user_id": u.user_id, "email": u.email, "full_name": u.full_name, "divisions": u.divisions}
                    for u in self.state.users.values()
                ],
                "divisions": [
                    {"code": code, "description": d["Description"]} for code, d in self.state.divisions.items()
                ],
            }
        )

    async def snapshot(self) -> Response:
        return _json(self.state.snapshot())

    async def reset(self) -> Response:
        self.state.reset()
        return _json({"reset": True})

    async def list_faults(self) -> Response:
        return _json(self.state.faults.snapshot())

    async def add_fault(self, rule: FaultIn) -> Response:
        try:
            added = self.state.add_fault(**rule.model_dump())
        except (ValueError, re.error) as exc:
            return _problem(422, str(exc))
        return _json(added.describe(), status=201)

    async def clear_faults(self) -> Response:
        return _json({"cleared": self.state.clear_faults()})

    def _clock(self) -> dict:
        clock = self.state.clock
        return {"now": clock.now(), "now_ms": clock.now_ms(), "now_iso": clock.now_dt().isoformat(),
                "offset": clock.offset}

    async def clock(self) -> Response:
        return _json(self._clock())

    async def advance(self, body: AdvanceIn) -> Response:
        self.state.advance_clock(body.seconds)
        return _json(self._clock())

    async def get_limits(self) -> Response:
        return _json(self.state.limits.as_dict())

    async def put_limits(self, body: LimitsIn) -> Response:
        self.state.set_limits(**body.model_dump(exclude_none=True))
        return _json(self.state.limits.as_dict())

    async def add_client(self, body: ClientIn) -> Response:
        client = self.state.register_client(body.client_id, body.client_secret, body.redirect_uris)
        return _json(client.public(), status=201)

    async def issue(self, body: IssueIn) -> Response:
        try:
            return _json(self.state.issue_tokens(body.client_id, body.user))
        except KeyError as exc:
            return _problem(404, str(exc.args[0]))

    async def expire_refresh(self, body: ChainSelector) -> Response:
        try:
            count = self.state.expire_refresh_tokens(body.client_id, body.user, body.refresh_token)
        except KeyError as exc:
            return _problem(404, str(exc.args[0]))
        return _json({"expired": count})

    async def expire_access(self, body: ChainSelector) -> Response:
        try:
            count = self.state.expire_access_tokens(body.client_id, body.user, body.refresh_token)
        except KeyError as exc:
            return _problem(404, str(exc.args[0]))
        return _json({"expired": count})

    async def records(self, division: int, service: str, entity: str) -> Response:
        """Raw rows of one entity set, bypassing auth, filters and rate limits."""
        entity_set = schema.lookup(service, entity)
        if entity_set is None or division not in self.state.data:
            return _problem(404, "unknown division or entity set")
        rows = self.state.data[division].rows(entity_set)
        return _json({"results": [{k: to_wire(v) for k, v in row.items()} for row in rows]})
