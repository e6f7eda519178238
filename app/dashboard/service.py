"""What the dashboard pages show, read with the caller's scope.

Orders come through the status API's own functions (app.orders.endpoints), so a page shows
exactly what `GET /api/v1/...` would answer for the same key. The few things the JSON API
has no call for yet (bookings per day, connections and cached reference data, names for ids)
are small scoped queries here.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.connections.models import ExactConnection, ReferenceItem
from app.connections.service import known_divisions
from app.exact.hosts import normalize_base_url
from app.integrations.models import Integration
from app.integrations.settings import IntegrationSettings
from app.orders import repository as orders
from app.orders.models import Order
from app.orders.states import ALL_STATES, REPROCESSABLE
from app.tenancy.auth import Principal
from app.tenancy.models import ApiKey, Tenant

try:
    DISPLAY_TZ: Any = ZoneInfo("Europe/Amsterdam")
    DISPLAY_TZ_NAME = "Europe/Amsterdam"
except ZoneInfoNotFoundError:  # pragma: no cover - a system without time zone data
    DISPLAY_TZ, DISPLAY_TZ_NAME = UTC, "UTC"

REPROCESSABLE_STATES = sorted(state.value for state in REPROCESSABLE)
ERROR_STATES = ["failed", "rejected"]

# One sentence per error code: what it means for the person looking at the order, and
# where to fix it. The stored message names the numbers; this says what to do.
EXPLANATIONS: dict[str, str] = {
    "totals_mismatch": "The order's total does not add up from its lines, shipping, costs and discounts. "
                       "Fix the order in the shop, or raise the integration's totals tolerance.",
    "icp_vat_number_missing": "A 0 % order to another EU country needs the business customer's VAT number.",
    "icp_vat_number_invalid": "The customer's VAT number is not valid for its country.",
    "eu_zero_vat_without_vat_number": "0 % VAT to an EU consumer is not allowed without a VAT number.",
    "export_vat_not_zero": "Orders shipped outside the EU must carry 0 % VAT on every line.",
    "vat_code_not_mapped": "The integration has no VAT rule for this country and rate. Add one under "
                           "Configuration, then press Process.",
    "vat_code_unknown_in_division": "The mapped VAT code does not exist in the Exact division. Correct the "
                                    "VAT rule under Configuration, then press Process.",
    "vat_codes_not_loaded": "The division's VAT codes were never loaded from Exact.",
    "duplicate_order_number": "An order with this number was already booked in this division.",
    "exact_rejected": "Exact Online refused the document. The reason is Exact's own words; fix the mapping "
                      "(journal, accounts, VAT codes) and press Process.",
    "needs_consent": "The Exact connection needs a new consent. Reconnect it, then press Process.",
    "no_exact_division": "The integration has no Exact connection or division yet.",
    "not_json": "The shop sent something that is not JSON. The delivery is kept; process it again after "
                "the source is fixed.",
    "not_an_order": "The shop's JSON is not an order this source understands; the failing field is named.",
    "internal_error": "Koppel could not check this order. Process it again; if it persists, report it.",
}


CHECK_LABELS: dict[str, str] = {"duplicate": "Duplicate", "totals": "Totals", "icp_vat_number": "ICP VAT number",
                                "export_vat": "Export VAT", "vat_mapping": "VAT mapping"}


def check_label(name: str) -> str:
    return CHECK_LABELS.get(name) or name.replace("_", " ").capitalize()


def explain(code: str | None) -> str | None:
    return EXPLANATIONS.get(code or "")


# --- formatting ------------------------------------------------------------------------------


def local(value: datetime | None) -> datetime | None:
    return value.astimezone(DISPLAY_TZ) if value is not None else None


def fmt_datetime(value: datetime | None, seconds: bool = False) -> str:
    if value is None:
        return "—"
    return local(value).strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")  # type: ignore[union-attr]


def fmt_date(value: datetime | None) -> str:
    return local(value).strftime("%Y-%m-%d") if value is not None else "—"  # type: ignore[union-attr]


_SYMBOLS = {"EUR": "€", "GBP": "£", "USD": "$"}


def fmt_money(amount: Decimal | str | None, currency: str | None = None) -> str:
    if amount is None or amount == "":
        return "—"
    value = Decimal(str(amount))
    text = f"{value:,.2f}"
    symbol = _SYMBOLS.get((currency or "").upper())
    if symbol:
        return f"{symbol}\u00a0{text}"
    return f"{currency} {text}" if currency else text


def pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False, default=str)


def pretty_body(raw: str) -> str:
    """A delivery body as text: indented when it is JSON, as received when it is not."""
    try:
        return pretty_json(json.loads(raw))
    except ValueError:
        return raw


def exact_link(base_url: str | None, division: int | None) -> str | None:
    """Where the booked document lives in Exact Online.

    Exact's pages are addressed per division (``/docs/…aspx?_Division_=…``); the link opens
    the division, where the entry is found by the number shown next to it. Exact has no
    stable public deep link to one sales entry, so none is made up here.
    """
    if not base_url or not division:
        return None
    try:
        base = normalize_base_url(base_url)
    except ValueError:
        return None
    return f"{base}/docs/MenuPortal.aspx?_Division_={int(division)}"


# --- who is signed in ---------------------------------------------------------------------


@dataclass(frozen=True)
class Identity:
    scope: str
    key_name: str
    key_prefix: str
    tenant_name: str | None  # None: the installation admin key

    @property
    def label(self) -> str:
        return self.tenant_name or "All tenants"


async def identity(db: AsyncSession, who: Principal) -> Identity:
    key = await db.get(ApiKey, who.key_id)
    tenant = await db.get(Tenant, who.tenant_id) if who.tenant_id is not None else None
    return Identity(scope=who.scope, key_name=key.name if key else "", key_prefix=key.prefix if key else "",
                    tenant_name=tenant.name if tenant else None)


# --- integrations and connections ---------------------------------------------------------


@dataclass
class IntegrationView:
    id: int
    name: str
    source: str
    tenant_id: int
    tenant_name: str
    enabled: bool
    key: str
    connection_id: int | None
    connection_name: str | None
    base_url: str | None
    division: int | None
    settings: IntegrationSettings | None
    settings_error: str | None = None

    @property
    def webhook_path(self) -> str:
        return f"/webhooks/{self.source}/{self.key}"

    @property
    def exact_link(self) -> str | None:
        return exact_link(self.base_url, self.division)


async def integrations(db: AsyncSession, who: Principal) -> dict[int, IntegrationView]:
    """The integrations this key sees, by id, with their tenant and connection."""
    query = (
        select(Integration, Tenant.name, ExactConnection.name, ExactConnection.base_url)
        .join(Tenant, Tenant.id == Integration.tenant_id)
        .outerjoin(ExactConnection, ExactConnection.id == Integration.connection_id)
        .order_by(Integration.name, Integration.id)
    )
    if who.tenant_ids is not None:
        query = query.where(Integration.tenant_id.in_(who.tenant_ids))
    found: dict[int, IntegrationView] = {}
    for integration, tenant_name, connection_name, base_url in (await db.execute(query)).all():
        try:
            settings, problem = IntegrationSettings.model_validate(integration.settings or {}), None
        except ValueError as exc:
            settings, problem = None, str(exc)
        found[integration.id] = IntegrationView(
            id=integration.id, name=integration.name, source=integration.source, tenant_id=integration.tenant_id,
            tenant_name=tenant_name, enabled=integration.enabled, key=integration.key,
            connection_id=integration.connection_id, connection_name=connection_name, base_url=base_url,
            division=integration.division, settings=settings, settings_error=problem,
        )
    return found


@dataclass
class DivisionView:
    division: int
    description: str | None = None
    available: bool | None = None  # None: not in the connection's division list (never read)
    blocked: bool = False
    integrations: list[IntegrationView] = field(default_factory=list)
    # kind → (number of cached items, last refreshed)
    reference: dict[str, tuple[int, datetime | None]] = field(default_factory=dict)

    @property
    def refreshed_at(self) -> datetime | None:
        times = [at for _, at in self.reference.values() if at is not None]
        return max(times) if times else None


@dataclass
class ConnectionView:
    id: int
    name: str
    tenant_name: str
    base_url: str
    state: str
    state_reason: str | None
    exact_user_name: str | None
    refreshed_at: datetime | None
    access_expires_at: datetime | None
    divisions: list[DivisionView]


async def connections(db: AsyncSession, who: Principal,
                      visible: dict[int, IntegrationView]) -> list[ConnectionView]:
    query = (select(ExactConnection, Tenant.name).join(Tenant, Tenant.id == ExactConnection.tenant_id)
             .order_by(ExactConnection.name, ExactConnection.id))
    if who.tenant_ids is not None:
        query = query.where(ExactConnection.tenant_id.in_(who.tenant_ids))
    rows = (await db.execute(query)).all()
    ids = [connection.id for connection, _ in rows]
    known: dict[int, dict[int, Any]] = {}
    for connection_id in ids:  # the divisions the connection's Exact user may open
        known[connection_id] = await known_divisions(db, connection_id)
    reference: dict[tuple[int, int], dict[str, tuple[int, datetime | None]]] = {}
    if ids:
        counted = await db.execute(
            select(ReferenceItem.connection_id, ReferenceItem.division, ReferenceItem.kind, func.count(),
                   func.max(ReferenceItem.refreshed_at))
            .where(ReferenceItem.connection_id.in_(ids))
            .group_by(ReferenceItem.connection_id, ReferenceItem.division, ReferenceItem.kind))
        for connection_id, division, kind, count, refreshed in counted.all():
            if isinstance(refreshed, str):  # SQLite hands an aggregate back as text
                refreshed = datetime.fromisoformat(refreshed).replace(tzinfo=UTC)
            reference.setdefault((connection_id, division), {})[kind] = (int(count), refreshed)
    result: list[ConnectionView] = []
    for connection, tenant_name in rows:
        divisions: dict[int, DivisionView] = {
            code: DivisionView(code, description=row.description, available=row.available, blocked=row.blocked)
            for code, row in known.get(connection.id, {}).items()
        }
        for integration in visible.values():
            if integration.connection_id == connection.id and integration.division is not None:
                divisions.setdefault(integration.division, DivisionView(integration.division)).integrations.append(
                    integration)
        for (connection_id, division), kinds in reference.items():
            if connection_id == connection.id:
                divisions.setdefault(division, DivisionView(division)).reference = kinds
        result.append(ConnectionView(
            id=connection.id, name=connection.name, tenant_name=tenant_name, base_url=connection.base_url,
            state=connection.state, state_reason=connection.state_reason,
            exact_user_name=connection.exact_user_name, refreshed_at=connection.refreshed_at,
            access_expires_at=connection.access_expires_at,
            divisions=[divisions[number] for number in sorted(divisions)],
        ))
    return result


async def connection_names(db: AsyncSession, who: Principal) -> dict[int, str]:
    """Connection id → its name, for the Exact budget table."""
    query = select(ExactConnection.id, ExactConnection.name)
    if who.tenant_ids is not None:
        query = query.where(ExactConnection.tenant_id.in_(who.tenant_ids))
    return {int(row[0]): str(row[1]) for row in (await db.execute(query)).all()}


# --- orders -------------------------------------------------------------------------------


def scoped(query: Any, who: Principal) -> Any:
    if who.tenant_ids is not None:
        query = query.where(Order.integration_id.in_(
            select(Integration.id).where(Integration.tenant_id.in_(who.tenant_ids))))
    return query


async def orders_by_id(db: AsyncSession, who: Principal, ids: Sequence[int]) -> list[Order]:
    """The visible ones among these orders, in the order asked for."""
    if not ids:
        return []
    rows = (await db.execute(scoped(select(Order).where(Order.id.in_(list(ids))), who))).scalars().all()
    by_id = {row.id: row for row in rows}
    return [by_id[order_id] for order_id in ids if order_id in by_id]


async def state_counts(db: AsyncSession, who: Principal) -> dict[str, int]:
    totals = {state: 0 for state in ALL_STATES}
    for _, state, count in await orders.counts(db, orders.OrderFilter(tenant_ids=who.tenant_ids)):
        totals[state] = totals.get(state, 0) + count
    return totals


@dataclass(frozen=True)
class DayCount:
    day: date
    count: int


async def bookings_per_day(db: AsyncSession, who: Principal, days: int = 14,
                           now: datetime | None = None) -> list[DayCount]:
    """Orders booked on each of the last `days` days (local days, today last).

    Counted per UTC hour in the database (at most 24 × days rows), then put on local days:
    the display zone is a whole number of hours from UTC, so no hour straddles two days.
    """
    now = now or datetime.now(UTC)
    today = now.astimezone(DISPLAY_TZ).date()
    first = today - timedelta(days=days - 1)
    start = datetime.combine(first, time(0), DISPLAY_TZ).astimezone(UTC)
    if db.bind.dialect.name == "postgresql":
        hour = func.to_char(func.timezone("UTC", Order.booked_at), "YYYY-MM-DD HH24")
    else:
        hour = func.strftime("%Y-%m-%d %H", Order.booked_at)
    query = scoped(select(hour, func.count()).where(Order.state == "booked", Order.booked_at >= start), who)
    counts = {first + timedelta(days=n): 0 for n in range(days)}
    for bucket, count in (await db.execute(query.group_by(hour))).all():
        at = datetime.strptime(str(bucket), "%Y-%m-%d %H").replace(tzinfo=UTC).astimezone(DISPLAY_TZ)
        if at.date() in counts:
            counts[at.date()] += int(count)
    return [DayCount(day, count) for day, count in counts.items()]


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    count: int
    label: str
    title: str


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    bars: list[Bar]
    gridlines: list[tuple[float, int]]  # (y, value)
    baseline: float
    total: int


def bar_chart(series: list[DayCount], *, width: int = 640, height: int = 180) -> Chart:
    """Geometry of a small SVG bar chart; the template only draws it."""
    top, bottom, left, right = 14, 28, 30, 6
    plot_h = height - top - bottom
    peak = max([point.count for point in series] + [1])
    step = max(1, -(-peak // 4))  # four gridlines at most, at whole numbers
    ceiling = step * -(-peak // step)
    slot = (width - left - right) / max(1, len(series))
    bars = []
    for n, point in enumerate(series):
        h = plot_h * point.count / ceiling
        bars.append(Bar(
            x=round(left + n * slot + slot * 0.15, 1), y=round(top + plot_h - h, 1), width=round(slot * 0.7, 1),
            height=round(h, 1), count=point.count, label=point.day.strftime("%d %b").lstrip("0"),
            title=f"{point.day.strftime('%a %d %b')}: {point.count} booked",
        ))
    gridlines = [(round(top + plot_h - plot_h * value / ceiling, 1), value)
                 for value in range(0, ceiling + 1, step)]
    return Chart(width=width, height=height, bars=bars, gridlines=gridlines, baseline=top + plot_h,
                 total=sum(point.count for point in series))


# --- forms ---------------------------------------------------------------------------------


def parse_day(value: str | None) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def day_start(day: date | None) -> datetime | None:
    """Local midnight at the start of `day`, in UTC."""
    return datetime.combine(day, time(0), DISPLAY_TZ).astimezone(UTC) if day else None


def parse_ids(values: Sequence[str], limit: int = 1000) -> list[int]:
    ids: list[int] = []
    for value in values:
        for part in str(value).split(","):
            part = part.strip()
            if part.isdigit() and int(part) not in ids:
                ids.append(int(part))
    return ids[:limit]
