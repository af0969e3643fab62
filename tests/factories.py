"""Small builders for ledger rows used across tests (real ingestion, real database)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from sqlalchemy.orm import Session

from billing_core.db.models import Account, Deployment, Provider
from billing_core.records import InvoiceIn, LineIn, UsageIn
from billing_core.results import InvoiceStatus

T0 = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def account(session: Session, name: str = "acme", *, currency: str = "USD", tz: str = "UTC") -> Account:
    row = Account(name=name, currency=currency, timezone=tz, billing_email=f"{name}@example.com", created_at=T0)
    session.add(row)
    session.flush()
    return row


def provider(session: Session, name: str = "Helios") -> Provider:
    row = Provider(name=name)
    session.add(row)
    session.flush()
    return row


def deployment(session: Session, acct: Account, name: str, prov: Provider | None = None) -> Deployment:
    row = Deployment(account_id=acct.id, provider_id=prov.id if prov else None, name=name, created_at=T0)
    session.add(row)
    session.flush()
    return row


def usage(acct: Account, start: datetime, cost: str, *, meter: str = "cpu", ext: str | None = None,
          qty: str = "1", deployment_id: int | None = None, provider_id: int | None = None,
          dims: dict[str, str] | None = None, source: str = "test") -> UsageIn:
    return UsageIn(
        account_id=acct.id, meter=meter, quantity=Decimal(qty), unit="vCPU-h", cost=Decimal(cost),
        currency=acct.currency, period_start=start, period_end=start + timedelta(hours=1), source=source,
        external_id=ext or f"{meter}:{start.isoformat()}:{deployment_id}", deployment_id=deployment_id,
        provider_id=provider_id, dimensions=dims or {},
    )


def invoice(acct: Account, ext: str, *, total_lines: tuple[str, ...] = ("100.00",), status: InvoiceStatus =
            InvoiceStatus.PENDING, issue: date = date(2026, 11, 1), due: date = date(2026, 11, 15),
            tax: str = "0", number: str | None = None, **kw: Decimal) -> InvoiceIn:
    lines = tuple(LineIn(f"line {i}", Decimal(1), "unit", Decimal(t), Decimal(t), "cpu")
                  for i, t in enumerate(total_lines))
    return InvoiceIn(
        account_id=acct.id, source="test", external_id=ext, status=status, issue_date=issue, due_date=due,
        period_start=date(2026, 10, 1), period_end=date(2026, 10, 31), currency=acct.currency, lines=lines,
        tax=Decimal(tax), number=number, **kw,
    )
