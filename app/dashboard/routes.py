"""The operator dashboard at /dashboard: server-rendered pages over the status API.

Signed in with an API key (kept encrypted in a signed, http-only, SameSite=Strict cookie; see
app.dashboard.session), scoped exactly like the JSON API because the pages call the API's own
functions with the signed-in key's Principal. Every POST carries the session's CSRF token.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode, urlsplit

import jinja2
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy.ext.asyncio import AsyncSession

from app.connections import endpoints as connections_api
from app.dashboard import service, settings_form
from app.dashboard import session as browser
from app.deps import DB, Resources, resources
from app.exact.ratelimit import DEFAULT_DAILY_LIMIT
from app.integrations import audit
from app.integrations import endpoints as integrations_api
from app.integrations import repository as integration_rows
from app.orders import endpoints as orders_api
from app.orders import repository as order_rows
from app.orders.reprocess import NotReprocessable, reprocess
from app.orders.schemas import OrderSummary
from app.tenancy.auth import Principal, authenticate

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
PAGE_SIZE = 50

router = APIRouter(prefix="/dashboard", include_in_schema=False)
Res = Annotated[Resources, Depends(resources)]

_templates = jinja2.Environment(
    loader=jinja2.FileSystemLoader(HERE / "templates"),
    autoescape=jinja2.select_autoescape(["html"], default=True),
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_templates.filters.update(
    datetime=service.fmt_datetime, date=service.fmt_date, money=service.fmt_money,
    pretty_json=service.pretty_json, pretty_body=service.pretty_body, explain=service.explain,
    check_label=service.check_label,
    number=lambda value: f"{value:,}" if isinstance(value, int) else value,
)


def _static_version() -> str:
    digest = hashlib.sha256()
    for path in sorted(STATIC_DIR.glob("*")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:10]


_templates.globals.update(
    static_version=_static_version(), tz_name=service.DISPLAY_TZ_NAME, csrf_field=browser.CSRF_FIELD,
    reprocessable_states=service.REPROCESSABLE_STATES,
    # For the live updates: texts the script shows next to a changed error code or check.
    page_data={"explanations": service.EXPLANATIONS, "checks": service.CHECK_LABELS},
    favicon=("data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 32 32'%3E%3Crect width='32' "
             "height='32' rx='7' fill='%231f5bd8'/%3E%3Cpath d='M10 7h4v7.5L20.5 7H25l-7.2 8.2L25.5 25H20.7l-5.6-7.3L14 "
             "18.9V25h-4z' fill='%23fff'/%3E%3C/svg%3E"),
)

# Content-Security-Policy: only this origin's scripts and styles, nothing inline, no frames.
_SECURITY_HEADERS = {
    "Content-Security-Policy": ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                                "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def _secure(response: Response) -> Response:
    for name, value in _SECURITY_HEADERS.items():
        response.headers[name] = value
    return response


# --- who is signed in -------------------------------------------------------------------------


class SignInRequired(Exception):
    def __init__(self, expired: bool = False) -> None:
        super().__init__("sign in required")
        self.expired = expired


class DashboardError(Exception):
    """An HTML error page (404, 403, …) inside the dashboard's layout."""

    def __init__(self, status: int, title: str, message: str, signed: Signed | None = None) -> None:
        super().__init__(message)
        self.status, self.title, self.message, self.signed = status, title, message, signed


@dataclass
class Signed:
    who: Principal
    session: browser.BrowserSession  # the cookie's contents
    me: service.Identity
    nav: dict[str, int]

    @property
    def can_process(self) -> bool:
        return self.who.allows("operator")


def _secret(res: Resources) -> str:
    return res.settings.secret_key.get_secret_value()


async def signed_in(request: Request, db: DB, res: Res) -> Signed:
    current = browser.read(request, _secret(res))
    key = browser.api_key(_secret(res), current) if current is not None else None
    who = await authenticate(db, key) if key else None
    if who is None:
        await db.rollback()
        raise SignInRequired(expired=current is not None and current.signed_in)
    assert current is not None
    me = await service.identity(db, who)
    nav = await service.state_counts(db, who)
    await db.rollback()
    return Signed(who=who, session=current, me=me, nav=nav)


