"""A billing provider speaking the contract of `billing_core.sources.provider_api`, on a real local port.

`FakeProvider` serves `/api/v1/usage`, `/api/v1/invoices`, `/api/v1/invoices/{id}` and `/api/v1/payments`
from in-memory lists over `http.server.ThreadingHTTPServer` on 127.0.0.1:0, with the filters and the
cursor pagination of the contract, and misbehaves on request: a delay before every answer, 500s for the
first N requests (or all), 429 with Retry-After, a required bearer token. Every request is logged
(path and query) so tests can check what an incremental sync asked for. Used by the tests and by
`bench/sync.py`. `FakeStripe` is the same server and misbehaviour speaking Stripe's list endpoints instead.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

Json = dict[str, Any]


@dataclass
class Behaviour:
    delay: float = 0.0  # seconds before every answer
    fail_first: int = 0  # the first N requests answer 500
    always_fail: bool = False
    rate_limit_first: int = 0  # then the next N answer 429 with `retry_after`
    retry_after: str = "1"
    page_size: int = 100
    token: str | None = None
    # Shared by several providers: each one's first request waits there for the others' first requests, and
    # answers 503 to everything if they never come (only a concurrent sync gets past it).
    rendezvous: threading.Barrier | None = None


@dataclass
class FakeProvider:
    behaviour: Behaviour = field(default_factory=Behaviour)
    usage: list[Json] = field(default_factory=list)
    invoices: list[Json] = field(default_factory=list)
    payments: list[Json] = field(default_factory=list)
    hidden_invoices: list[Json] = field(default_factory=list)  # reachable by id only, not in lists
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                provider._answer(self)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._server.block_on_close = False  # a handler still sleeping must not hold the test's teardown
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> FakeProvider:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def paths(self) -> list[str]:
        with self._lock:
            return [p for p, _q in self.requests]

    def queries(self, path: str) -> list[dict[str, str]]:
        with self._lock:
            return [q for p, q in self.requests if p == path]

    def forget_requests(self) -> None:
        with self._lock:
            self.requests.clear()

    # --- serving ---

    def _answer(self, http: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(http.path)
        query = dict(parse_qsl(parts.query))
        with self._lock:
            self.requests.append((parts.path, query))
            n = len(self.requests)
        b = self.behaviour
        if b.rendezvous is not None and not self._met(b.rendezvous, first=n == 1):
            _send(http, 503, {"error": "the other providers were never asked at the same time"})
            return
        if b.delay:
            time.sleep(b.delay)
        if b.always_fail or n <= b.fail_first:
            _send(http, 500, {"error": "internal"})
        elif n <= b.fail_first + b.rate_limit_first:
            _send(http, 429, {"error": "slow down"}, {"Retry-After": b.retry_after})
        elif b.token and http.headers.get("Authorization") != f"Bearer {b.token}":
            _send(http, 401, self._refusal())
        else:
            _send(http, *self._route(parts.path, query))

    def _refusal(self) -> Any:
        """The body of a 401 for a wrong token."""
        return {"error": "bad token"}

    def _met(self, rendezvous: threading.Barrier, *, first: bool) -> bool:
        if first:
            with contextlib.suppress(threading.BrokenBarrierError):  # broken: it says so just below
                rendezvous.wait(timeout=3)
        return not rendezvous.broken

    def _route(self, path: str, q: dict[str, str]) -> tuple[int, Any]:
        if path == "/api/v1/usage":
            start, end = _instant(q.get("start")), _instant(q.get("end"))
            items = [u for u in self.usage if (start is None or _instant(u["start"]) >= start)  # type: ignore[operator]
                     and (end is None or _instant(u["start"]) < end)]  # type: ignore[operator]
            return 200, self._page(items, q)
        if path == "/api/v1/invoices":
            items = [i for i in self.invoices if (not q.get("status") or i["status"] == q["status"])
                     and (not q.get("start") or i["issue_date"] >= q["start"])
                     and (not q.get("end") or i["issue_date"] <= q["end"])]
            return 200, self._page(items, q)
        if path.startswith("/api/v1/invoices/"):
            wanted = path.rsplit("/", 1)[1]
            found = next((i for i in [*self.invoices, *self.hidden_invoices] if i["id"] == wanted), None)
            return (200, found) if found else (404, {"error": "no such invoice"})
        if path == "/api/v1/payments":
            since = _instant(q.get("updated_since"))
            items = [p for p in self.payments
                     if since is None or _instant(p["updated_at"]) >= since]  # type: ignore[operator]
            return 200, self._page(items, q)
        return 404, {"error": "no such endpoint"}

    def _page(self, items: list[Json], q: dict[str, str]) -> Json:
        offset = int(q.get("cursor") or 0)
        size = self.behaviour.page_size
        more = offset + size < len(items)
        return {"data": items[offset:offset + size], "next_cursor": str(offset + size) if more else None}


@dataclass
class FakeStripe(FakeProvider):
    """Stripe's list endpoints `/v1/invoices|charges|payment_intents` with the same server and misbehaviour:
    `customer` and `created[gte]` filters, newest first, pages of `limit` (at most `behaviour.page_size`)
    after `starting_after` with `has_more`, and Stripe's error bodies `{"error": {"message", "type"}}`."""

    lists: dict[str, list[Json]] = field(default_factory=dict)  # "invoices" → Stripe objects
    ignore_customer: bool = False  # a broken "compatible" API that answers every customer's objects
    broken: set[str] = field(default_factory=set)  # list names that always answer 500

    def _refusal(self) -> Any:
        return stripe_error("Invalid API Key provided: sk_test_****", "invalid_request_error")

    def _route(self, path: str, q: dict[str, str]) -> tuple[int, Any]:
        name = path.removeprefix("/v1/")
        if name in self.broken:
            return 500, stripe_error("An unknown error occurred.", "api_error")
        if name == path or name not in self.lists:
            return 404, stripe_error(f"Unrecognized request URL (GET: {path}).", "invalid_request_error")
        customer = q.get("customer")
        if not any(o.get("customer") == customer for objects in self.lists.values() for o in objects):
            return 400, stripe_error(f"No such customer: '{customer}'", "invalid_request_error")
        since = int(q.get("created[gte]", "0"))
        items = sorted((o for o in self.lists[name] if o["created"] >= since
                        and (self.ignore_customer or o.get("customer") == customer)),
                       key=lambda o: o["created"], reverse=True)
        return self._stripe_page(path, items, q)

    def _stripe_page(self, path: str, items: list[Json], q: dict[str, str]) -> tuple[int, Any]:
        start = 0
        if "starting_after" in q:
            ids = [o["id"] for o in items]
            if q["starting_after"] not in ids:
                return 400, stripe_error(f"No such object: '{q['starting_after']}'", "invalid_request_error")
            start = ids.index(q["starting_after"]) + 1
        size = min(int(q.get("limit", "10")), self.behaviour.page_size)
        return 200, {"object": "list", "url": path, "data": items[start:start + size],
                     "has_more": start + size < len(items)}


