"""Provider API endpoints and their sync state: where each provider's billing API lives, which account its
data belongs to, and how far the last successful sync got.

One row per (provider, account): a provider's API answers with one customer's data per bearer token.
The token itself is never stored: `token_env` names the environment variable that holds it, so secrets
stay in the deployment's secret store and out of database dumps. The high-water marks (`usage_until`,
`invoices_since`, `payments_since`) only move forward, in the same transaction as the rows they cover,
so a crash between fetching and storing re-fetches rather than skips. The repository functions below
never commit; `billing_core.sources.sync` owns the units of work.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import Date, ForeignKey, String, Text, UniqueConstraint, func, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from billing_core.db.models import Account, Base, Deployment, Invoice, Provider
from billing_core.errors import InvalidInput, NotFound
from billing_core.sync_status import ProviderOutage


class ProviderEndpoint(Base):
    __tablename__ = "provider_endpoints"
    id: Mapped[int] = mapped_column(primary_key=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("providers.id", ondelete="CASCADE"))
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    base_url: Mapped[str] = mapped_column(String(500))
    token_env: Mapped[str | None] = mapped_column(String(120))
    enabled: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime]
    # High-water marks: usage start instant, invoice issue date, payment updated_at (all inclusive).
    usage_until: Mapped[datetime | None]
    invoices_since: Mapped[date | None] = mapped_column(Date)
    payments_since: Mapped[datetime | None]
    last_attempt_at: Mapped[datetime | None]
    last_status: Mapped[str | None] = mapped_column(String(16))
    last_success_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    last_error_at: Mapped[datetime | None]
    unreachable_since: Mapped[datetime | None]  # first failed run after the last good one
    consecutive_failures: Mapped[int] = mapped_column(default=0)
    __table_args__ = (UniqueConstraint("provider_id", "account_id"),)


@dataclass(frozen=True)
class EndpointConfig:
    """An endpoint as the sync needs it: plain values, safe to hand to another thread or the event loop."""

    id: int
    provider: str
    provider_id: int
    account: str
    account_id: int
    base_url: str
    token_env: str | None
    usage_until: datetime | None
    invoices_since: date | None
    payments_since: datetime | None
    deployments: tuple[tuple[str, int], ...]  # deployment name → id, for usage that names one

    @property
    def source(self) -> str:
        """The ingestion source of this provider's records (external ids are unique per provider)."""
        return f"api:{self.provider.lower()}"[:64]


def add_endpoint(session: Session, *, provider: str, base_url: str, token_env: str | None, account: Account,
                 now: datetime) -> tuple[ProviderEndpoint, bool]:
    """Create (or re-point) the endpoint of `provider` for `account`; creates the provider if new."""
    if not base_url.startswith(("http://", "https://")):
        raise InvalidInput("The provider URL must start with http:// or https://.", hint="https://api.helios.example")
    name = provider.strip()
    if not name or len(name) > 120:
        raise InvalidInput("A provider needs a name of at most 120 characters.", hint="Helios Compute")
    row = session.scalar(select(Provider).where(func.lower(Provider.name) == name.lower()))
    if row is None:
        row = Provider(name=name, api_url=base_url)
        session.add(row)
        session.flush()
    endpoint = session.scalar(select(ProviderEndpoint).where(ProviderEndpoint.provider_id == row.id,
                                                             ProviderEndpoint.account_id == account.id))
    created = endpoint is None
    if endpoint is None:
        endpoint = ProviderEndpoint(provider_id=row.id, account_id=account.id, base_url=base_url, created_at=now,
                                    consecutive_failures=0, enabled=True)
        session.add(endpoint)
    endpoint.base_url, endpoint.token_env, endpoint.enabled = base_url.rstrip("/"), token_env, True
    session.flush()
    return endpoint, created


def remove_endpoint(session: Session, *, provider: str, account: Account) -> None:
    endpoint = _find(session, provider, account.id)
    session.delete(endpoint)


def _find(session: Session, provider: str, account_id: int) -> ProviderEndpoint:
    endpoint = session.scalar(
        select(ProviderEndpoint).join(Provider, Provider.id == ProviderEndpoint.provider_id)
        .where(func.lower(Provider.name) == provider.strip().lower(), ProviderEndpoint.account_id == account_id))
    if endpoint is None:
        raise NotFound(f"No API endpoint of provider {provider[:60]!r} for that account.",
                       hint="`billing-bot provider list` shows them.")
    return endpoint


