"""The billing-provider HTTP contract, and an async httpx client that speaks it.

Contract (JSON over HTTPS, all four endpoints `GET`, version in the path):

    Authorization: Bearer <token>            every request; 401/403 → the token is wrong, never retried
    GET /api/v1/invoices?status=&start=&end=&cursor=
        status: draft|open|paid|void|uncollectible (optional); start/end: ISO dates, issue date, inclusive
    GET /api/v1/invoices/{id}
        one invoice object (no envelope)
    GET /api/v1/usage?start=&end=&granularity=&cursor=
        start/end: ISO 8601 instants with offset, charge-period start in [start, end); granularity: hour|day
    GET /api/v1/payments?updated_since=&cursor=
        updated_since: ISO 8601 instant, inclusive

    A list answers `{"data": [...], "next_cursor": "opaque" | null}`; the client repeats the same query
    with `cursor=<next_cursor>` until it is null. Amounts and quantities are JSON *strings* holding
    exact decimals ("12.50"); a JSON number is rejected, so no float ever touches money. Dates are ISO
    8601 (`2026-10-31`), instants carry an offset (`2026-10-01T00:00:00Z`).

    usage item:   {"id", "meter", "quantity", "unit", "cost", "currency", "start", "end",
                   "deployment"?: name, "dimensions"?: {str: str}}
    invoice:      {"id", "status", "issue_date", "due_date", "period_start", "period_end", "currency",
                   "lines": [{"description", "meter"?, "quantity", "unit", "unit_price", "amount"}],
                   "tax"?, "discount"?, "credits_applied"?, "fees"?: {"platform"?, "provider"?, "network"?},
                   "payment_url"?, "deployment"?, "lease_ref"?}
    payment:      {"id", "invoice_id"?, "amount", "currency", "status": succeeded|pending|failed,
                   "method": card|bank|onchain, "paid_at"?, "updated_at", "tx_hash"?}

Status mapping: draft → draft; open, paid and uncollectible → pending (the ledger derives "paid" from
the payments it holds, so an invoice is paid here once its payment arrived); void → cancelled.

Failure handling (`RetryPolicy`): every request has its own timeout; timeouts, connection errors and
5xx answers are retried with exponential backoff and full jitter; 429 waits for `Retry-After` (seconds
or an HTTP date, capped); other 4xx fail at once. What finally fails raises `ProviderError` with a
`kind` (unreachable, timeout, http, auth, rate_limited, bad_data) and a message fit for an operator.
At most `limiter`'s count of requests are in flight at once across every client sharing it. That
request loop is `JsonGetter`, which the Stripe client (`stripe_api`) shares: one retry policy, not two.

This module does no database work: it turns JSON into `billing_core.records` for a `Target`.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import httpx

from billing_core.errors import InvalidInput
from billing_core.money import normalize_currency, parse_amount
from billing_core.records import InvoiceIn, LineIn, PaymentIn, UsageIn
from billing_core.results import InvoiceStatus, PaymentMethod, PaymentStatus

API = "/api/v1"
MAX_PAGES = 10_000  # a provider whose cursor never ends must not keep us forever
INVOICE_STATUS = {"draft": InvoiceStatus.DRAFT, "open": InvoiceStatus.PENDING, "paid": InvoiceStatus.PENDING,
                  "uncollectible": InvoiceStatus.PENDING, "void": InvoiceStatus.CANCELLED}
PAYMENT_STATUS = {"succeeded": PaymentStatus.CONFIRMED, "pending": PaymentStatus.PENDING,
                  "failed": PaymentStatus.FAILED}
Json = dict[str, Any]


class ProviderError(Exception):
    """A provider request that failed for good; `kind` says how, `message` says it to an operator."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


@dataclass(frozen=True)
class RetryPolicy:
    """Per-request timeout (s), attempts in all, backoff base and cap (s), and the longest Retry-After honoured."""

    timeout: float = 10.0
    attempts: int = 4
    backoff: float = 0.5
    max_backoff: float = 8.0
    max_retry_after: float = 60.0
    rng: Callable[[], float] = field(default=random.random, compare=False)

    def delay(self, attempt: int) -> float:
        """Full jitter: uniform in [0, min(cap, base·2^attempt)], so retrying clients spread out."""
        return float(self.rng() * min(self.max_backoff, self.backoff * 2 ** attempt))


