"""The one error tree of the billing core.

Every error a user can cause or meet is a `BillingError`; the edges (CLI, Slack handlers, web-hooks)
translate it once into a friendly message. `hint` is an example of a correct request.
"""

from __future__ import annotations


class BillingError(Exception):
    """Base of every expected failure; `message` is safe to show to a user."""

    def __init__(self, message: str, *, hint: str | None = None, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.field = field


class InvalidInput(BillingError):
    """The request itself is wrong (bad date, unknown status, absurd amount…)."""


class NotFound(BillingError):
    """The thing asked for does not exist (or is not visible to the asker)."""


class Forbidden(BillingError):
    """The asker may not see or change this."""


class Conflict(BillingError):
    """The change contradicts what is stored (e.g. a payment larger than the amount due)."""


class UpstreamUnavailable(BillingError):
    """A provider, processor or Slack could not be reached; figures may be incomplete."""
