"""A render process that dies (OOM killer, native crash, kill -9) costs at most a retry, never every later chart.

Real pools and real SIGKILLs: a worker of a warm `Renderer` is killed and the next renders must still give PNGs,
on one new pool however many threads met the broken one.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

import charts
from bot.render import RENDER_NICENESS, Renderer

PNG = b"\x89PNG\r\n\x1a\n"


def chart() -> bytes:
    return charts.cost_trend_png([], currency="USD")


def slow_chart(started: str) -> bytes:
    """A chart that says which process started it (a file named by pid) and takes long enough to be killed."""
    Path(started, str(os.getpid())).touch()
    time.sleep(0.5)
    return chart()


def kill(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)


def wait_until_gone(pids: Iterable[int], timeout: float = 10.0) -> None:
    """Until none of `pids` runs. Once the pool saw a worker die it terminates the others, so this also waits
    until the pool knows it is broken."""
    deadline = time.monotonic() + timeout
    for pid in pids:
        while _alive(pid):
            assert time.monotonic() < deadline, f"render process {pid} outlived its broken pool"
            time.sleep(0.02)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture
def warm_renderer() -> Iterator[Renderer]:
    warm = Renderer(workers=2)
    warm.warm()
    yield warm
    warm.shutdown()


def test_a_killed_worker_is_replaced_and_the_render_retried(warm_renderer: Renderer) -> None:
    assert warm_renderer(chart).startswith(PNG)
    first_pids = warm_renderer.warmed_pids()
    assert first_pids and warm_renderer.pools_started == 1

    kill(min(first_pids))
    wait_until_gone(first_pids)  # the survivors too: the broken pool leaves no processes behind

    assert warm_renderer(chart).startswith(PNG)
    assert warm_renderer(chart).startswith(PNG)
    assert warm_renderer.pools_started == 2
    assert warm_renderer.warmed_pids().isdisjoint(first_pids)
    assert warm_renderer(os.nice, 0) == min(os.nice(0) + RENDER_NICENESS, 19)  # still background work


def test_fan_out_after_a_killed_worker_gets_a_new_pool(warm_renderer: Renderer) -> None:
    pids = warm_renderer.warmed_pids()
    kill(min(pids))
    wait_until_gone(pids)

    futures = [warm_renderer.executor().submit(chart) for _ in range(3)]
    assert all(future.result(timeout=30).startswith(PNG) for future in futures)
    assert warm_renderer.pools_started == 2


def test_threads_rendering_when_the_pool_breaks_all_get_their_chart_from_one_new_pool(
        warm_renderer: Renderer, tmp_path: Path) -> None:
    results: list[bytes] = []
    failures: list[BaseException] = []

    def render() -> None:
        try:
            results.append(warm_renderer(slow_chart, str(tmp_path)))
        except BaseException as error:  # the assertion below shows it
            failures.append(error)

    threads = [threading.Thread(target=render) for _ in range(6)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 10
    while not (running := list(tmp_path.iterdir())):
        assert time.monotonic() < deadline, "no render started"
        time.sleep(0.01)
    kill(int(running[0].name))
    for thread in threads:
        thread.join(timeout=30)

    assert not failures
    assert len(results) == 6 and all(png.startswith(PNG) for png in results)
    assert warm_renderer.pools_started == 2
