"""Replay protection: each signed request is accepted once, also when a burst of them (and their replays)
arrives at the same moment and their claims are written together."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from billing_core.db.engine import Database
from billing_core.db.models import SeenRequest
from billing_core.replay import LIFETIME, ReplayGuard

NOW = datetime(2026, 12, 4, 12, tzinfo=UTC)


def _burst(guard: ReplayGuard, keys: list[str], now: datetime = NOW) -> list[bool | BaseException]:
    """Claim every key from a thread of its own, all released at once; results in the order of `keys`."""
    barrier = threading.Barrier(len(keys))
    results: list[bool | BaseException] = [False] * len(keys)

    def one(i: int) -> None:
        barrier.wait()
        try:
            results[i] = guard.claim(keys[i], now=now)
        except BaseException as error:
            results[i] = error

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(keys))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return results


def _stored(db: Database) -> int:
    with db.unit_of_work() as s:
        return int(s.scalar(select(func.count()).select_from(SeenRequest)) or 0)


def test_a_burst_of_requests_is_accepted_once_each_and_their_replays_in_the_same_burst_are_refused(
        db: Database) -> None:
    guard = ReplayGuard(db)
    keys = [f"slack:v0=sig{i}" for i in range(40)]
    results = _burst(guard, keys + keys[:10])  # ten replays racing their originals
    for i in range(10):  # of two equal keys exactly one is accepted, whichever came first
        assert sorted([results[i], results[40 + i]]) == [False, True]
    assert results[10:40] == [True] * 30
    assert _stored(db) == 40
    assert _burst(guard, keys[:5]) == [False] * 5  # replayed later: refused too


def test_a_replay_is_refused_by_another_process_guard_too(db: Database) -> None:
    first, second = ReplayGuard(db), ReplayGuard(db)  # two web processes share the database
    assert first.claim("slack:v0=abc", now=NOW) is True
    assert second.claim("slack:v0=abc", now=NOW + timedelta(seconds=3)) is False


def test_expired_keys_are_pruned_and_fresh_ones_kept(db: Database) -> None:
    guard = ReplayGuard(db, prune_chance=1.0)
    guard.claim("slack:old", now=NOW)
    guard.claim("slack:new", now=NOW + LIFETIME + timedelta(minutes=1))
    with db.unit_of_work() as s:
        assert list(s.scalars(select(SeenRequest.key))) == ["slack:new"]


def test_when_the_database_fails_every_waiting_claim_fails_and_the_guard_recovers(
        db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    guard = ReplayGuard(db)
    broken = RuntimeError("database unreachable")

    def fail(batch: object) -> set[str]:
        raise broken

    monkeypatch.setattr(guard, "_insert", fail)
    assert _burst(guard, [f"slack:k{i}" for i in range(8)]) == [broken] * 8
    monkeypatch.undo()
    assert _burst(guard, [f"slack:k{i}" for i in range(8)]) == [True] * 8  # nothing was stored by the failure
