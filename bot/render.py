"""Charts and PDFs off the web process's GIL: rendered in worker processes, awaited by the calling thread.

matplotlib and WeasyPrint are CPU-bound Python. Run on the web process's threads they hold the GIL for
hundreds of milliseconds at a time, and every ack Slack is waiting for (3 seconds at most) queues behind
them. `Renderer` runs them in a pool of processes instead; the thread that asked only waits on a future,
which releases the GIL, so acks stay fast however many charts are being drawn. The pool starts on first use,
or before the first request when the process calls `warm()` (`billing-bot web` does), runs at nice 10, and
uses the "forkserver" method, since forking a process full of threads can copy a held lock into the child.
`in_process=True` renders on the calling thread (a process that renders little, or a test that counts calls).

One dead worker (the OOM killer, a crash in a native library, `kill -9`) breaks the whole pool for good:
every later job raises `BrokenProcessPool`. So the first render to meet a broken pool replaces it with a new,
warmed one, and every render that failed on the broken pool is tried once more on the new one.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import ParamSpec, TypeVar

import charts

P = ParamSpec("P")
RENDER_NICENESS = 10
T = TypeVar("T")

log = logging.getLogger("billing_bot")


class Renderer:
    def __init__(self, workers: int | None = None, *, in_process: bool = False) -> None:
        self.workers = workers or os.cpu_count() or 1
        self.in_process = in_process
        #: Pools started so far: 1 once the first render ran, one more each time a dead worker broke the pool.
        self.pools_started = 0
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()
        self._warmed_pids: frozenset[int] = frozenset()

    def __call__(self, render: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """`render(*args, **kwargs)` in a worker process (a top-level function, picklable arguments)."""
        if self.in_process:
            return render(*args, **kwargs)
        pool = self._current_pool()
        try:
            return pool.submit(render, *args, **kwargs).result()
        except BrokenProcessPool:
            # Once. If this very job killed its worker (say, a chart too big for memory), a second failure is
            # reported to the user like any other, rather than breaking pool after pool.
            return self._replace(pool).submit(render, *args, **kwargs).result()

    def submit(self, render: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        """Start `render(*args, **kwargs)` in a worker process; a broken pool is replaced first. The job is not
        retried if a worker dies while it runs: its future fails, for the caller to report."""
        pool = self._current_pool()
        try:
            return pool.submit(render, *args, **kwargs)
        except BrokenProcessPool:
            return self._replace(pool).submit(render, *args, **kwargs)

    def executor(self) -> Executor:
        """The process pool, for work that fans out (a ZIP of many PDFs). Its `submit` is `Renderer.submit`, so
        a ZIP asked for after a worker died gets a new pool rather than the broken one."""
        return _RendererExecutor(self)

    def warm(self) -> None:
        """Start the processes and draw a first chart in each, before the first request: spawning them and
        loading matplotlib's fonts costs seconds of CPU that would otherwise land on the first burst's acks."""
        if self.in_process:
            return
        self._warm(self._current_pool())

    def warmed_pids(self) -> frozenset[int]:
        """The worker processes that ran the last warm-up (the pool starts processes as work arrives, so
        perhaps not all of them): for the logs, and for tests that kill one."""
        return self._warmed_pids

    def shutdown(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.shutdown(wait=True, cancel_futures=True)
                self._pool = None

    def _current_pool(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = self._start_pool()
            return self._pool

    def _start_pool(self) -> ProcessPoolExecutor:
        """A new pool; the caller holds `_lock`."""
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["charts", "billing_core.exports"])  # imported once, not per job
        self.pools_started += 1
        # Nice 10: rendering is background work; on a busy machine the web process's acks get the CPU first.
        return ProcessPoolExecutor(self.workers, mp_context=context, initializer=os.nice, initargs=(RENDER_NICENESS,))

    def _warm(self, pool: ProcessPoolExecutor) -> None:
        started = [pool.submit(_warm_up_worker) for _ in range(self.workers)]
        self._warmed_pids = frozenset(future.result() for future in started)

    def _replace(self, broken: ProcessPoolExecutor) -> ProcessPoolExecutor:
        """The pool to use instead of `broken`. Many threads meet the same broken pool at once: the first one
        here starts and warms the new pool, the others wait on the lock and then find it (not `broken`)."""
        with self._lock:
            if self._pool is broken or self._pool is None:
                log.warning("a render process died and broke the render pool; starting a new pool")
                # No waiting: the pool's own manager has already terminated and joined the workers that were
                # left; waiting here could hang a request thread on a worker that never answers.
                broken.shutdown(wait=False, cancel_futures=True)
                self._pool = self._start_pool()
                # Warmed while holding the lock, so the renders waiting to retry find fonts already loaded.
                self._warm(self._pool)
            return self._pool


class _RendererExecutor(Executor):
    """The renderer's pool as an `Executor`, replaced when broken. `shutdown` is Executor's no-op: the pool is
    the renderer's to stop, not a caller's."""

    def __init__(self, renderer: Renderer) -> None:
        self._renderer = renderer

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        return self._renderer.submit(fn, *args, **kwargs)


def _warm_up_worker() -> int:
    """`charts.warm_up` in a worker, answering which process it ran in."""
    charts.warm_up()
    return os.getpid()