@dataclass(frozen=True)
class Target:
    """Whose records these are: the account and provider they belong to, and the ingestion source."""

    account_id: int
    provider_id: int
    source: str
    deployments: Mapping[str, int] = field(default_factory=dict)  # deployment name → id


class JsonGetter:
    """GET requests for JSON under one base URL: retries, timeouts and Retry-After by `RetryPolicy`.

    `explain` turns a refused answer's body into the server's own reason (appended to the error message);
    the provider contract has none, Stripe's `{"error": {"message": …}}` has one.
    """

    def __init__(self, http: httpx.AsyncClient, base_url: str, headers: Mapping[str, str], *,
                 policy: RetryPolicy | None = None, limiter: asyncio.Semaphore | None = None,
                 explain: Callable[[httpx.Response], str] | None = None) -> None:
        self._http = http
        self._base = base_url.rstrip("/")
        self._headers = {"Accept": "application/json", **headers}
        self._policy = policy or RetryPolicy()
        self._limiter = limiter or asyncio.Semaphore(10)
        self._explain = explain or (lambda _response: "")
        self.requests = 0  # how many HTTP requests were sent (retries included)

    async def get_json(self, path: str, params: Mapping[str, str]) -> Any:
        url = f"{self._base}{path}"
        policy = self._policy
        for attempt in range(policy.attempts):
            last = attempt == policy.attempts - 1
            try:
                async with self._limiter:
                    self.requests += 1
                    response = await self._http.get(url, params=dict(params), headers=self._headers,
                                                    timeout=policy.timeout)
            except httpx.TimeoutException:
                if last:
                    raise ProviderError("timeout", f"no answer within {policy.timeout:g} s "
                                                   f"({policy.attempts} attempts)") from None
            except httpx.TransportError as exc:
                if last:
                    raise ProviderError("unreachable", f"cannot connect: {_reason(exc)} "
                                                       f"({policy.attempts} attempts)") from None
            else:
                wait = self._verdict(response, attempt)
                if wait is None:
                    return _decode(response, path)
                await asyncio.sleep(wait)
                continue
            await asyncio.sleep(policy.delay(attempt))
        raise AssertionError("unreachable: the last attempt returns or raises")  # pragma: no cover

    def _verdict(self, response: httpx.Response, attempt: int) -> float | None:
        """None when the answer is usable; else how long to wait before the next attempt (or raise)."""
        code = response.status_code
        last = attempt == self._policy.attempts - 1
        if code < 300:
            return None
        if code in (401, 403):
            raise self._refused(response, "auth", f"the API token was refused (HTTP {code})")
        if code == 429:
            # The wall clock, not the sync's `now`: an HTTP-date Retry-After is about the real present.
            wait = retry_after(response.headers.get("Retry-After"), now=datetime.now(UTC))
            if last or wait > self._policy.max_retry_after:
                raise self._refused(response, "rate_limited", f"rate limited (HTTP 429, Retry-After {wait:g} s)")
            return wait
        if code >= 500 and not last:
            return self._policy.delay(attempt)
        raise self._refused(response, "http", f"HTTP {code} from {response.request.url.path}")

    def _refused(self, response: httpx.Response, kind: str, message: str) -> ProviderError:
        reason = self._explain(response)
        return ProviderError(kind, f"{message}: {reason}" if reason else message)


