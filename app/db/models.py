"""Every model, imported once so Base.metadata is complete (Alembic reads it from here)."""

from app.connections.models import DebtorLink, ExactConnection, ExactDivision, ExactLink, ReferenceItem
from app.db.base import Base
from app.integrations.models import Integration, IntegrationAudit
from app.orders.models import Delivery, Order, OrderEvent, OutboxJob
from app.reconcile.models import ShopApiCredentials  # noqa: F401
from app.tenancy.models import ApiKey, Tenant

__all__ = [
    "ApiKey",
    "Base",
    "DebtorLink",
    "Delivery",
    "ExactConnection",
    "ExactDivision",
    "ExactLink",
    "Integration",
    "IntegrationAudit",
    "Order",
    "OrderEvent",
    "OutboxJob",
    "ReferenceItem",
    "Tenant",
]
