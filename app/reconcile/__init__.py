"""Reconciliation: orders whose webhooks were lost are read from the shop's own API.

WooCommerce never retries a failed webhook and Shopify advises a reconciliation job, so for
an integration with shop API credentials (`models.ShopApiCredentials`, encrypted at rest,
stored with `python -m app.sources.connect api-credentials`) a scheduled job
(`workers/reconcile.py`) lists the orders changed since its last run through the shop's REST
API (`shopify.py`, `woocommerce.py`) and feeds what never arrived through the webhook
intake (`service.py`). Lightspeed has no client: it is not reconciled.
"""
