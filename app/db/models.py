"""Every model, imported once so Base.metadata is complete (Alembic reads it from here)."""

from app.connections.models import DebtorLink, ExactConnection, ReferenceItem
from app.db.base import Base
from app.integrations.models import Integration
from app.orders.models import Delivery, Order, OrderEvent, OutboxJob
from app.tenancy.models import ApiKey, Tenant

__all__ = [
    "ApiKey",
    "Base",
    "DebtorLink",
    "Delivery",
    "ExactConnection",
    "Integration",
    "Order",
    "OrderEvent",
    "OutboxJob",
    "ReferenceItem",
    "Tenant",
]
