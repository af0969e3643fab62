"""Acks first (bot.acks): work handed off after an ack waits while other Slack requests are being acknowledged."""

from __future__ import annotations

import threading

from bot.acks import AckGate


def test_work_waits_while_an_ack_is_in_flight_and_goes_once_none_is() -> None:
    gate = AckGate()
    assert gate.wait_for_quiet(timeout=0)  # nothing in flight: no wait at all
    entered, release = threading.Event(), threading.Event()

    def slow_ack() -> None:
        with gate.acknowledging():
            entered.set()
            release.wait(5)

    ack = threading.Thread(target=slow_ack)
    ack.start()
    entered.wait(5)
    assert not gate.wait_for_quiet(timeout=0.05)  # still acknowledging: the answer is held back (up to its cap)
    released = threading.Timer(0.05, release.set)
    released.start()
    assert gate.wait_for_quiet(timeout=5)  # the ack went out: the answer goes now
    ack.join(5)


def test_a_failing_request_still_opens_the_gate() -> None:
    gate = AckGate()
    try:
        with gate.acknowledging():
            raise ValueError("the request failed")
    except ValueError:
        pass
    assert gate.wait_for_quiet(timeout=0)