SignedIn = Annotated[Signed, Depends(signed_in)]


def _render(request: Request, template: str, context: Mapping[str, Any], *, status: int = 200,
            signed: Signed | None = None) -> HTMLResponse:
    values: dict[str, Any] = {"request": request, "signed": signed, "me": signed.me if signed else None,
                              "nav": signed.nav if signed else {}, "csrf": signed.session.csrf if signed else "",
                              "can_process": bool(signed and signed.can_process), "active": ""}
    values.update(context)
    html = _templates.get_template(template).render(values)
    return _secure(HTMLResponse(html, status_code=status))  # type: ignore[return-value]


def _redirect(url: str) -> RedirectResponse:
    return _secure(RedirectResponse(url, status_code=303))  # type: ignore[return-value]


def safe_next(value: object, default: str = "/dashboard") -> str:
    """A redirect target inside the dashboard only (no other host, no scheme, no `//`)."""
    if not isinstance(value, str) or not value.startswith("/dashboard") or "\\" in value:
        return default
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or value.startswith("//"):
        return default
    return value


async def _checked_form(request: Request, signed: Signed) -> Any:
    form = await request.form()
    if not browser.csrf_ok(request, signed.session, form.get(browser.CSRF_FIELD)):
        raise DashboardError(403, "Request refused",
                             "The form's security token is missing or out of date (CSRF check). "
                             "Reload the page and try again.", signed)
    return form


def _require_operator(signed: Signed, doing: str = "process orders") -> None:
    if not signed.can_process:
        raise DashboardError(403, "Not allowed",
                             f"This API key's scope '{signed.who.scope}' may only look. To {doing} you need "
                             "an operator key.", signed)


# --- sign in and out -----------------------------------------------------------------------------


@router.get("/signin")
async def signin_page(request: Request, res: Res, next: str = "/dashboard", expired: str = "") -> Response:
    current = browser.read(request, _secret(res))
    if current is None:
        # An anonymous session carries the CSRF token for the sign-in form.
        current = browser.new_session(_secret(res))
    response = _render(request, "signin.html", {"next": safe_next(next), "error": None, "expired": expired == "1",
                                                 "csrf": current.csrf})
    browser.write(response, request, _secret(res), current)
    return response


@router.post("/signin")
async def signin(request: Request, db: DB, res: Res) -> Response:
    current = browser.read(request, _secret(res))
    form = await request.form()
    target = safe_next(form.get("next"))
    if not browser.csrf_ok(request, current, form.get(browser.CSRF_FIELD)):
        fresh = browser.new_session(_secret(res))
        response = _render(request, "signin.html", {
            "next": target, "expired": False, "csrf": fresh.csrf,
            "error": "The sign-in form was out of date. Please try again."}, status=403)
        browser.write(response, request, _secret(res), fresh)
        return response
    assert current is not None
    key = str(form.get("api_key") or "").strip()
    who = await authenticate(db, key) if key else None
    await db.rollback()
    if who is None:
        response = _render(request, "signin.html", {
            "next": target, "expired": False, "csrf": current.csrf,
            "error": "That API key is unknown or revoked."}, status=401)
        return response
    # A new session (new CSRF token) on every sign-in: nothing from before it carries over.
    response = _redirect(target)
    browser.write(response, request, _secret(res), browser.new_session(_secret(res), key))
    return response


@router.post("/signout")
async def signout(request: Request, res: Res) -> Response:
    current = browser.read(request, _secret(res))
    form = await request.form()
    if current is not None and current.signed_in and not browser.csrf_ok(request, current,
                                                                          form.get(browser.CSRF_FIELD)):
        raise DashboardError(403, "Request refused", "The form's security token is missing or out of date.")
    response = _redirect("/dashboard/signin")  # a session that already ended has nothing to end
    browser.clear(response, request)
    return response


