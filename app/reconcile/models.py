"""Per-integration access to the shop's own REST API, and how far reconciliation got."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, BigIntPK, JSONType, UTCDateTime, utcnow


class ShopApiCredentials(Base):
    """One row per integration whose shop Koppel may read orders from (see app.reconcile)."""

    __tablename__ = "shop_api_credentials"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    integration_id: Mapped[int] = mapped_column(ForeignKey("integrations.id"), unique=True)
    # https://<shop>.myshopify.com, or the WordPress site's address for WooCommerce.
    shop_url: Mapped[str] = mapped_column(String(300))
    # Shopify's Admin API version (None: app.reconcile.shopify.DEFAULT_API_VERSION); unused for WooCommerce.
    api_version: Mapped[str | None] = mapped_column(String(20))
    # Fernet ciphertext of a JSON object: {"access_token"} (Shopify) or
    # {"consumer_key", "consumer_secret"} (WooCommerce). Never logged, never returned.
    credentials_enc: Mapped[str] = mapped_column(Text)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    # Every order changed before this moment has been seen (the next run lists changes since
    # this minus an overlap). Moved only after the run's orders were committed.
    reconciled_until: Mapped[datetime] = mapped_column(UTCDateTime)
    # A run that ran out of time: {"since", "started", "next" (the shop's next page), "pages"};
    # the next run goes on from there. None when the last run finished.
    resume: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    last_run_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Why the last run stopped (HTTP status, …); None after a run that finished.
    last_error: Mapped[str | None] = mapped_column(Text)
    # Counts of the last finished run: {"listed": …, "new": …, "updated": …, …}.
    last_counts: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