def endpoint_configs(session: Session, provider: str | None = None) -> list[EndpointConfig]:
    """Every enabled endpoint (of one provider when named), with what a sync of it needs."""
    stmt = (select(ProviderEndpoint, Provider.name, Account.name)
            .join(Provider, Provider.id == ProviderEndpoint.provider_id)
            .join(Account, Account.id == ProviderEndpoint.account_id)
            .where(ProviderEndpoint.enabled.is_(True)).order_by(Provider.name, Account.name))
    if provider is not None:
        stmt = stmt.where(func.lower(Provider.name) == provider.strip().lower())
    rows = session.execute(stmt).all()
    if provider is not None and not rows:
        raise NotFound(f"No provider {provider[:60]!r} with an API endpoint.",
                       hint="`billing-bot provider add NAME URL --token-env VAR --account NAME`")
    deployments: dict[int, list[tuple[str, int]]] = {}
    for dep_name, dep_id, account_id in session.execute(select(Deployment.name, Deployment.id, Deployment.account_id)):
        deployments.setdefault(account_id, []).append((dep_name, dep_id))
    return [EndpointConfig(e.id, p, e.provider_id, a, e.account_id, e.base_url, e.token_env, e.usage_until,
                           e.invoices_since, e.payments_since, tuple(deployments.get(e.account_id, ())))
            for e, p, a in rows]


def list_endpoints(session: Session) -> list[tuple[str, str, ProviderEndpoint]]:
    """(provider, account, endpoint) for every endpoint, enabled or not, for `billing-bot provider list`."""
    rows = session.execute(
        select(Provider.name, Account.name, ProviderEndpoint)
        .join(Provider, Provider.id == ProviderEndpoint.provider_id)
        .join(Account, Account.id == ProviderEndpoint.account_id).order_by(Provider.name, Account.name))
    return [(p, a, e) for p, a, e in rows]


def record_outcome(session: Session, endpoint_id: int, *, ok: bool, status: str, error: str | None,
                   at: datetime) -> datetime | None:
    """Remember how a run ended; returns `unreachable_since`, the first failure after the last success."""
    endpoint = session.get(ProviderEndpoint, endpoint_id)
    if endpoint is None:
        return None  # removed while it was syncing: nothing to remember
    endpoint.last_attempt_at, endpoint.last_status = at, status
    if ok:
        endpoint.last_success_at, endpoint.unreachable_since, endpoint.consecutive_failures = at, None, 0
        return None
    endpoint.last_error, endpoint.last_error_at = (error or status)[:2000], at
    endpoint.consecutive_failures = (endpoint.consecutive_failures or 0) + 1
    if endpoint.unreachable_since is None:
        endpoint.unreachable_since = at
    return endpoint.unreachable_since


def advance_marks(session: Session, endpoint_id: int, *, usage_until: datetime | None = None,
                  invoices_since: date | None = None, payments_since: datetime | None = None) -> None:
    """Move the high-water marks forward (never back), in the transaction that stored what they cover."""
    endpoint = session.get(ProviderEndpoint, endpoint_id)
    if endpoint is None:
        return
    if usage_until is not None and (endpoint.usage_until is None or usage_until > endpoint.usage_until):
        endpoint.usage_until = usage_until
    if invoices_since is not None and (endpoint.invoices_since is None or invoices_since > endpoint.invoices_since):
        endpoint.invoices_since = invoices_since
    if payments_since is not None and (endpoint.payments_since is None or payments_since > endpoint.payments_since):
        endpoint.payments_since = payments_since


def stored_invoice_status(session: Session, source: str, external_id: str) -> str | None:
    return session.scalar(select(Invoice.status).where(Invoice.source == source, Invoice.external_id == external_id))


def outages(session: Session, account_id: int) -> list[ProviderOutage]:
    """The account's providers whose last sync did not succeed, oldest outage first."""
    rows = session.execute(
        select(Provider.name, ProviderEndpoint)
        .join(Provider, Provider.id == ProviderEndpoint.provider_id)
        .where(ProviderEndpoint.account_id == account_id, ProviderEndpoint.enabled.is_(True),
               ProviderEndpoint.unreachable_since.is_not(None))
        .order_by(ProviderEndpoint.unreachable_since, Provider.name))
    return [ProviderOutage(provider=name, since=e.unreachable_since, last_error=e.last_error,
                           last_success_at=e.last_success_at, consecutive_failures=e.consecutive_failures,
                           status=e.last_status or "failed")
            for name, e in rows if e.unreachable_since is not None]


def known_invoices(session: Session, source: str, external_ids: set[str]) -> set[str | None]:
    """Which of `external_ids` (of `source`) the ledger already holds."""
    if not external_ids:
        return set()
    return set(session.scalars(select(Invoice.external_id).where(Invoice.source == source,
                                                                 Invoice.external_id.in_(external_ids))))