# --- overview ---------------------------------------------------------------------------------


@router.get("")
async def overview(request: Request, signed: SignedIn, db: DB, res: Res) -> Response:
    stats = await orders_api.stats(db, signed.who, res)
    visible = await service.integrations(db, signed.who)
    per_day = await service.bookings_per_day(db, signed.who)
    names = await service.connection_names(db, signed.who)
    await db.rollback()
    budget = [{**row, "connection_name": names.get(row["connection_id"], f"connection {row['connection_id']}"),
               "max": max(DEFAULT_DAILY_LIMIT, row["calls_left_today"])} for row in stats.exact_budget]
    return _render(request, "overview.html", {
        "active": "overview", "stats": stats, "integrations": visible, "chart": service.bar_chart(per_day),
        "per_day": per_day, "budget": budget,
    }, signed=signed)


# --- order lists -----------------------------------------------------------------------------


@dataclass
class ListFilters:
    q: str
    integration: int | None
    since: str
    until: str
    cursor: str | None

    def api_args(self) -> dict[str, Any]:
        since_day, until_day = service.parse_day(self.since), service.parse_day(self.until)
        return {
            "integration_id": self.integration, "q": self.q or None, "since": service.day_start(since_day),
            "until": service.day_start(until_day + timedelta(days=1)) if until_day else None,
        }

    def query(self, **changes: Any) -> str:
        values = {"q": self.q, "integration": self.integration or "", "since": self.since, "until": self.until}
        values.update(changes)
        return urlencode({k: v for k, v in values.items() if v not in ("", None)})


def _filters(q: str, integration: str, since: str, until: str, cursor: str | None) -> ListFilters:
    return ListFilters(q=q.strip()[:200], integration=int(integration) if integration.isdigit() else None,
                       since=since if service.parse_day(since) else "",
                       until=until if service.parse_day(until) else "", cursor=cursor or None)


async def _page(db: AsyncSession, signed: Signed, states: list[str], flt: ListFilters,
                limit: int | None = None) -> tuple[list[OrderSummary], str | None, str | None]:
    """One page of orders through the status API's own list function: (rows, next cursor, problem)."""
    try:
        page = await orders_api.list_orders(db=db, who=signed.who, state=states, limit=limit or PAGE_SIZE,
                                            cursor=flt.cursor,
                                            **flt.api_args())
    except HTTPException as exc:
        return [], None, str(exc.detail)
    finally:
        await db.rollback()
    return page.orders, page.next_cursor, None


def list_filters(q: str = "", integration: str = "", since: str = "", until: str = "",
                 cursor: str | None = None) -> ListFilters:
    return _filters(q, integration, since, until, cursor)


FilterArgs = Annotated[ListFilters, Depends(list_filters)]


@router.get("/report")
async def report(request: Request, signed: SignedIn, db: DB, flt: FilterArgs) -> Response:
    visible = await service.integrations(db, signed.who)
    rows, next_cursor, problem = await _page(db, signed, ["booked"], flt)
    return _render(request, "report.html", {
        "active": "report", "orders": rows, "integrations": visible, "filters": flt, "next_cursor": next_cursor,
        "problem": problem,
    }, signed=signed)


@router.get("/errors")
async def errors(request: Request, signed: SignedIn, db: DB, flt: FilterArgs,
                 processed: str = "", skipped: str = "") -> Response:
    visible = await service.integrations(db, signed.who)
    rows, next_cursor, problem = await _page(db, signed, service.ERROR_STATES, flt)
    watched = [OrderSummary.model_validate(row) for row in
               await service.orders_by_id(db, signed.who, service.parse_ids([processed], limit=100))]
    not_done = [OrderSummary.model_validate(row) for row in
                await service.orders_by_id(db, signed.who, service.parse_ids([skipped], limit=100))]
    await db.rollback()
    return _render(request, "errors.html", {
        "active": "errors", "orders": rows, "integrations": visible, "filters": flt, "next_cursor": next_cursor,
        "problem": problem, "watched": watched, "skipped": not_done,
        "here": request.url.path + (f"?{request.url.query}" if request.url.query else ""),
    }, signed=signed)


