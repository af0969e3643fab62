"""Web-hook deliveries received: the `webhook-id` of every event applied, written in the same transaction as
its effect, so a retried or duplicated delivery (senders retry for days, in any order) has exactly one effect."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from billing_core.db.models import Base


class WebhookDelivery(Base):
    __tablename__ = "webhook_deliveries"
    id: Mapped[str] = mapped_column(String(200), primary_key=True)  # the sender's webhook-id
    event_type: Mapped[str] = mapped_column(String(64))
    provider_id: Mapped[int]
    account_id: Mapped[int] = mapped_column(index=True)
    received_at: Mapped[datetime] = mapped_column(index=True)
    summary: Mapped[str] = mapped_column(String(300))  # what it changed, for `billing-bot webhooks`
