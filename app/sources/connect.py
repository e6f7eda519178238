"""`koppel shop …` (or `python -m app.sources.connect …`): what connecting a shop needs besides creating its integration.

    webhook-secret ID                  store the key the shop signs its webhooks with
    api-credentials ID --shop-url URL  store the shop API credentials reconciliation reads with
    reconcile-off ID                   stop reconciling this integration (credentials are kept)
    reconcile [--integration ID]       reconcile now, instead of at the next quarter hour

Shopify and Lightspeed sign with a key they issue (not one Koppel generates), so the
integration's webhook secret must be replaced by theirs. Secrets come from the environment
(`KOPPEL_SHOP_WEBHOOK_SECRET`, `KOPPEL_SHOP_ACCESS_TOKEN`, `KOPPEL_SHOP_CONSUMER_KEY`,
`KOPPEL_SHOP_CONSUMER_SECRET`) or a prompt, never from arguments, so they stay out of shell
history and process lists. API processes pick a new webhook secret up within
`KOPPEL_CONFIG_CACHE_SECONDS`.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import sys
from typing import Any

import httpx

from app import crypto
from app.db.base import utcnow
from app.db.engine import create_engine, create_sessionmaker
from app.integrations.models import Integration
from app.observability import configure_logging
from app.reconcile.credentials import REQUIRED_SECRETS, CredentialsError, get_for_integration, save_credentials
from app.reconcile.service import reconcile_all, reconcile_integration
from app.settings import get_settings

RUN_NOW_BUDGET = 3600.0
ENV = {"webhook_secret": "KOPPEL_SHOP_WEBHOOK_SECRET", "access_token": "KOPPEL_SHOP_ACCESS_TOKEN",
       "consumer_key": "KOPPEL_SHOP_CONSUMER_KEY", "consumer_secret": "KOPPEL_SHOP_CONSUMER_SECRET"}


def _secret(name: str) -> str:
    value = (os.environ.get(ENV[name]) or getpass.getpass(f"{name.replace('_', ' ')}: ")).strip()
    if not value:
        raise CredentialsError(f"no {name.replace('_', ' ')} given")
    return value


async def _main(args: argparse.Namespace) -> dict[str, Any]:
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_json)  # to stderr: stdout is the answer
    secret_key = settings.secret_key.get_secret_value()
    engine = create_engine(settings.database_url)
    sessionmaker = create_sessionmaker(engine)
    try:
        if args.command == "reconcile":
            async with httpx.AsyncClient(timeout=30) as http:  # at a terminal: no job timeout to keep within
                runs = ([await reconcile_integration(sessionmaker, http, secret_key, args.integration,
                                                     budget_seconds=RUN_NOW_BUDGET)]
                        if args.integration is not None
                        else await reconcile_all(sessionmaker, http, secret_key, budget_seconds=RUN_NOW_BUDGET))
            return {"runs": [{"integration_id": run.integration_id, "since": run.since.isoformat(),
                              "finished": run.finished, "error": run.error, "queued": run.queued, **run.counts}
                             for run in runs]}
        async with sessionmaker() as session, session.begin():
            integration = await session.get(Integration, args.integration, with_for_update=True)
            if integration is None:
                raise CredentialsError(f"no integration {args.integration}")
            if args.command == "webhook-secret":
                integration.webhook_secret_enc = crypto.encrypt(secret_key, _secret("webhook_secret"))
                integration.updated_at = utcnow()
                return {"integration_id": integration.id, "webhook_secret": "stored"}
            if args.command == "reconcile-off":
                row = await get_for_integration(session, integration.id, for_update=True)
                if row is not None:
                    row.enabled = False
                return {"integration_id": integration.id, "reconciliation": "off" if row else "not set up"}
            if integration.source not in REQUIRED_SECRETS:
                raise CredentialsError(f"reconciliation is not available for the {integration.source!r} source")
            secrets = {name: _secret(name) for name in REQUIRED_SECRETS[integration.source]}
            row = await save_credentials(session, secret_key=secret_key, integration=integration,
                                         shop_url=args.shop_url, secrets=secrets, api_version=args.api_version)
            return {"integration_id": integration.id, "shop_url": row.shop_url,
                    "reconciles_from": row.reconciled_until.isoformat()}
    finally:
        await engine.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="koppel shop",
                                     description="Connect a shop: its webhook key and its API credentials.")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("webhook-secret", help="store the key the shop signs webhooks with").add_argument(
        "integration", type=int)
    api = commands.add_parser("api-credentials", help="store (or replace) the shop's API credentials")
    api.add_argument("integration", type=int)
    api.add_argument("--shop-url", required=True, help="https://<shop>.myshopify.com, or the WordPress site")
    api.add_argument("--api-version", help="Shopify Admin API version (default: app.reconcile.shopify)")
    commands.add_parser("reconcile-off", help="stop reconciling (credentials are kept)").add_argument(
        "integration", type=int)
    commands.add_parser("reconcile", help="reconcile now").add_argument("--integration", type=int)
    args = parser.parse_args(argv)
    try:
        print(json.dumps(asyncio.run(_main(args))))
    except CredentialsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
