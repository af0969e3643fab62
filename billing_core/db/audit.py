"""The audit log: every change made through the bot or the CLI, with who, what, when, before and after."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from billing_core.db.models import AuditEntry


def jsonable(value: Any) -> Any:
    """Snapshot values as JSON: Decimals as exact strings, dates as ISO 8601."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def record(session: Session, *, actor: str, action: str, entity: str, entity_id: str | None, at: datetime,
           before: dict[str, Any] | None = None, after: dict[str, Any] | None = None,
           detail: str | None = None) -> AuditEntry:
    entry = AuditEntry(at=at, actor=actor[:120], action=action, entity=entity, entity_id=entity_id,
                       before=jsonable(before) if before is not None else None,
                       after=jsonable(after) if after is not None else None, detail=detail)
    session.add(entry)
    return entry
