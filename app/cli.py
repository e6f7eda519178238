"""`koppel`: run the service, migrate, and administer it from a shell."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any

import typer

from app.settings import Settings, get_settings

cli = typer.Typer(help="Koppel: books webshop and POS orders into Exact Online.", no_args_is_help=True)
admin = typer.Typer(help="Tenants, integrations and API keys.", no_args_is_help=True)
orders_cli = typer.Typer(help="Find and reprocess orders.", no_args_is_help=True)
cli.add_typer(admin, name="admin")
cli.add_typer(orders_cli, name="orders")
reference_cli = typer.Typer(help="Exact reference data (VAT codes, GL accounts, journals, …).", no_args_is_help=True)
cli.add_typer(reference_cli, name="reference")


@reference_cli.command("refresh")
def reference_refresh(
    connection: Annotated[int, typer.Option(help="Exact connection id")],
    division: Annotated[int, typer.Option(help="Exact division number")],
) -> None:
    """Reload one division's reference data from Exact (through the shared rate budget)."""
    from app.connections.service import refresh_reference_once
    from app.exact.errors import ExactError

    try:
        counts = asyncio.run(refresh_reference_once(_settings(), connection, division))
    except (ValueError, LookupError, ExactError) as exc:
        typer.echo(f"not refreshed: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(json.dumps({"connection_id": connection, "division": division, "counts": counts}))


def _settings() -> Settings:
    return get_settings()


@cli.command()
def migrate() -> None:
    """Bring the database schema to the newest migration."""
    from app.db.migrate import upgrade

    settings = _settings()
    upgrade(settings.database_url)
    typer.echo("database schema is up to date")


@cli.command()
def api(host: str = "127.0.0.1", port: int = 8000, workers: int = 1) -> None:
    """Serve the webhook intake, the status API and the dashboard."""
    import uvicorn

    from app.observability import configure_logging

    settings = _settings()
    configure_logging(settings.log_level, settings.log_json)
    uvicorn.run("app.asgi:app", host=host, port=port, workers=workers, log_level="warning",
                proxy_headers=True)


@cli.command()
def worker(burst: Annotated[bool, typer.Option(help="Exit when the queue is empty")] = False) -> None:
    """Run one booking worker (any number may run, on any hosts)."""
    from arq.worker import Worker

    from workers.settings import worker_settings

    settings = _settings()
    if not settings.redis_url:
        raise typer.BadParameter("set KOPPEL_REDIS_URL (or use `koppel run` for the embedded mode)")
    Worker(**worker_settings(burst=burst)).run()


@cli.command()
def sandbox(host: str = "127.0.0.1", port: int = 8090, log_level: str = "info") -> None:
    """Serve the bundled Exact Online sandbox (a faithful simulator, for trying Koppel out)."""
    from app.sandbox.server import run

    run(host=host, port=port, log_level=log_level)


@cli.command()
def run(
    port: Annotated[int, typer.Option(help="API port")] = 8000,
    sandbox_port: Annotated[int, typer.Option(help="Exact sandbox port")] = 8090,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes")] = 1,
) -> None:
    """Everything on one machine: SQLite, a private Redis, the sandbox, the API and workers."""
    from app.embedded import run as run_embedded

    raise typer.Exit(run_embedded(port=port, sandbox_port=sandbox_port, workers=workers))


@cli.command()
def demo(
    url: Annotated[str | None, typer.Option(help="Koppel's API (default: the one in var/demo.json)")] = None,
    wait: Annotated[float, typer.Option(help="Seconds to wait for the orders to settle")] = 30.0,
    set_up: Annotated[bool, typer.Option("--set-up", help="First make the demo tenant, sandbox connection, "
                                                        "integration and key (what `koppel run` does)")] = False,
    sandbox_url: Annotated[str, typer.Option(help="With --set-up: the Exact sandbox")] = "http://127.0.0.1:8090",
) -> None:
    """Post signed sample orders to a running Koppel and show where each one ended up."""
    import httpx

    from app.demo import DEMO_FILE, load_demo_file, run_demo
    from app.demo import set_up as make_demo

    if set_up:
        settings = _settings()
        if not settings.redis_url:
            raise typer.BadParameter("--set-up needs KOPPEL_REDIS_URL (Koppel's Redis)")
        made = asyncio.run(make_demo(settings, api_url=(url or "http://127.0.0.1:8000").rstrip("/"),
                                     sandbox_url=sandbox_url.rstrip("/"), redis_url=settings.redis_url))
        typer.echo(f"demo integration {made['integration_id']}: webhook path {made['webhook_path']}, "
                   f"secret {made['webhook_secret']}, API key {made['api_key']}\n")
    saved = load_demo_file()
    if saved is None:
        typer.echo(f"no {DEMO_FILE}: start the service with `koppel run` first (or pass --set-up)", err=True)
        raise typer.Exit(1)
    api_url = (url or saved["api_url"]).rstrip("/")
    try:
        results = run_demo(saved, api_url, wait_seconds=wait)
    except httpx.HTTPError as exc:
        typer.echo(f"cannot reach Koppel at {api_url} ({exc}); is `koppel run` running?", err=True)
        raise typer.Exit(1) from exc
    typer.echo(table(["order", "case", "state", "Exact entry / error"],
                     [[r["order_number"], r["case"], r["state"], r["entry"] or r["error"] or ""] for r in results]))
    typer.echo(f"\nthe orders: {api_url}/api/v1/orders (Authorization: Bearer <the API key in {DEMO_FILE}>)")


def table(headers: list[str], rows: list[list[Any]]) -> str:
    """A plain text table; long cells are cut at 60 characters, except in the last column."""
    def cell(value: Any, last: bool) -> str:
        text = "" if value is None else " ".join(str(value).split())
        return text if last or len(text) <= 60 else text[:59] + "…"

    cells = [[cell(v, i == len(headers) - 1) for i, v in enumerate(row)] for row in rows]
    widths = [max([len(h), *(len(row[i]) for row in cells)]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip(),
             "  ".join("-" * min(w, 60) for w in widths)]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() for row in cells]
    return "\n".join(lines)


async def _in_transaction(work: Any) -> Any:
    from app.db.engine import create_engine, create_sessionmaker

    settings = _settings()
    engine = create_engine(settings.database_url)
    try:
        async with create_sessionmaker(engine)() as session, session.begin():
            return await work(session, settings)
    finally:
        await engine.dispose()


@admin.command("create-tenant")
def create_tenant(name: str, parent: Annotated[int | None, typer.Option(help="Firm tenant id")] = None) -> None:
    """Create a tenant (a merchant, or an accounting firm's client with --parent)."""
    from app.integrations.service import create_tenant as make

    async def work(session: Any, _: Settings) -> int:
        return (await make(session, name, parent)).id

    typer.echo(json.dumps({"tenant_id": asyncio.run(_in_transaction(work))}))


@admin.command("create-key")
def create_key(
    scope: Annotated[str, typer.Option(help="admin, operator or viewer")] = "viewer",
    tenant: Annotated[int | None, typer.Option(help="Tenant id; none = installation admin")] = None,
    name: str = "cli",
) -> None:
    """Create an API key; it is printed once and stored only as a hash."""
    from app.tenancy.auth import create_key as make

    async def work(session: Any, _: Settings) -> dict[str, Any]:
        key, plaintext = await make(session, tenant_id=tenant, scope=scope, name=name)
        return {"key_id": key.id, "scope": scope, "tenant_id": tenant, "api_key": plaintext}

    typer.echo(json.dumps(asyncio.run(_in_transaction(work))))


@admin.command("create-integration")
def create_integration(
    name: str,
    tenant: Annotated[int, typer.Option(help="Tenant id")],
    source: Annotated[str, typer.Option(help="generic, shopify, woocommerce, lightspeed")] = "generic",
    connection: Annotated[int | None, typer.Option(help="Exact connection id")] = None,
    division: Annotated[int | None, typer.Option(help="Exact division number")] = None,
    settings_json: Annotated[str | None, typer.Option("--settings", help="IntegrationSettings as JSON")] = None,
) -> None:
    """Create a shop integration; prints its webhook URL path and secret (shown once)."""
    from app.integrations.service import create_integration as make
    from app.sources.registry import get_adapter

    if get_adapter(source) is None:
        raise typer.BadParameter(f"unknown source {source!r}")

    async def work(session: Any, settings: Settings) -> dict[str, Any]:
        integration, secret = await make(
            session, secret_key=settings.secret_key.get_secret_value(), tenant_id=tenant, name=name,
            source=source, connection_id=connection, division=division,
            settings=json.loads(settings_json) if settings_json else None,
        )
        return {"integration_id": integration.id, "webhook_path": f"/webhooks/{source}/{integration.key}",
                "webhook_secret": secret}

    typer.echo(json.dumps(asyncio.run(_in_transaction(work))))


@orders_cli.command("list")
def orders_list(
    state: Annotated[list[str] | None, typer.Option(help="Only orders in this state (repeatable)")] = None,
    integration: Annotated[int | None, typer.Option(help="Only this integration id")] = None,
    q: Annotated[str | None, typer.Option(help="Order number, source id, e-mail, name or Exact number")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50,
) -> None:
    """List orders, newest first, straight from the database."""
    from app.orders import repository as orders
    from app.orders.states import ALL_STATES

    unknown = [s for s in state or [] if s not in ALL_STATES]
    if unknown:
        raise typer.BadParameter(f"unknown state {', '.join(unknown)}; states are {', '.join(ALL_STATES)}")
    flt = orders.OrderFilter(states=state or (), integration_id=integration, text=q or None)

    async def work(session: Any, _: Settings) -> list[Any]:
        return await orders.list_orders(session, flt, before_id=None, limit=limit)

    rows = asyncio.run(_in_transaction(work))
    typer.echo(table(
        ["id", "integration", "order", "state", "total", "customer", "received (UTC)", "Exact entry / error"],
        [[o.id, o.integration_id, o.order_number or o.source_order_id, o.state,
          "" if o.total is None else f"{o.currency or ''} {o.total}".strip(), o.customer_email or o.customer_name,
          o.created_at.strftime("%Y-%m-%d %H:%M"),
          o.exact_document_number or (f"{o.error_code}: {o.error_message}" if o.error_code else o.error_message)]
         for o in rows]))
    typer.echo(f"{len(rows)} order{'s' if len(rows) != 1 else ''}")


@orders_cli.command("reprocess")
def orders_reprocess(
    ids: Annotated[list[int] | None, typer.Argument(help="Order ids")] = None,
    state: Annotated[str | None, typer.Option(help="Instead of ids: every order in this state (failed, "
                                                   "rejected, waiting)")] = None,
    integration: Annotated[int | None, typer.Option(help="With --state: only this integration")] = None,
    limit: Annotated[int, typer.Option(min=1, max=100_000, help="With --state: at most this many")] = 1000,
) -> None:
    """Re-check failed, rejected or waiting orders and queue them again."""
    from app.integrations import repository as integrations
    from app.orders import repository as orders
    from app.orders.reprocess import NotReprocessable, reprocess
    from app.orders.states import REPROCESSABLE

    if bool(ids) == bool(state) or (integration is not None and not state):
        raise typer.BadParameter("give order ids, or --state (and optionally --integration), not both")
    if state and state not in {s.value for s in REPROCESSABLE}:
        raise typer.BadParameter(f"--state must be one of {', '.join(sorted(s.value for s in REPROCESSABLE))}")

    async def work() -> list[list[Any]]:
        from app.db.engine import create_engine, create_sessionmaker

        settings = _settings()
        engine = create_engine(settings.database_url)
        sessionmaker = create_sessionmaker(engine)
        results: list[list[Any]] = []
        try:
            chosen = list(ids or [])
            if state:
                async with sessionmaker() as session, session.begin():
                    chosen = await orders.order_ids(
                        session, orders.OrderFilter(states=[state], integration_id=integration), limit)
            for order_id in chosen:
                # One short transaction per order: one bad order never holds up the rest.
                async with sessionmaker() as session, session.begin():
                    order = await orders.get_order(session, order_id, for_update=True)
                    if order is None:
                        results.append([order_id, "", "skipped", "no such order"])
                        continue
                    integration_row = await integrations.get(session, order.integration_id)
                    assert integration_row is not None
                    before = order.state
                    try:
                        done = await reprocess(session, order, integration_row, who="cli")
                    except NotReprocessable as exc:
                        results.append([order_id, before, "skipped", exc.reason])
                        continue
                    results.append([order_id, before, done.state, order.error_message or ""])
        finally:
            await engine.dispose()
        return results

    results = asyncio.run(work())
    typer.echo(table(["id", "was", "now", "note"], results))
    queued = sum(1 for row in results if row[2] == "queued")
    skipped = sum(1 for row in results if row[2] == "skipped")
    typer.echo(f"{len(results) - skipped} reprocessed ({queued} queued; running workers pick them up within "
               f"seconds), {skipped} skipped")


@cli.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []})
def shop(ctx: typer.Context) -> None:
    """Shop-side setup: webhook-secret, api-credentials, reconcile-off, reconcile (see --help)."""
    from app.sources.connect import main as connect_main

    raise typer.Exit(connect_main(list(ctx.args)))


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
