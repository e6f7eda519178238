"""Exact Online connections (one OAuth token chain) and cached division reference data."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, BigIntPK, JSONType, UTCDateTime, utcnow


class ExactConnection(Base):
    __tablename__ = "exact_connections"
    # Exact keeps one token chain per (app, Exact user): a second chain for the same pair
    # silently kills the first, so the pair is unique here.
    __table_args__ = (UniqueConstraint("client_id", "exact_user_id"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    base_url: Mapped[str] = mapped_column(String(300))
    client_id: Mapped[str] = mapped_column(String(100))
    exact_user_id: Mapped[str | None] = mapped_column(String(64))
    exact_user_name: Mapped[str | None] = mapped_column(String(200))
    state: Mapped[str] = mapped_column(String(20), default="pending")  # pending|active|needs_consent
    state_reason: Mapped[str | None] = mapped_column(Text)
    # Fernet ciphertexts; never logged, never returned by the API.
    access_token_enc: Mapped[str | None] = mapped_column(Text)
    refresh_token_enc: Mapped[str | None] = mapped_column(Text)
    access_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    refreshed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class ReferenceItem(Base):
    """One row of Exact reference data (a VAT code, GL account, journal, …) for a division."""

    __tablename__ = "exact_reference_items"
    __table_args__ = (UniqueConstraint("connection_id", "division", "kind", "code"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    connection_id: Mapped[int] = mapped_column(ForeignKey("exact_connections.id"), index=True)
    division: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(32))  # vat_code | gl_account | journal | …
    code: Mapped[str] = mapped_column(String(64))
    exact_id: Mapped[str | None] = mapped_column(String(64))
    description: Mapped[str | None] = mapped_column(String(300))
    data: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    refreshed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class DebtorLink(Base):
    """E-mail (or fixed-debtor code) → Exact account, per division: a repeat customer costs
    no look-up. Koppel only ever creates debtors; it never changes an existing one."""

    __tablename__ = "exact_debtors"
    __table_args__ = (UniqueConstraint("connection_id", "division", "match_key"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    connection_id: Mapped[int] = mapped_column(ForeignKey("exact_connections.id"), index=True)
    division: Mapped[int] = mapped_column(Integer)
    match_key: Mapped[str] = mapped_column(String(330))  # "email:<lowercased>" or "code:<code>"
    account_id: Mapped[str] = mapped_column(String(64))
    account_code: Mapped[str | None] = mapped_column(String(32))
    created_by_koppel: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ExactLink(Base):
    """Something Koppel matched or created in Exact, by its own key → the Exact ID, per division.

    Kinds: ``item`` (key: the item code, case-folded, as Exact compares codes), ``warehouse``
    (key: the warehouse code) and ``delivery_address`` (key: the debtor's ID and a hash of the
    address). Koppel never changes what it links to; a stale link (the object was deleted in
    Exact) is dropped when Exact refuses the reference, and found or created again next time.
    """

    __tablename__ = "exact_links"
    __table_args__ = (UniqueConstraint("connection_id", "division", "kind", "match_key"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    connection_id: Mapped[int] = mapped_column(ForeignKey("exact_connections.id"), index=True)
    division: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(32))
    match_key: Mapped[str] = mapped_column(String(330))
    exact_id: Mapped[str] = mapped_column(String(64))
    code: Mapped[str | None] = mapped_column(String(64))  # as Exact spells it, for people
    # True: Koppel created it; False: it already existed; None: Exact did not say (addresses).
    created_by_koppel: Mapped[bool | None] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ExactDivision(Base):
    """A division (administration) one connection's Exact user may open, from ``system/Divisions``.

    Re-read at every consent and nightly; a division that disappeared from the list stays
    (integrations may point at it) with ``available`` false.
    """

    __tablename__ = "exact_divisions"
    __table_args__ = (UniqueConstraint("connection_id", "code"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    connection_id: Mapped[int] = mapped_column(ForeignKey("exact_connections.id"), index=True)
    code: Mapped[int] = mapped_column(Integer)
    description: Mapped[str | None] = mapped_column(String(300))
    country: Mapped[str | None] = mapped_column(String(8))
    currency: Mapped[str | None] = mapped_column(String(8))
    customer_name: Mapped[str | None] = mapped_column(String(300))
    vat_number: Mapped[str | None] = mapped_column(String(40))
    is_main: Mapped[bool] = mapped_column(Boolean, default=False)
    # The Exact user's current division when last read (what Exact opens by default).
    is_current: Mapped[bool] = mapped_column(Boolean, default=False)
    blocked: Mapped[bool] = mapped_column(Boolean, default=False)
    available: Mapped[bool] = mapped_column(Boolean, default=True)
    refreshed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
