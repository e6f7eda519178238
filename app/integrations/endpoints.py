"""Configuration API for integrations (one shop each): settings validated against the division's
real reference data, pause/enable, and the audit log of every change.

    POST  /api/v1/integrations                        admin     create; answers the webhook URL and secret once
    GET   /api/v1/integrations                        viewer    list (filters: tenant_id, connection_id, division)
    GET   /api/v1/integrations/{id}                   viewer    one, with its settings
    PATCH /api/v1/integrations/{id}                   operator  name, connection/division, settings (merged per key)
    POST  /api/v1/integrations/{id}/pause             operator  keep receiving, stop booking
    POST  /api/v1/integrations/{id}/enable            operator  book again; parked orders are re-evaluated
    GET   /api/v1/integrations/{id}/audit             viewer    who changed what, when, before and after
    GET   /api/v1/divisions/{d}/vat-rules/proposal    viewer    EU standard rates mapped to the division's codes
"""

from __future__ import annotations

from typing import Annotated, Any

import structlog
from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app import crypto
from app.connections.endpoints import (
    exact_client,
    exact_http_error,
    item_json,
    reachable_connection,
    visible_connection,
)
from app.connections.models import ExactConnection, ReferenceItem
from app.connections.service import (
    ACTIVE,
    PENDING,
    connection_ref,
    known_divisions,
    refresh_divisions,
    refresh_reference,
    reference_refreshed_at,
)
from app.db.base import utcnow
from app.deps import DB, Admin, Operator, Resources, Viewer
from app.exact.errors import ExactError
from app.exact.odata import is_guid, odata_guid, odata_string
from app.integrations import audit
from app.integrations.models import Integration
from app.integrations.service import create_integration, default_settings_for
from app.integrations.settings import IntegrationSettings
from app.integrations.validation import Problem, kinds_needed, validate_settings
from app.integrations.vat_defaults import propose_vat_rules
from app.orders import repository as orders
from app.orders.models import Order
from app.orders.service import PAUSED, PAUSED_MESSAGE, reevaluate
from app.orders.states import OrderState
from app.sources.registry import get_adapter
from app.tenancy.access import actor, resolve_tenant
from app.tenancy.auth import Principal
from app.tenancy.models import Tenant

log = structlog.get_logger(__name__)

router = APIRouter(prefix="/api/v1", tags=["integrations"])


class SettingsRejected(Exception):
    def __init__(self, message: str, problems: list[Problem]) -> None:
        super().__init__(message)
        self.message = message
        self.problems = problems

    def response(self) -> JSONResponse:
        return JSONResponse({"detail": self.message, "errors": [p.as_dict() for p in self.problems]},
                            status_code=422)


class IntegrationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    source: str = Field(description="generic, shopify, woocommerce, lightspeed, …")
    connection_id: int
    division: int
    tenant_id: int | None = Field(default=None, description="Default: the key's own tenant; a firm's key may "
                                                           "name one of its client tenants")
    settings: dict[str, Any] | None = Field(default=None, description="IntegrationSettings; keys left out "
                                                                      "get their defaults")
    webhook_secret: SecretStr | None = Field(
        default=None, min_length=8, max_length=500,
        description="The key the shop signs with, for shops that issue their own (Shopify, Lightspeed); "
                    "default: Koppel generates a Standard Webhooks secret")


class IntegrationPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    connection_id: int | None = None
    division: int | None = None
    settings: dict[str, Any] | None = Field(default=None, description="Only the keys to change; each given key "
                                                                      "replaces its value (vat_rules as a whole)")
    webhook_secret: SecretStr | None = Field(
        default=None, min_length=8, max_length=500,
        description="Replace the webhook secret (e.g. with the key Shopify or Lightspeed issued); never echoed")


# --------------------------------------------------------------------------- helpers


def _res(request: Request) -> Resources:
    return request.app.state.resources  # type: ignore[no-any-return]


def integration_json(integration: Integration, request: Request) -> dict[str, Any]:
    path = f"/webhooks/{integration.source}/{integration.key}"
    return {
        "id": integration.id, "tenant_id": integration.tenant_id, "name": integration.name,
        "source": integration.source, "connection_id": integration.connection_id,
        "division": integration.division, "enabled": bool(integration.enabled),
        "webhook_path": path, "webhook_url": str(request.base_url).rstrip("/") + path,
        "settings": integration.settings or {}, "created_at": integration.created_at,
        "updated_at": integration.updated_at,
    }