def stripe_error(message: str, kind: str) -> Json:
    return {"error": {"message": message, "type": kind}}


def _send(http: BaseHTTPRequestHandler, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
    payload = json.dumps(body).encode()
    try:
        http.send_response(status)
        http.send_header("Content-Type", "application/json")
        http.send_header("Content-Length", str(len(payload)))
        for key, value in (headers or {}).items():
            http.send_header(key, value)
        http.end_headers()
        http.wfile.write(payload)
    except (BrokenPipeError, ConnectionResetError):
        pass  # the client gave up waiting (a timeout test): nothing to answer


def _instant(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def refused_url() -> str:
    """A local URL where nothing listens: connections are refused at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


# --- data in the contract's shape ---------------------------------------------------------------------------


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def hourly_usage(prefix: str, start: datetime, hours: int, *, cost: str = "0.42", meter: str = "cpu",
                 quantity: str = "10") -> list[Json]:
    return [{"id": f"{prefix}-{meter}-{h}", "meter": meter, "quantity": quantity, "unit": "vCPU-h", "cost": cost,
             "currency": "USD", "start": iso(start + timedelta(hours=h)), "end": iso(start + timedelta(hours=h + 1)),
             "dimensions": {"region": "us-east"}} for h in range(hours)]


def invoice(ident: str, *, status: str = "open", issued: date = date(2026, 11, 1), amount: str = "100.00",
            meter: str = "cpu", quantity: str = "1000") -> Json:
    unit_price = str((Decimal(amount) / Decimal(quantity)).normalize())
    return {"id": ident, "status": status, "issue_date": issued.isoformat(),
            "due_date": (issued + timedelta(days=30)).isoformat(), "period_start": "2026-10-01",
            "period_end": "2026-10-31", "currency": "USD", "tax": "0",
            "lines": [{"description": f"{meter} usage", "meter": meter, "quantity": quantity, "unit": "vCPU-h",
                       "unit_price": unit_price, "amount": amount}]}


def payment(ident: str, invoice_id: str, amount: str, *, updated: datetime) -> Json:
    return {"id": ident, "invoice_id": invoice_id, "amount": amount, "currency": "USD", "status": "succeeded",
            "method": "card", "paid_at": iso(updated), "updated_at": iso(updated)}
