"""The REST API: ``/api/v1/current/Me`` and ``/api/v1/{division}/{service}/{Entity}``.

Every request passes the same gate, in Exact's order:

1. bearer token → 401 when unknown, expired or superseded;
2. division → 403 ``Reason: NoDivisionAccess`` when the token's user may not open it;
3. error budget → 403 only if ``block_on_errors`` is on and the key went over;
4. rate limit per (app, division) → 429, else one call consumed;
5. the entity work itself (validation errors are localised HTTP 500s).

Responses after step 4 carry the six X-RateLimit headers. Every response is then
recorded in the monitor (request counts, 4xx error budget).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from app.sandbox import errors, schema
from app.sandbox.documents import create_sales_entry, create_sales_invoice, create_sales_order
from app.sandbox.errors import ExactError
from app.sandbox.filters import matches, referenced_properties
from app.sandbox.masterdata import (
    ACCOUNT_STATUSES,
    create_account,
    create_address,
    create_item,
    create_payment_condition,
)
from app.sandbox.odata import next_url, paginate, parse_query, render
from app.sandbox.payload import WriteContext, typed_lines, typed_payload
from app.sandbox.schema import EntitySet
from app.sandbox.seed import pad_account_code
from app.sandbox.state import SandboxState
from app.sandbox.tokens import AccessToken
from app.sandbox.values import GUID, INT, dumps, normalise_guid, parse_json_body, to_wire

CREATORS = {
    schema.ACCOUNTS.path: create_account,
    schema.ADDRESSES.path: create_address,
    schema.ITEMS.path: create_item,
    schema.PAYMENT_CONDITIONS.path: create_payment_condition,
    schema.SALES_ENTRIES.path: create_sales_entry,
    schema.SALES_INVOICES.path: create_sales_invoice,
    schema.SALES_ORDERS.path: create_sales_order,
}

_RESOURCE = re.compile(r"^(?P<name>[A-Za-z]+)(?:\((?P<key>.*)\))?$")


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(dumps(body), status_code=status, media_type="application/json", headers=headers)


@dataclass
class Caller:
    """Who is calling what; filled in as the gate learns it, used for bookkeeping."""

    endpoint: str
    client_id: str | None = None
    user_id: str | None = None
    division: int | None = None
    rate_headers: dict[str, str] = field(default_factory=dict)


def _not_found(segment: str) -> ExactError:
    return errors.not_found(f"Resource not found for the segment '{segment}'.")


def _parse_key(entity_set: EntitySet, text: str) -> Any:
    text = text.strip()
    try:
        if entity_set.fields[entity_set.key] == GUID:
            match = re.fullmatch(r"guid'([^']*)'", text)
            if match:
                return normalise_guid(match.group(1))
        elif entity_set.fields[entity_set.key] == INT and re.fullmatch(r"-?\d+", text):
            return int(text)
    except ValueError:
        pass
    raise errors.bad_request("Bad Request - Error in query syntax.")


class RestApi:
    def __init__(self, state: SandboxState) -> None:
        self.state = state

    def router(self) -> APIRouter:
        router = APIRouter()
        methods = ["GET", "POST", "PUT", "DELETE"]
        router.add_api_route("/api/v1/current/Me", self.me, methods=["GET"], include_in_schema=False)
        router.add_api_route(
            "/api/v1/{division}/{service}/{resource}", self.entity, methods=methods, include_in_schema=False
        )
        router.add_api_route(
            "/api/v1/{division}/{service}/{resource}/{sub}", self.entity, methods=methods, include_in_schema=False
        )
        return router

    # -- the gate ------------------------------------------------------------------------
    def _authenticate(self, request: Request, caller: Caller) -> AccessToken:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        access, valid = (None, False)
        if scheme.lower() == "bearer" and token.strip():
            access, valid = self.state.tokens.lookup_access(token.strip())
        if access is not None:
            caller.client_id, caller.user_id = access.client_id, access.user_id
        if access is None or not valid:
            raise ExactError(
                401,
                "Access token is expired or invalid.",
                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
        return access

    def _check_division(self, caller: Caller, division_text: str) -> int:
        if not division_text.isdigit():
            raise _not_found(division_text)
        caller.division = int(division_text)
        user = self.state.users[caller.user_id or ""]
        if caller.division not in user.divisions or caller.division not in self.state.divisions:
            raise ExactError(403, "Forbidden", headers={"Reason": "NoDivisionAccess"})
        return caller.division

    def _admit(self, caller: Caller) -> None:
        now = self.state.clock.now()
        assert caller.client_id is not None and caller.division is not None
        if self.state.monitor.blocked(caller.client_id, caller.user_id, caller.division, caller.endpoint, now):
            raise ExactError(403, "The application is blocked for this endpoint: too many errors in the last hour.")
        decision = self.state.rate_limiter.check(caller.client_id, caller.division, now)
        if not decision.allowed:
            raise ExactError(429, "Too many requests.", headers=decision.headers)
        caller.rate_headers = decision.headers

    def _finish(self, response: Response, caller: Caller) -> Response:
        for name, value in caller.rate_headers.items():
            response.headers[name] = value
        self.state.monitor.record(
            client_id=caller.client_id,
            user_id=caller.user_id,
            division=caller.division,
            endpoint=caller.endpoint,
            status=response.status_code,
            now=self.state.clock.now(),
        )
        return response

    # -- routes --------------------------------------------------------------------------
    async def me(self, request: Request) -> Response:
        caller = Caller(endpoint="current/Me")
        try:
            access = self._authenticate(request, caller)
            user = self.state.users[access.user_id]
            # Me is billed to the user's current division, the only one it has.
            caller.division = user.current_division
            self._admit(caller)
            record = user.me()
            select = request.query_params.get("$select", "").strip()
            names = list(schema.ME_FIELDS)
            if select and select != "*":
                names = [name.strip() for name in select.split(",")]
                for name in names:
                    if name not in schema.ME_FIELDS:
                        raise errors.bad_request(f"No property '{name}' exists in type 'Exact.Web.Api.System.Me'.")
            base = str(request.base_url).rstrip("/")
            row: dict[str, Any] = {
                "__metadata": {
                    "uri": f"{base}/api/v1/current/Me(guid'{user.user_id}')",
                    "type": "Exact.Web.Api.System.Me",
                }
            }
            row.update({name: to_wire(record[name]) for name in names})
            response = json_response({"d": {"results": [row]}})
        except ExactError as exc:
            response = exc.response()
        return self._finish(response, caller)

    async def entity(
        self, request: Request, division: str, service: str, resource: str, sub: str | None = None
    ) -> Response:
        match = _RESOURCE.match(resource)
        entity_set = schema.lookup(service, match.group("name")) if match else None
        caller = Caller(endpoint=entity_set.path if entity_set else f"{service}/{resource}")
        try:
            self._authenticate(request, caller)
            division_code = self._check_division(caller, division)
            self._admit(caller)
            if entity_set is None or match is None:
                raise _not_found(match.group("name") if match else resource)
            key = _parse_key(entity_set, match.group("key")) if match.group("key") is not None else None
            response = await self._dispatch(request, entity_set, division_code, key, sub, caller.user_id or "")
        except ExactError as exc:
            response = exc.response()
        return self._finish(response, caller)

    # -- dispatch ------------------------------------------------------------------------
    async def _dispatch(
        self, request: Request, entity_set: EntitySet, division: int, key: Any, sub: str | None, user_id: str
    ) -> Response:
        method = request.method
        if sub is not None:
            if method != "GET":
                raise ExactError(405, "The requested method is not allowed.")
            if sub == "$count" and key is None:
                return self._count(request, entity_set, division, user_id)
            if sub in entity_set.navigation and key is not None:
                return self._navigate(request, entity_set, division, key, sub)
            raise _not_found(sub)
        if method not in entity_set.methods:
            raise ExactError(405, "The requested method is not allowed.")
        if method == "GET":
            if key is None:
                return self._collection(request, entity_set, division, user_id)
            return self._single(request, entity_set, division, key, user_id)
        if method == "POST":
            if key is not None:
                raise ExactError(405, "The requested method is not allowed.")
            return await self._create(request, entity_set, division)
        if key is None:
            raise ExactError(405, "The requested method is not allowed.")
        if method == "PUT":
            return await self._update(request, entity_set, division, key)
        return self._delete(entity_set, division, key)

    def _rows(self, entity_set: EntitySet, division: int, user_id: str) -> list[dict]:
        if entity_set.path in schema.DIRECTORY_SETS:
            user = self.state.users[user_id]
            if entity_set is schema.DIVISIONS:
                return [self.state.divisions[c] for c in user.divisions if c in self.state.divisions]
            licences = {self.state.divisions[c]["Customer"] for c in user.divisions if c in self.state.divisions}
            return [d for d in self.state.divisions.values() if d["Customer"] in licences]
        return self.state.data[division].rows(entity_set)

    def _children(self, division: int, entity_set: EntitySet):
        data = self.state.data[division]

        def children(nav_name: str, parent_key: Any) -> tuple[EntitySet, list[dict]]:
            nav = entity_set.navigation[nav_name]
            child_set = schema.ENTITY_SETS[nav.child.lower()]
            return child_set, data.children(child_set, nav.foreign_key, parent_key)

        return children

    def _child_sets(self, entity_set: EntitySet) -> dict[str, EntitySet]:
        return {name: schema.ENTITY_SETS[nav.child.lower()] for name, nav in entity_set.navigation.items()}

    @staticmethod
    def _enforce_mandatory_filter(entity_set: EntitySet, query: Any) -> None:
        if not entity_set.mandatory_filter:
            return
        used = referenced_properties(query.filter) if query.filter is not None else set()
        if not used & set(entity_set.mandatory_filter):
            raise errors.bad_request(
                "This endpoint has mandatory filtering applied. A GET request for this endpoint must have a "
                "$filter parameter with one of the following fields in the url:"
                + ",".join(entity_set.mandatory_filter)
                + "."
            )

    def _page_response(
        self, request: Request, entity_set: EntitySet, division: int, rows: list[dict], query: Any, params: dict
    ) -> Response:
        page = paginate(entity_set, rows, query)
        base = str(request.base_url).rstrip("/")
        children = self._children(division, entity_set) if query.expand else None
        body: dict[str, Any] = {
            "results": [
                render(
                    entity_set,
                    row,
                    base_url=base,
                    division=division,
                    select=query.select,
                    nested_select=query.nested_select,
                    expand=query.expand,
                    children=children,
                )
                for row in page.rows
            ]
        }
        if query.inlinecount:
            body["__count"] = str(page.total)
        if page.next_token is not None:
            body["__next"] = next_url(base, request.url.path, params, page)
        return json_response({"d": body})

    def _collection(self, request: Request, entity_set: EntitySet, division: int, user_id: str) -> Response:
        params = dict(request.query_params)
        query = parse_query(entity_set, params, self._child_sets(entity_set))
        self._enforce_mandatory_filter(entity_set, query)
        rows = self._rows(entity_set, division, user_id)
        return self._page_response(request, entity_set, division, rows, query, params)

    def _count(self, request: Request, entity_set: EntitySet, division: int, user_id: str) -> Response:
        query = parse_query(entity_set, dict(request.query_params))
        self._enforce_mandatory_filter(entity_set, query)
        rows = self._rows(entity_set, division, user_id)
        total = sum(1 for row in rows if query.filter is None or matches(query.filter, row))
        return Response(str(total), media_type="text/plain")

    def _navigate(self, request: Request, entity_set: EntitySet, division: int, key: Any, nav_name: str) -> Response:
        if self.state.data[division].get(entity_set, key) is None:
            raise _not_found(entity_set.name)
        child_set, rows = self._children(division, entity_set)(nav_name, key)
        params = dict(request.query_params)
        query = parse_query(child_set, params)
        return self._page_response(request, child_set, division, rows, query, params)

    def _single(self, request: Request, entity_set: EntitySet, division: int, key: Any, user_id: str) -> Response:
        rows = self._rows(entity_set, division, user_id)
        record = next((row for row in rows if row[entity_set.key] == key), None)
        if record is None:
            raise _not_found(entity_set.name)
        query = parse_query(entity_set, dict(request.query_params), self._child_sets(entity_set))
        body = render(
            entity_set,
            record,
            base_url=str(request.base_url).rstrip("/"),
            division=division,
            select=query.select,
            nested_select=query.nested_select,
            expand=query.expand,
            children=self._children(division, entity_set),
        )
        return json_response({"d": body})

    def _context(self, division: int) -> WriteContext:
        return WriteContext(self.state.data[division], self.state.divisions[division], self.state.clock.now_dt())

    async def _create(self, request: Request, entity_set: EntitySet, division: int) -> Response:
        creator = CREATORS.get(entity_set.path)
        if creator is None:
            raise ExactError(405, "The requested method is not allowed.")
        payload = typed_payload(entity_set, parse_json_body(await request.body()))
        lines = None
        for nav_name in entity_set.navigation:
            lines = typed_lines(entity_set, nav_name, payload.pop(nav_name, None))
        record, _created = creator(self._context(division), payload, lines)
        base = str(request.base_url).rstrip("/")
        body = render(entity_set, record, base_url=base, division=division)
        return json_response({"d": body}, status=201, headers={"Location": body["__metadata"]["uri"]})

    async def _update(self, request: Request, entity_set: EntitySet, division: int, key: Any) -> Response:
        data = self.state.data[division]
        record = data.get(entity_set, key)
        if record is None:
            raise _not_found(entity_set.name)
        payload = typed_payload(entity_set, parse_json_body(await request.body()))
        for nav_name in entity_set.navigation:
            payload.pop(nav_name, None)  # lines change through their own endpoint
        if entity_set is schema.ACCOUNTS:
            payload = _account_update(data, record, payload)
        record.update(payload)
        record["Modified"] = self.state.clock.now_dt()
        return Response(status_code=204)

    def _delete(self, entity_set: EntitySet, division: int, key: Any) -> Response:
        data = self.state.data[division]
        if data.get(entity_set, key) is None:
            raise _not_found(entity_set.name)
        data.delete(entity_set, str(key))
        return Response(status_code=204)


def _account_update(data: Any, record: dict, payload: dict) -> dict:
    """The account rules that still apply on PUT: name, status, unique padded code."""
    if "Name" in payload and not (payload["Name"] or "").strip():
        raise errors.required("Naam")
    if "Status" in payload:
        status = (payload["Status"] or "A").upper()
        if status not in ACCOUNT_STATUSES:
            raise errors.validation("Ongeldig: Status")
        payload["Status"], payload["IsSales"] = status, status == "C"
    if payload.get("Code"):
        payload["Code"] = pad_account_code(payload["Code"])
        existing = data.find(schema.ACCOUNTS, "Code", payload["Code"])
        if existing is not None and existing["ID"] != record["ID"]:
            raise errors.already_exists()
    return payload