class ProviderClient:
    """One provider's API: paginated lists, retries, per-request timeouts and a shared concurrency bound."""

    def __init__(self, http: httpx.AsyncClient, base_url: str, token: str | None, *,
                 policy: RetryPolicy | None = None, limiter: asyncio.Semaphore | None = None) -> None:
        self._api = JsonGetter(http, base_url.rstrip("/") + API,
                               {"Authorization": f"Bearer {token}"} if token else {}, policy=policy, limiter=limiter)

    @property
    def requests(self) -> int:
        """How many HTTP requests this client sent (retries included)."""
        return self._api.requests

    async def invoices(self, *, status: str | None = None, start: date | None = None,
                       end: date | None = None) -> list[Json]:
        return await self.collect("/invoices", {"status": status, "start": _iso(start), "end": _iso(end)})

    async def invoice(self, invoice_id: str) -> Json:
        return _object(await self.get_json(f"/invoices/{quote(invoice_id, safe='')}", {}), f"invoice {invoice_id}")

    async def usage(self, *, start: datetime, end: datetime, granularity: str = "hour") -> list[Json]:
        return await self.collect("/usage", {"start": _iso(start), "end": _iso(end), "granularity": granularity})

    async def payments(self, *, updated_since: datetime | None = None) -> list[Json]:
        return await self.collect("/payments", {"updated_since": _iso(updated_since)})

    async def collect(self, path: str, params: Mapping[str, str | None]) -> list[Json]:
        """Every item of a list endpoint, following `next_cursor` to the end."""
        query = {k: v for k, v in params.items() if v is not None}
        items: list[Json] = []
        cursor: str | None = None
        for _ in range(MAX_PAGES):
            page = _object(await self.get_json(path, query | ({"cursor": cursor} if cursor else {})), path)
            items.extend(page_items(page, path))
            previous, cursor = cursor, page.get("next_cursor")
            if cursor is None:
                return items
            if not isinstance(cursor, str) or not cursor:
                raise ProviderError("bad_data", f"{path}: `next_cursor` must be a non-empty string or null.")
            if cursor == previous:
                raise ProviderError("bad_data", f"{path}: `next_cursor` repeats itself; the list would never end.")
        raise ProviderError("bad_data", f"{path}: more than {MAX_PAGES} pages; the cursor never ends.")

    async def get_json(self, path: str, params: Mapping[str, str]) -> Any:
        return await self._api.get_json(path, params)


