"""Acks first: slow work waits while Slack requests are being acknowledged in this process.

A web process answers a burst of slash commands with one interpreter lock. Every ack must reach Slack within
3 seconds, and every answer after it (queries, Block Kit, uploads) competes with the acks still in flight for
that lock. `AckGate` counts the Slack requests being acknowledged; work handed off after an ack waits until
none are (at most `MAX_WAIT_S`, so a steady stream of requests can delay answers but never starve them).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

MAX_WAIT_S = 0.5


class AckGate:
    def __init__(self) -> None:
        self._in_flight = 0
        self._quiet = threading.Condition()

    @contextmanager
    def acknowledging(self) -> Iterator[None]:
        """Around the handling of one Slack request, up to its HTTP answer (the ack)."""
        with self._quiet:
            self._in_flight += 1
        try:
            yield
        finally:
            with self._quiet:
                self._in_flight -= 1
                if self._in_flight == 0:
                    self._quiet.notify_all()

    def wait_for_quiet(self, timeout: float = MAX_WAIT_S) -> bool:
        """Block until no ack is in flight (True), or `timeout` seconds passed (False)."""
        with self._quiet:
            return self._quiet.wait_for(lambda: self._in_flight == 0, timeout)