async def visible_integration(db: AsyncSession, who: Principal, integration_id: int, *,
                              for_update: bool = False) -> Integration:
    query = select(Integration).where(Integration.id == integration_id)
    if for_update:
        query = query.with_for_update()
    integration = (await db.execute(query)).scalar_one_or_none()
    if integration is None or not who.sees_tenant(integration.tenant_id):
        raise HTTPException(404, f"integration {integration_id} not found")
    return integration


def _parse(values: dict[str, Any]) -> IntegrationSettings:
    try:
        return IntegrationSettings.model_validate(values)
    except ValidationError as exc:
        problems = [Problem("settings." + ".".join(str(p) for p in e["loc"]), e["msg"]) for e in exc.errors()]
        raise SettingsRejected("invalid settings: " + "; ".join(f"{p.field}: {p.reason}" for p in problems),
                               problems) from exc


async def _usable_connection(db: AsyncSession, who: Principal, tenant: Tenant, connection_id: int) -> ExactConnection:
    connection = await visible_connection(db, who, connection_id)
    if connection.tenant_id not in (tenant.id, tenant.parent_id):
        raise HTTPException(422, f"connection {connection_id} belongs to tenant {connection.tenant_id}; an "
                                 f"integration of tenant {tenant.id} books through its own connections or its "
                                 "firm's")
    if connection.state == PENDING:
        raise HTTPException(409, f"connection {connection_id} is not authorized yet: send its Exact user to "
                                 f"/api/v1/connections/{connection_id}/authorize first")
    return connection


async def _check_division(request: Request, connection: ExactConnection, division: int) -> None:
    res = _res(request)
    async with res.sessionmaker() as session:
        known = await known_divisions(session, connection.id)
    if not known and connection.state == ACTIVE:
        # Connected before divisions were recorded (or from a script): ask Exact once.
        try:
            known = {d.code: d for d in await refresh_divisions(res.sessionmaker, exact_client(request),
                                                                  res.settings, connection.id)}
        except ExactError as exc:
            raise exact_http_error(exc, connection_id=connection.id) from exc
    available = [code for code, d in known.items() if d.available]
    if division not in available:
        raise HTTPException(422, f"division {division} is not one of connection {connection.id}'s divisions "
                                 f"({', '.join(map(str, available)) or 'none'})")


async def _reference(request: Request, connection: ExactConnection, division: int,
                     kinds: tuple[str, ...]) -> dict[str, dict[str, dict[str, Any]]]:
    """The division's cached reference data of these kinds; kinds never loaded are loaded now."""
    res = _res(request)
    async with res.sessionmaker() as session:
        loaded = await reference_refreshed_at(session, connection.id, division)
    missing = tuple(k for k in kinds if k not in loaded)
    if missing:
        if connection.state != ACTIVE:
            raise HTTPException(409, f"the reference data of division {division} is not loaded and connection "
                                     f"{connection.id} needs consent: authorize it again first")
        try:
            await refresh_reference(res.sessionmaker, exact_client(request), res.settings, connection.id, division,
                                    missing)
        except ExactError as exc:
            raise exact_http_error(exc, connection_id=connection.id) from exc
    async with res.sessionmaker() as session:
        rows = (await session.execute(select(ReferenceItem).where(
            ReferenceItem.connection_id == connection.id, ReferenceItem.division == division,
            ReferenceItem.kind.in_(kinds)))).scalars()
        found: dict[str, dict[str, dict[str, Any]]] = {kind: {} for kind in kinds}
        for item in rows:
            found[item.kind][item.code] = item_json(item)
    return found