def retry_after(value: str | None, *, now: datetime) -> float:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date); 1 s when absent or odd."""
    if not value:
        return 1.0
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return 1.0
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def _decode(response: httpx.Response, path: str) -> Any:
    try:
        # Numbers parse as Decimal, never float; the field checks then insist on strings anyway.
        return json.loads(response.content, parse_float=Decimal)
    except (ValueError, UnicodeDecodeError):
        raise ProviderError("bad_data", f"{path}: the answer is not JSON") from None


def _object(value: Any, what: str) -> Json:
    if not isinstance(value, dict):
        raise ProviderError("bad_data", f"{what}: expected a JSON object")
    return value


def page_items(page: Any, path: str) -> list[Json]:
    """The `data` of one list page: a list of objects, or a `bad_data` error naming the endpoint."""
    data = _object(page, path).get("data")
    if not isinstance(data, list) or not all(isinstance(i, dict) for i in data):
        raise ProviderError("bad_data", f"{path}: `data` must be a list of objects.")
    return data


def _reason(exc: httpx.TransportError) -> str:
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0][:200]


def _iso(value: date | datetime | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return value.isoformat()


# --- JSON → records ------------------------------------------------------------------------------------


class _Item:
    """One JSON object being read; every complaint names the item and the field."""

    def __init__(self, kind: str, data: Json) -> None:
        self.data = data
        self.name = f"{kind} {str(data.get('id', '?'))[:80]!r}"

    def text(self, key: str, *, required: bool = True, limit: int = 200) -> str | None:
        value = self.data.get(key)
        if value is None and not required:
            return None
        if not isinstance(value, str) or not value.strip():
            raise self.bad(f"`{key}` must be a non-empty string")
        if len(value) > limit:
            raise self.bad(f"`{key}` is longer than {limit} characters")
        return value

    def need(self, key: str, limit: int = 200) -> str:
        value = self.text(key, limit=limit)
        assert value is not None
        return value

    def amount(self, key: str, *, default: str | None = None, negative: bool = False,
               source: Json | None = None) -> Decimal:
        value = (self.data if source is None else source).get(key, default)
        if not isinstance(value, str):
            raise self.bad(f"`{key}` must be a decimal string like \"12.50\", not {type(value).__name__}")
        try:
            return parse_amount(value, field=key, allow_negative=negative)
        except InvalidInput as exc:
            raise self.bad(exc.message) from None

    def day(self, key: str) -> date:
        try:
            return date.fromisoformat(self.need(key))
        except ValueError:
            raise self.bad(f"`{key}` must be an ISO date like 2026-10-31") from None

    def instant(self, key: str, *, required: bool = True) -> datetime | None:
        raw = self.text(key, required=required)
        if raw is None:
            return None
        try:
            value = datetime.fromisoformat(raw)
        except ValueError:
            raise self.bad(f"`{key}` must be an ISO 8601 instant like 2026-10-01T00:00:00Z") from None
        if value.tzinfo is None:
            raise self.bad(f"`{key}` must carry a UTC offset")
        return value.astimezone(UTC)

    def when(self, key: str) -> datetime:
        value = self.instant(key)
        assert value is not None
        return value

    def currency(self) -> str:
        try:
            return normalize_currency(self.need("currency", 8))
        except InvalidInput as exc:
            raise self.bad(exc.message) from None

    def choice(self, key: str, table: Mapping[str, Any]) -> Any:
        value = self.need(key)
        if value not in table:
            raise self.bad(f"`{key}` {value[:30]!r} is not one of {', '.join(table)}")
        return table[value]

    def bad(self, why: str) -> ProviderError:
        return ProviderError("bad_data", f"{self.name}: {why}")


def usage_record(data: Json, target: Target) -> UsageIn:
    item = _Item("usage", data)
    dims = data.get("dimensions") or {}
    if not isinstance(dims, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in dims.items()):
        raise item.bad("`dimensions` must map strings to strings")
    deployment = item.text("deployment", required=False, limit=120)
    deployment_id = target.deployments.get(deployment) if deployment else None
    if deployment and deployment_id is None:
        dims = {**dims, "deployment": deployment}  # a deployment we do not know yet: keep its name, not lose it
    return UsageIn(
        account_id=target.account_id, meter=item.need("meter", 64), quantity=item.amount("quantity", negative=True),
        unit=item.need("unit", 32), cost=item.amount("cost", negative=True), currency=item.currency(),
        period_start=item.when("start"), period_end=item.when("end"), source=target.source,
        external_id=item.need("id"), deployment_id=deployment_id, provider_id=target.provider_id,
        dimensions=dict(dims),
    )


def invoice_record(data: Json, target: Target) -> InvoiceIn:
    item = _Item("invoice", data)
    raw_lines = data.get("lines")
    if not isinstance(raw_lines, list) or not all(isinstance(li, dict) for li in raw_lines):
        raise item.bad("`lines` must be a list of objects")
    fees = data.get("fees") or {}
    if not isinstance(fees, dict):
        raise item.bad("`fees` must be an object")
    deployment = item.text("deployment", required=False, limit=120)
    return InvoiceIn(
        account_id=target.account_id, source=target.source, external_id=item.need("id"),
        status=item.choice("status", INVOICE_STATUS), issue_date=item.day("issue_date"),
        due_date=item.day("due_date"), period_start=item.day("period_start"), period_end=item.day("period_end"),
        currency=item.currency(), lines=tuple(_line(item, li) for li in raw_lines),
        fee_platform=item.amount("platform", default="0", source=fees),
        fee_provider=item.amount("provider", default="0", source=fees),
        fee_network=item.amount("network", default="0", source=fees),
        tax=item.amount("tax", default="0"), discount=item.amount("discount", default="0"),
        credits_applied=item.amount("credits_applied", default="0"),
        payment_url=item.text("payment_url", required=False, limit=500),
        deployment_id=target.deployments.get(deployment) if deployment else None,
        provider_id=target.provider_id, lease_ref=item.text("lease_ref", required=False, limit=120),
    )


def _line(item: _Item, data: Json) -> LineIn:
    line = _Item(f"{item.name} line", data)
    try:
        return LineIn(description=line.need("description", 500), quantity=line.amount("quantity", negative=True),
                      unit=line.need("unit", 32), unit_price=line.amount("unit_price", negative=True),
                      total=line.amount("amount", negative=True),
                      resource_type=line.text("meter", required=False, limit=64))
    except ProviderError as exc:
        raise item.bad(exc.message) from None


def payment_record(data: Json, target: Target) -> PaymentIn:
    item = _Item("payment", data)
    invoice_id = item.text("invoice_id", required=False)
    if item.amount("amount") <= 0:
        raise item.bad("`amount` must be more than zero")
    return PaymentIn(
        account_id=target.account_id, source=target.source, external_id=item.need("id"),
        amount=item.amount("amount"), currency=item.currency(), status=item.choice("status", PAYMENT_STATUS),
        method=item.choice("method", {m.value: m for m in PaymentMethod}), paid_at=item.instant("paid_at",
                                                                                               required=False),
        invoice_external=(target.source, invoice_id) if invoice_id else None,
        tx_hash=item.text("tx_hash", required=False, limit=130),
    )


def updated_at(data: Json) -> datetime:
    """A payment's `updated_at`: the high-water mark of `payments?updated_since=`."""
    value = _Item("payment", data).instant("updated_at")
    assert value is not None
    return value
