"""Orders, their append-only timeline, every raw delivery (the inbox) and the job outbox."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, BigIntPK, JSONType, Money, UTCDateTime, utcnow


class Order(Base):
    __tablename__ = "orders"
    # The duplicate check of last resort: one row per source order per integration.
    # Rejected deliveries that carry no usable order id have NULL here and never collide.
    __table_args__ = (
        UniqueConstraint("integration_id", "source_order_id"),
        Index("ix_orders_integration_state", "integration_id", "state"),
        Index("ix_orders_state_updated", "state", "updated_at"),
        # The duplicate check looks orders up by number on every new order.
        Index("ix_orders_order_number", "order_number"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    integration_id: Mapped[int] = mapped_column(ForeignKey("integrations.id"))
    source_order_id: Mapped[str | None] = mapped_column(String(128))
    order_number: Mapped[str | None] = mapped_column(String(128))
    state: Mapped[str] = mapped_column(String(20))
    source_status: Mapped[str | None] = mapped_column(String(64))
    order_date: Mapped[datetime | None] = mapped_column(UTCDateTime)
    currency: Mapped[str | None] = mapped_column(String(3))
    total: Mapped[Decimal | None] = mapped_column(Money)
    customer_email: Mapped[str | None] = mapped_column(String(320))
    customer_name: Mapped[str | None] = mapped_column(String(300))

    # The delivery that the canonical order below was made from, byte for byte.
    raw_body: Mapped[bytes] = mapped_column(LargeBinary)
    raw_headers: Mapped[dict[str, str]] = mapped_column(JSONType, default=dict)
    canonical: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    checks: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONType)

    error_code: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(Text)
    retryable: Mapped[bool | None] = mapped_column(Boolean)

    exact_document_type: Mapped[str | None] = mapped_column(String(20))
    exact_document_id: Mapped[str | None] = mapped_column(String(64))
    exact_document_number: Mapped[str | None] = mapped_column(String(64))
    exact_debtor_id: Mapped[str | None] = mapped_column(String(64))
    exact_calls: Mapped[int] = mapped_column(Integer, default=0)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # Bumped whenever the order must be (re)booked; the job id carries it, so a reprocess
    # gets a fresh arq job while repeats of one revision collapse into one job.
    revision: Mapped[int] = mapped_column(Integer, default=1)
    # Set, and committed, just before a create is sent to Exact: if a later attempt finds
    # it set without an Exact id, the create may have landed and must be looked up first.
    create_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    booked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class OrderEvent(Base):
    """The order's timeline. Rows are only ever inserted."""

    __tablename__ = "order_events"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    kind: Mapped[str] = mapped_column(String(40))
    message: Mapped[str] = mapped_column(Text)
    data: Mapped[dict[str, Any] | None] = mapped_column(JSONType)


class Delivery(Base):
    """The inbox: every authenticated delivery, raw, unique per (integration, event id)."""

    __tablename__ = "deliveries"
    __table_args__ = (UniqueConstraint("integration_id", "external_id"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    integration_id: Mapped[int] = mapped_column(ForeignKey("integrations.id"))
    external_id: Mapped[str] = mapped_column(String(200))
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"), index=True)
    outcome: Mapped[str] = mapped_column(String(32))
    body: Mapped[bytes] = mapped_column(LargeBinary)
    headers: Mapped[dict[str, str]] = mapped_column(JSONType, default=dict)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class OutboxJob(Base):
    """A job to enqueue, written in the same transaction as the state change that needs it.

    The relay moves rows to arq only after that transaction committed, so a rollback never
    leaves a stray job and a lost Redis write is re-sent from here.
    """

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"), index=True)
    function: Mapped[str] = mapped_column(String(64))
    job_id: Mapped[str] = mapped_column(String(128), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    enqueued_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
