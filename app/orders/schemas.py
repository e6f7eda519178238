"""JSON shapes of the status API."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, field_serializer


class OrderSummary(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    integration_id: int
    source_order_id: str | None
    order_number: str | None
    state: str
    source_status: str | None
    order_date: datetime | None
    currency: str | None
    total: Decimal | None
    customer_email: str | None
    customer_name: str | None
    error_code: str | None
    error_message: str | None
    retryable: bool | None
    exact_document_type: str | None
    exact_document_id: str | None
    exact_document_number: str | None
    exact_calls: int
    attempts: int
    created_at: datetime
    updated_at: datetime
    booked_at: datetime | None

    @field_serializer("total")
    def _money(self, value: Decimal | None) -> str | None:
        return None if value is None else str(value)


class OrderEventOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    at: datetime
    kind: str
    message: str
    data: dict[str, Any] | None


class OrderDetail(OrderSummary):
    canonical: dict[str, Any] | None
    checks: list[dict[str, Any]] | None
    exact_debtor_id: str | None
    revision: int
    raw_body: str
    raw_headers: dict[str, str]
    timeline: list[OrderEventOut]


class OrderPage(BaseModel):
    orders: list[OrderSummary]
    next_cursor: str | None


class IntegrationCounts(BaseModel):
    integration_id: int
    counts: dict[str, int]


class Stats(BaseModel):
    counts: dict[str, int]
    integrations: list[IntegrationCounts]
    queue_depth: int | None = None
    exact_budget: list[dict[str, Any]] = []
    connections_needing_consent: int = 0
