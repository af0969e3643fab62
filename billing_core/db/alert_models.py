"""SQLAlchemy models of alerts: the alert rows, their delivery outbox, routes, quiet hours and mutes.

Contract (migration 0004 creates exactly these tables):
- an `Alert` is unique on (rule, subject, period, threshold): evaluating the rules twice inserts nothing new;
- every alert that must be posted has one `AlertDelivery` per message (the alert itself, later a "resolved"
  reply), written in the same transaction as the alert; the delivery loop is the only thing that posts;
- a delivery is `pending` → `sending` (claimed, with a lease) → `sent` (with the Slack ts) or `dead`;
  `ambiguous` says a previous attempt may have reached Slack, so history is checked before posting again.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from billing_core.db.models import Base


class Alert(Base):
    __tablename__ = "alerts"
    id: Mapped[int] = mapped_column(primary_key=True)
    rule: Mapped[str] = mapped_column(String(16))  # overdue, budget, forecast, anomaly, digest
    subject: Mapped[str] = mapped_column(String(120))  # invoice:INV-0042, budget:7, account:3
    period: Mapped[str] = mapped_column(String(40))  # the local period it is about (ISO date / month / week)
    threshold: Mapped[str] = mapped_column(String(40), default="")  # 80, reminder stage, "" when none
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="open")
    created_at: Mapped[datetime]
    acknowledged_by: Mapped[str | None] = mapped_column(String(32))
    acknowledged_at: Mapped[datetime | None]
    snoozed_until: Mapped[datetime | None]
    resolved_at: Mapped[datetime | None]
    channel: Mapped[str | None] = mapped_column(String(32))
    message_ts: Mapped[str | None] = mapped_column(String(32))
    is_test: Mapped[bool] = mapped_column(default=False)
    __table_args__ = (
        UniqueConstraint("rule", "subject", "period", "threshold", name="uq_alerts_key"),
        CheckConstraint("status IN ('open','acknowledged','resolved','muted','unrouted')", name="status"),
    )


class AlertDelivery(Base):
    """One message to post: the alert itself (`purpose` alert) or a reply in its thread (resolved)."""

    __tablename__ = "alert_deliveries"
    id: Mapped[int] = mapped_column(primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"), index=True)
    purpose: Mapped[str] = mapped_column(String(16), default="alert")
    channel: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime]
    last_error: Mapped[str | None] = mapped_column(Text)
    ambiguous: Mapped[bool] = mapped_column(default=False)
    message_ts: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
    __table_args__ = (
        UniqueConstraint("alert_id", "purpose", name="uq_alert_deliveries_purpose"),
        CheckConstraint("state IN ('pending','sending','sent','dead')", name="state"),
        Index("ix_alert_deliveries_due", "state", "next_attempt_at"),
    )


class AlertRoute(Base):
    """Where alerts of one kind for one account go; `kind` "*" is the account's default channel."""

    __tablename__ = "alert_routes"
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    channel: Mapped[str] = mapped_column(String(32))
    set_by: Mapped[str] = mapped_column(String(120))
    set_at: Mapped[datetime]


class QuietHours(Base):
    """Local hours during which a channel gets no alerts: they wait until the quiet hours end."""

    __tablename__ = "alert_quiet_hours"
    channel: Mapped[str] = mapped_column(String(32), primary_key=True)
    start_hour: Mapped[int]
    end_hour: Mapped[int]
    timezone: Mapped[str] = mapped_column(String(64))
    set_by: Mapped[str] = mapped_column(String(120))
    set_at: Mapped[datetime]
    __table_args__ = (CheckConstraint("start_hour BETWEEN 0 AND 23 AND end_hour BETWEEN 0 AND 23", name="hours"),)


class AlertMute(Base):
    """A rule silenced for one channel: its new alerts are recorded, not posted there."""

    __tablename__ = "alert_mutes"
    rule: Mapped[str] = mapped_column(String(16), primary_key=True)
    channel: Mapped[str] = mapped_column(String(32), primary_key=True)
    muted_by: Mapped[str] = mapped_column(String(120))
    muted_at: Mapped[datetime]