@router.get("/open")
async def open_orders(request: Request, signed: SignedIn, db: DB, flt: FilterArgs) -> Response:
    visible = await service.integrations(db, signed.who)
    rows, next_cursor, problem = await _page(db, signed, ["open"], flt)
    waiting, _, _ = await _page(db, signed, ["waiting"], ListFilters("", flt.integration, "", "", None), limit=100)
    return _render(request, "open.html", {
        "active": "open", "orders": rows, "waiting": waiting, "integrations": visible, "filters": flt,
        "next_cursor": next_cursor, "problem": problem,
    }, signed=signed)


# --- one order -----------------------------------------------------------------------------------


@router.get("/orders/{order_id}")
async def order_page(request: Request, order_id: int, signed: SignedIn, db: DB) -> Response:
    try:
        detail = await orders_api.get_order(order_id, db, signed.who)
    except HTTPException as exc:
        raise DashboardError(404, "Order not found",
                             f"There is no order {order_id} that this API key may see.", signed) from exc
    visible = await service.integrations(db, signed.who)
    await db.rollback()
    return _render(request, "order.html", {
        "active": "errors" if detail.state in service.ERROR_STATES else "", "order": detail,
        "integration": visible.get(detail.integration_id), "explanation": service.explain(detail.error_code),
    }, signed=signed)


async def _process_one(db: AsyncSession, who: Principal, order_id: int) -> str:
    """Re-check and queue one order, as `POST /api/v1/orders/{id}/reprocess` does. Returns its state."""
    async with db.begin():
        order = await orders_api.visible_order(db, who, order_id)  # 404 for another tenant's order
        order = await order_rows.get_order(db, order.id, for_update=True)
        assert order is not None
        integration = await integration_rows.get(db, order.integration_id)
        assert integration is not None
        done = await reprocess(db, order, integration, who=f"the dashboard (API key {who.key_id})")
    return done.state


@router.post("/orders/{order_id}/process")
async def process_order(request: Request, order_id: int, signed: SignedIn, db: DB, res: Res) -> Response:
    form = await _checked_form(request, signed)
    _require_operator(signed)
    try:
        await _process_one(db, signed.who, order_id)
    except HTTPException as exc:
        raise DashboardError(404, "Order not found",
                             f"There is no order {order_id} that this API key may see.", signed) from exc
    except NotReprocessable:
        # Booked, being booked or queued already (a second click, or someone else was quicker):
        # back to the page, which shows where the order is now.
        done = False
    else:
        done = True
        if res.relay is not None:
            res.relay.poke()
    target = safe_next(form.get("next"), f"/dashboard/orders/{order_id}")
    if target.startswith("/dashboard/errors"):
        target = _with_outcome(target, [order_id] if done else [], [] if done else [order_id])
    return _redirect(target)


@router.post("/orders/process")
async def process_orders(request: Request, signed: SignedIn, db: DB, res: Res) -> Response:
    form = await _checked_form(request, signed)
    _require_operator(signed)
    ids = service.parse_ids([str(value) for value in form.getlist("order_id")], limit=500)
    done: list[int] = []
    skipped: list[int] = []
    for order_id in ids:
        # One short transaction per order, so one order that cannot be processed never blocks the rest.
        try:
            await _process_one(db, signed.who, order_id)
            done.append(order_id)
        except (HTTPException, NotReprocessable):
            skipped.append(order_id)
    if res.relay is not None and done:
        res.relay.poke()
    return _redirect(_with_outcome(safe_next(form.get("next"), "/dashboard/errors"), done, skipped))


