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


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
