"""One Stripe customer's invoices, charges and payment intents from Stripe's API (or a Stripe-compatible one).

Contract (Stripe's own list endpoints; `base` is e.g. `https://api.stripe.com`, a trailing `/v1` is allowed):

    Authorization: Bearer <secret key>       every request; 401/403 → the key is wrong, never retried
    GET {base}/v1/invoices?customer=cus_…&limit=100[&created[gte]=<unix>][&starting_after=<id>]
    GET {base}/v1/charges?…                  the same query
    GET {base}/v1/payment_intents?…          the same query

    A list answers `{"object": "list", "data": [...], "has_more": true|false}`; while `has_more` is true the
    client asks again with `starting_after=<id of the page's last object>`. Amounts stay Stripe's integer
    minor units here: `stripe.parse_document` converts them.
    An error answers `{"error": {"message": "...", "type": "..."}}`; that message and type end the
    `ProviderError`'s message, so "Invalid API Key provided: sk_test_****" reaches the operator as Stripe
    said it.

Failure handling is the provider client's (`provider_api.JsonGetter` and its `RetryPolicy`): a timeout per
request, transport errors and 5xx retried with backoff and jitter, 429 waits for Retry-After, other 4xx
fail at once. Every list is fetched to its end before anything is returned, so a caller gets all of the
customer's objects or a `ProviderError`, never half a list. An object that names another customer than
the one asked for is refused (`bad_data`): an endpoint that ignored the `customer` filter must not bill
someone else's invoices to this account.

No database work here: the objects go to `stripe.parse_document`, then to `imports.import_stripe_api`.
"""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from typing import Any

import httpx

from billing_core.sources.provider_api import MAX_PAGES, Json, JsonGetter, ProviderError, RetryPolicy, page_items
from billing_core.sources.stripe import ref_id

LISTS = ("/v1/invoices", "/v1/charges", "/v1/payment_intents")
PAGE_SIZE = 100  # the largest page Stripe serves
MAX_REASON = 300  # characters of Stripe's own error message kept: one line for an operator


def api_base(url: str) -> str:
    """The API's root, also when given with a trailing slash or `/v1` (as Stripe's docs write it)."""
    return url.rstrip("/").removesuffix("/v1")


def fetch_customer(base_url: str, api_key: str, customer: str, *, created_since: datetime | None = None,
                   policy: RetryPolicy | None = None) -> list[Json]:
    """Every invoice, charge and payment intent of `customer` (created at or after `created_since`)."""
    async def fetch() -> list[Json]:
        async with httpx.AsyncClient() as http:
            client = StripeClient(http, base_url, api_key, policy=policy)
            return await client.customer_objects(customer, created_since=created_since)

    return asyncio.run(fetch())


class StripeClient:
    """Stripe's list endpoints for one customer, through the shared retry policy."""

    def __init__(self, http: httpx.AsyncClient, base_url: str, api_key: str, *,
                 policy: RetryPolicy | None = None) -> None:
        self._api = JsonGetter(http, api_base(base_url), {"Authorization": f"Bearer {api_key}"}, policy=policy,
                               explain=stripe_error)

    @property
    def requests(self) -> int:
        return self._api.requests

    async def customer_objects(self, customer: str, *, created_since: datetime | None = None) -> list[Json]:
        query = {"customer": customer, "limit": str(PAGE_SIZE)}
        if created_since is not None:
            query["created[gte]"] = str(int(created_since.timestamp()))
        objects: list[Json] = []
        # One list after the other, not at once: a refused key then costs one request, not three.
        for path in LISTS:
            objects.extend(await self.list_all(path, query, customer))
        return objects

    async def list_all(self, path: str, query: dict[str, str], customer: str) -> list[Json]:
        """Every object of one list endpoint, following `starting_after` while `has_more`."""
        items: list[Json] = []
        after: str | None = None
        for _ in range(MAX_PAGES):
            page = await self._api.get_json(path, query | ({"starting_after": after} if after else {}))
            data = page_items(page, path)
            items.extend(_owned_by(customer, data, path))
            more = page.get("has_more")
            if more is False:
                return items
            if more is not True:
                # Guessing "no more" would silently import part of the list.
                raise ProviderError("bad_data", f"{path}: `has_more` must be true or false.")
            after = _next_after(data, after, path)
        raise ProviderError("bad_data", f"{path}: more than {MAX_PAGES} pages; the list never ends.")


def _owned_by(customer: str, data: list[Json], path: str) -> list[Json]:
    for obj in data:
        owner = ref_id(obj.get("customer"))
        if owner is not None and owner != customer:
            raise ProviderError("bad_data", f"{path}: {str(obj.get('id'))[:80]!r} belongs to customer "
                                            f"{owner[:80]!r}, not {customer!r}; the customer filter was ignored.")
    return data


def _next_after(data: list[Json], previous: str | None, path: str) -> str:
    """The id to ask the next page after: the page's last object's, which must move the list forward."""
    last = data[-1].get("id") if data else None
    if not isinstance(last, str) or not last:
        raise ProviderError("bad_data", f"{path}: `has_more` is true but the page's last object has no id.")
    if last == previous:
        raise ProviderError("bad_data", f"{path}: `starting_after={last}` answers the same page again; "
                                        "the list would never end.")
    return last


def stripe_error(response: httpx.Response) -> str:
    """Stripe's reason for refusing a request ("No such customer: 'cus_x' (invalid_request_error)"), on one
    line; empty when the body is not Stripe's error shape (a proxy's HTML page, say)."""
    try:
        body: Any = json.loads(response.content)
    except (ValueError, UnicodeDecodeError):
        return ""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict) or not isinstance(error.get("message"), str):
        return ""
    message = " ".join(error["message"].split())[:MAX_REASON]
    kind = error.get("type")
    return f"{message} ({kind[:60]})" if isinstance(kind, str) and kind else message