def _with_outcome(target: str, done: list[int], skipped: list[int]) -> str:
    parts = urlsplit(target)
    keep = [pair for pair in parts.query.split("&") if pair and not pair.startswith(("processed=", "skipped="))]
    keep.append(urlencode({"processed": ",".join(map(str, done))}))
    if skipped:
        keep.append(urlencode({"skipped": ",".join(map(str, skipped))}))
    return f"{parts.path}?{'&'.join(keep)}"


# --- configuration -------------------------------------------------------------------------------

async def _configuration(request: Request, signed: Signed, db: AsyncSession, *, status: int = 200,
                         refused: dict[int, tuple[Any, list[tuple[str, str]]]] | None = None,
                         notice: str | None = None) -> Response:
    """The Configuration page; `refused` keeps a refused form's values and the reasons, per integration."""
    refused = refused or {}
    visible = await service.integrations(db, signed.who)
    connections = await service.connections(db, signed.who, visible)
    forms: dict[int, list[settings_form.FormField]] = {}
    history: dict[int, list[Any]] = {}
    for integration in visible.values():
        if integration.settings is not None:
            submitted = refused.get(integration.id, (None, []))[0]
            forms[integration.id] = settings_form.fields(integration.settings, submitted)
        history[integration.id] = [audit.entry_json(entry) for entry in await audit.entries(db, integration.id, 5)]
    await db.rollback()
    return _render(request, "configuration.html", {
        "active": "configuration", "integrations": visible, "connections": connections, "forms": forms,
        "history": history, "refused": {k: v[1] for k, v in refused.items()}, "notice": notice,
        "can_connect": signed.who.allows("admin"),
    }, signed=signed, status=status)


_CONFIG_NOTICES = {"saved": "Settings of {name} saved.", "unchanged": "Nothing changed in {name}'s settings.",
                   "paused": "{name} is paused: orders are received and checked, but not booked.",
                   "enabled": "{name} books again; orders parked by the pause were checked again."}


@router.get("/configuration")
async def configuration(request: Request, signed: SignedIn, db: DB, done: str = "", integration: str = "") -> Response:
    notice = None
    if done in _CONFIG_NOTICES and integration.isdigit():
        visible = await service.integrations(db, signed.who)
        found = visible.get(int(integration))
        if found is not None:
            notice = _CONFIG_NOTICES[done].format(name=found.name)
    return await _configuration(request, signed, db, notice=notice)


def _config_done(integration_id: int, done: str) -> RedirectResponse:
    return _redirect(f"/dashboard/configuration?{urlencode({'done': done, 'integration': integration_id})}"
                     f"#integration-{integration_id}")


@router.post("/integrations/{integration_id}/settings")
async def save_settings(request: Request, integration_id: int, signed: SignedIn, db: DB) -> Response:
    """Edit settings through `PATCH /api/v1/integrations/{id}` (validated against the division's
    reference data and written to the audit log by the configuration API)."""
    form = await _checked_form(request, signed)
    _require_operator(signed, "change settings")
    visible = await service.integrations(db, signed.who)
    await db.rollback()
    current = visible.get(integration_id)
    if current is None:
        raise DashboardError(404, "Integration not found",
                             f"There is no integration {integration_id} that this API key may see.", signed)
    if current.settings is None:
        raise DashboardError(409, "Settings cannot be edited here",
                             f"The stored settings are not valid ({current.settings_error}); fix them through the "
                             "configuration API.", signed)
    try:
        changed = settings_form.changes(current.settings, form)
    except settings_form.FormProblems as exc:
        return await _configuration(request, signed, db, status=422, refused={integration_id: (form, exc.problems)})
    if not changed:
        return _config_done(integration_id, "unchanged")
    try:
        answer = await integrations_api.update_integration(
            integration_id, integrations_api.IntegrationPatch(settings=changed), request, db, signed.who)
    except HTTPException as exc:
        await db.rollback()
        problems = [("", str(exc.detail))]
        return await _configuration(request, signed, db, status=exc.status_code if exc.status_code >= 400 else 422,
                                    refused={integration_id: (form, problems)})
    if isinstance(answer, Response) and answer.status_code >= 400:
        await db.rollback()
        body = json.loads(bytes(answer.body))
        problems = [(str(e.get("field", "")).removeprefix("settings."), str(e.get("reason", "")))
                    for e in body.get("errors", [])] or [("", str(body.get("detail", "refused")))]
        return await _configuration(request, signed, db, status=answer.status_code,
                                    refused={integration_id: (form, problems)})
    return _config_done(integration_id, "saved")