async def _check_fixed_debtors(request: Request, connection: ExactConnection, division: int,
                               debtors: dict[str, str]) -> list[Problem]:
    """Each newly mapped fixed debtor must exist in the division (one cheap look-up each)."""
    problems: list[Problem] = []
    if not debtors:
        return problems
    res = _res(request)
    session = exact_client(request).for_division(connection_ref(connection, res.settings), division)
    for method, value in debtors.items():
        value = str(value).strip()
        query = (f"ID eq {odata_guid(value)}" if is_guid(value)
                 else f"Code eq {odata_string(value.rjust(18))}")  # Exact's codes: 18 wide, right-aligned
        try:
            found = await session.get("crm/Accounts", {"$filter": query, "$select": "ID,Code,Name", "$top": "1"})
        except ExactError as exc:
            raise exact_http_error(exc, connection_id=connection.id) from exc
        if not found:
            problems.append(Problem(f"settings.fixed_debtors.{method}",
                                    f"fixed debtor {value} does not exist in division {division}"))
    return problems


async def _validated(request: Request, connection: ExactConnection, division: int, parsed: IntegrationSettings,
                     new_debtors: dict[str, str]) -> None:
    reference = await _reference(request, connection, division, kinds_needed(parsed))
    problems = validate_settings(parsed, reference, division)
    refused = {p.field for p in problems}
    problems += await _check_fixed_debtors(request, connection, division, {
        method: debtor for method, debtor in new_debtors.items()
        if f"settings.fixed_debtors.{method}" not in refused and str(debtor).strip()})
    if problems:
        raise SettingsRejected(f"settings refused for division {division}: "
                               + "; ".join(p.reason for p in problems), problems)


def _forget(request: Request, integration: Integration) -> None:
    cache = _res(request).intake_cache
    if cache is not None and hasattr(cache, "forget"):
        cache.forget(integration.key)


# --------------------------------------------------------------------------- endpoints


@router.post("/integrations", status_code=201, responses={422: {"description": "Names what the division lacks"}})
async def create(body: IntegrationCreate, request: Request, db: DB, who: Admin) -> Any:
    """Create a shop integration on one connection + division. The webhook secret is shown only here.

    Settings left out get their defaults; `vat_rules` left out are proposed from the division's
    VAT codes (home rates, every EU country's standard rate on its OSS code, ICP and export)."""
    if get_adapter(body.source) is None:
        raise HTTPException(422, f"unknown source '{body.source}'")
    tenant = await resolve_tenant(db, who, body.tenant_id)
    connection = await _usable_connection(db, who, tenant, body.connection_id)
    tenant_id = tenant.id
    await db.commit()  # read-only; unlike a rollback, a commit keeps loaded objects usable
    await _check_division(request, connection, body.division)
    given = dict(body.settings or {})
    notes: list[str] = []
    try:
        values = {**default_settings_for(body.source).model_dump(mode="json"), **given}
        parsed = _parse(values)
        if "vat_rules" not in given:
            reference = await _reference(request, connection, body.division, ("vat_code", "gl_account"))
            proposal = propose_vat_rules(reference["vat_code"].values(), reference["gl_account"].values(),
                                         parsed.home_country)
            notes = proposal.notes
            if proposal.rules:
                values["vat_rules"] = [rule.model_dump(mode="json") for rule in proposal.rules]
                parsed = _parse(values)
        await _validated(request, connection, body.division, parsed, parsed.fixed_debtors)
    except SettingsRejected as exc:
        return exc.response()
    res = _res(request)
    async with db.begin():
        integration, secret = await create_integration(
            db, secret_key=res.settings.secret_key.get_secret_value(), tenant_id=tenant_id, name=body.name.strip(),
            source=body.source, connection_id=connection.id, division=body.division, settings=parsed,
            webhook_secret=body.webhook_secret.get_secret_value() if body.webhook_secret else None)
        await audit.record(db, integration, action="created", actor=await actor(db, who), api_key_id=who.key_id,
                           before=None, after=audit.snapshot(integration))
        answer = {**integration_json(integration, request), "webhook_secret": secret, "notes": notes}
    log.info("integration_created", integration_id=integration.id, tenant_id=tenant_id)
    return JSONResponse(_encodable(answer), status_code=201)


def _encodable(body: dict[str, Any]) -> dict[str, Any]:
    from fastapi.encoders import jsonable_encoder

    return jsonable_encoder(body)  # type: ignore[no-any-return]