@router.post("/integrations/{integration_id}/{action}")
async def pause_or_enable(request: Request, integration_id: int, action: str, signed: SignedIn, db: DB) -> Response:
    """Pause (receive and check, but do not book) or enable an integration, through the configuration API."""
    await _checked_form(request, signed)
    if action not in ("pause", "enable"):
        raise DashboardError(404, "Not found", f"There is no action '{action}'.", signed)
    _require_operator(signed, f"{action} integrations")
    act = integrations_api.pause if action == "pause" else integrations_api.enable
    try:
        await act(integration_id, request, db, signed.who)
    except HTTPException as exc:
        raise DashboardError(exc.status_code, "Not done", str(exc.detail), signed) from exc
    return _config_done(integration_id, "paused" if action == "pause" else "enabled")


@router.get("/connections/{connection_id}/connect")
async def connect(request: Request, connection_id: int, signed: SignedIn, db: DB) -> Response:
    """Off to Exact's consent page, through the configuration API's own authorize step (which
    signs the state and, like `GET /api/v1/connections/{id}/authorize`, needs an admin key)."""
    if not signed.who.allows("admin"):
        raise DashboardError(403, "Not allowed", f"Connecting Exact Online needs an admin key; this key's scope is "
                                                 f"'{signed.who.scope}'.", signed)
    try:
        return await connections_api.authorize(connection_id, request, db, signed.who)
    except HTTPException as exc:
        raise DashboardError(404, "Connection not found",
                             f"There is no connection {connection_id} that this API key may see.", signed) from exc


# --- JSON for the pages' live updates (the status API's shapes, authenticated by the cookie) -----


@router.get("/api/orders/{order_id}")
async def order_json(order_id: int, signed: SignedIn, db: DB) -> Response:
    detail = await orders_api.get_order(order_id, db, signed.who)  # 404 exactly as the API
    await db.rollback()
    return _secure(JSONResponse(detail.model_dump(mode="json")))


@router.get("/api/orders")
async def orders_json(signed: SignedIn, db: DB, id: Annotated[list[str], Query()] = []) -> Response:  # noqa: B006
    rows = await service.orders_by_id(db, signed.who, service.parse_ids(id, limit=200))
    body = {"orders": [OrderSummary.model_validate(row).model_dump(mode="json") for row in rows]}
    await db.rollback()
    return _secure(JSONResponse(body))


# --- wiring ----------------------------------------------------------------------------------------


async def _sign_in_required(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, SignInRequired)
    if request.url.path.startswith("/dashboard/api/"):
        return _secure(JSONResponse({"detail": "sign in to the dashboard"}, status_code=401))
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    query = {"next": safe_next(target) if request.method == "GET" else "/dashboard"}
    if exc.expired:
        query["expired"] = "1"
    response = _redirect(f"/dashboard/signin?{urlencode(query)}")
    if exc.expired:
        browser.clear(response, request)
    return response


async def _dashboard_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DashboardError)
    return _render(request, "error.html", {"title": exc.title, "message": exc.message, "status": exc.status},
                   status=exc.status, signed=exc.signed)


def install(app: FastAPI) -> None:
    """Add the dashboard to the API process: its pages, its static files, its error pages."""
    app.include_router(router)
    app.mount("/dashboard/static", StaticFiles(directory=STATIC_DIR), name="dashboard-static")
    app.add_exception_handler(SignInRequired, _sign_in_required)
    app.add_exception_handler(DashboardError, _dashboard_error)