@router.get("/integrations")
async def list_integrations(request: Request, db: DB, who: Viewer, tenant_id: int | None = None,
                            connection_id: int | None = None, division: int | None = None) -> dict[str, Any]:
    query = select(Integration).order_by(Integration.id)
    if who.tenant_ids is not None:
        query = query.where(Integration.tenant_id.in_(who.tenant_ids))
    if tenant_id is not None:
        query = query.where(Integration.tenant_id == tenant_id)
    if connection_id is not None:
        query = query.where(Integration.connection_id == connection_id)
    if division is not None:
        query = query.where(Integration.division == division)
    return {"integrations": [integration_json(i, request) for i in (await db.execute(query)).scalars()]}


@router.get("/integrations/{integration_id}")
async def get_integration(integration_id: int, request: Request, db: DB, who: Viewer) -> dict[str, Any]:
    return integration_json(await visible_integration(db, who, integration_id), request)


@router.patch("/integrations/{integration_id}", responses={422: {"description": "Names what the division lacks"}})
async def update_integration(integration_id: int, body: IntegrationPatch, request: Request, db: DB,
                             who: Operator) -> Any:
    """Change the name, the connection/division, or settings (each given settings key replaces its value).

    Settings are checked as a whole against the division's reference data; a code or account
    the division lacks is a 422 that names it. Every change is written to the audit log."""
    integration = await visible_integration(db, who, integration_id)
    current = dict(integration.settings or {})
    connection_id = body.connection_id if body.connection_id is not None else integration.connection_id
    division = body.division if body.division is not None else integration.division
    moved = (connection_id, division) != (integration.connection_id, integration.division)
    check = body.settings is not None or moved
    connection = None
    if check:
        if connection_id is None or division is None:
            raise HTTPException(422, "the integration needs a connection_id and a division first")
        if moved:
            tenant = await db.get(Tenant, integration.tenant_id)
            assert tenant is not None
            connection = await _usable_connection(db, who, tenant, connection_id)
        else:
            connection = await db.get(ExactConnection, connection_id)
            if connection is None:
                raise HTTPException(422, f"connection {connection_id} no longer exists")
    await db.commit()  # read-only; unlike a rollback, a commit keeps loaded objects usable
    values = {**current, **(body.settings or {})}
    try:
        parsed = _parse(values)
        if check:
            assert connection is not None and division is not None
            if moved:
                await _check_division(request, connection, division)
            old_debtors = IntegrationSettings.model_validate(current).fixed_debtors if current else {}
            new_debtors = {m: d for m, d in parsed.fixed_debtors.items() if moved or old_debtors.get(m) != d}
            await _validated(request, connection, division, parsed, new_debtors)
    except SettingsRejected as exc:
        return exc.response()
    async with db.begin():
        row = await visible_integration(db, who, integration_id, for_update=True)
        before = audit.snapshot(row)
        if body.name is not None:
            row.name = body.name.strip()
        row.connection_id, row.division = connection_id, division
        row.settings = parsed.model_dump(mode="json")
        after = audit.snapshot(row)
        if after != before:
            row.updated_at = utcnow()
            await audit.record(db, row, action="updated", actor=await actor(db, who), api_key_id=who.key_id,
                               before=before, after=after)
        if body.webhook_secret is not None:
            row.webhook_secret_enc = crypto.encrypt(_res(request).settings.secret_key.get_secret_value(),
                                                    body.webhook_secret.get_secret_value())
            row.updated_at = utcnow()
            # Audited without the value: who replaced it and when is what an auditor needs.
            await audit.record(db, row, action="webhook_secret_replaced", actor=await actor(db, who),
                               api_key_id=who.key_id, before={"webhook_secret": "(previous)"},
                               after={"webhook_secret": "(replaced)"})
        answer = integration_json(row, request)
    _forget(request, row)
    return _encodable(answer)


@router.post("/integrations/{integration_id}/pause")
async def pause(integration_id: int, request: Request, db: DB, who: Operator) -> dict[str, Any]:
    """Stop booking, keep receiving: webhooks are still accepted, stored and checked, but orders
    that pass wait (state `waiting`, code `integration_paused`) instead of queueing; queued orders
    are parked the same way. Orders being booked this instant finish."""
    parked: list[int] = []
    async with db.begin():
        integration = await visible_integration(db, who, integration_id, for_update=True)
        if integration.enabled:
            before = audit.snapshot(integration)
            integration.enabled = False
            integration.updated_at = utcnow()
            who_name = await actor(db, who)
            queued = (await db.execute(select(Order).where(
                Order.integration_id == integration.id, Order.state == OrderState.QUEUED)
                .order_by(Order.id).with_for_update())).scalars()
            for order in queued:
                order.state, order.error_code, order.error_message, order.retryable = (
                    OrderState.WAITING, PAUSED, PAUSED_MESSAGE, True)
                order.updated_at = utcnow()
                orders.add_event(db, order.id, "waiting", f"the integration was paused by {who_name}; "
                                                          "the order waits until it is enabled again")
                parked.append(order.id)
            await audit.record(db, integration, action="paused", actor=who_name, api_key_id=who.key_id,
                               before=before, after=audit.snapshot(integration))
    _forget(request, integration)
    return {"id": integration.id, "enabled": False, "orders_parked": parked}


@router.post("/integrations/{integration_id}/enable")
async def enable(integration_id: int, request: Request, db: DB, who: Operator) -> dict[str, Any]:
    """Book again: the orders that waited because of the pause are checked again and queued."""
    async with db.begin():
        integration = await visible_integration(db, who, integration_id, for_update=True)
        changed = not integration.enabled
        if changed:
            before = audit.snapshot(integration)
            integration.enabled = True
            integration.updated_at = utcnow()
            await audit.record(db, integration, action="enabled", actor=await actor(db, who), api_key_id=who.key_id,
                               before=before, after=audit.snapshot(integration))
        waiting = list((await db.execute(select(Order.id).where(
            Order.integration_id == integration.id, Order.state == OrderState.WAITING,
            Order.error_code == PAUSED).order_by(Order.id))).scalars())
    _forget(request, integration)
    outcome: dict[str, int] = {}
    for order_id in waiting:
        # One short transaction per order, as bulk reprocessing does.
        async with db.begin():
            order = await orders.get_order(db, order_id, for_update=True)
            row = await db.get(Integration, integration_id)
            if order is None or row is None or order.state != OrderState.WAITING or order.error_code != PAUSED:
                continue
            await orders.add_event_now(db, order.id, "enabled", "the integration was enabled again; re-checking")
            evaluation = await reevaluate(db, order, row)
            outcome[evaluation.state.value] = outcome.get(evaluation.state.value, 0) + 1
    relay = _res(request).relay
    if relay is not None and outcome.get(OrderState.QUEUED.value):
        relay.poke()
    return {"id": integration_id, "enabled": True, "orders_reevaluated": outcome}


@router.get("/integrations/{integration_id}/audit")
async def audit_log(integration_id: int, db: DB, who: Viewer,
                    limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> dict[str, Any]:
    integration = await visible_integration(db, who, integration_id)
    return {"integration_id": integration.id,
            "entries": [audit.entry_json(e) for e in await audit.entries(db, integration.id, limit)]}


@router.get("/divisions/{division}/vat-rules/proposal")
async def vat_proposal(division: int, db: DB, who: Viewer, connection_id: int | None = None,
                       home_country: str = "NL") -> dict[str, Any]:
    """Proposed `vat_rules` for an integration on this division (edit, then PATCH them in)."""
    connection = await reachable_connection(db, who, division, connection_id)
    loaded = await reference_refreshed_at(db, connection.id, division)
    if "vat_code" not in loaded:
        raise HTTPException(409, f"the VAT codes of division {division} are not loaded: POST "
                                 f"/api/v1/divisions/{division}/reference/refresh?connection_id={connection.id}")
    items = {}
    for kind in ("vat_code", "gl_account"):
        rows = (await db.execute(select(ReferenceItem).where(
            ReferenceItem.connection_id == connection.id, ReferenceItem.division == division,
            ReferenceItem.kind == kind))).scalars()
        items[kind] = [item_json(row) for row in rows]
    try:
        home = IntegrationSettings(home_country=home_country).home_country
    except ValidationError as exc:
        raise HTTPException(422, f"home_country {home_country!r} is not a country code") from exc
    proposal = propose_vat_rules(items["vat_code"], items["gl_account"], home)
    return {"connection_id": connection.id, "division": division, "home_country": home,
            "vat_rules": [rule.model_dump(mode="json") for rule in proposal.rules], "notes": proposal.notes}
