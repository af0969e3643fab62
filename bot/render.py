"""Charts and PDFs off the web process's GIL: rendered in worker processes, awaited by the calling thread.

matplotlib and WeasyPrint are CPU-bound Python. Run on the web process's threads they hold the GIL for
hundreds of milliseconds at a time, and every ack Slack is waiting for (3 seconds at most) queues behind
them. `Renderer` runs them in a pool of processes instead; the thread that asked only waits on a future,
which releases the GIL, so acks stay fast however many charts are being drawn. The pool starts on first use,
or before the first request when the process calls `warm()` (`billing-bot web` does), runs at nice 10, and
uses the "forkserver" method, since forking a process full of threads can copy a held lock into the child.
`in_process=True` renders on the calling thread (a process that renders little, or a test that counts calls).
"""

from __future__ import annotations

import multiprocessing
import os
import threading
from collections.abc import Callable
from concurrent.futures import Executor, ProcessPoolExecutor
from typing import ParamSpec, TypeVar

import charts

P = ParamSpec("P")
RENDER_NICENESS = 10
T = TypeVar("T")


class Renderer:
    def __init__(self, workers: int | None = None, *, in_process: bool = False) -> None:
        self.workers = workers or os.cpu_count() or 1
        self.in_process = in_process
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    def __call__(self, render: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """`render(*args, **kwargs)` in a worker process (a top-level function, picklable arguments)."""
        if self.in_process:
            return render(*args, **kwargs)
        return self.executor().submit(render, *args, **kwargs).result()

    def executor(self) -> Executor:
        """The process pool itself, for work that fans out (a ZIP of many PDFs)."""
        with self._lock:
            if self._pool is None:
                context = multiprocessing.get_context("forkserver")
                context.set_forkserver_preload(["charts", "billing_core.exports"])  # imported once, not per job
                # Nice 10: rendering is background work; on a busy machine the web process's acks get the CPU first.
                self._pool = ProcessPoolExecutor(self.workers, mp_context=context, initializer=os.nice,
                                                 initargs=(RENDER_NICENESS,))
            return self._pool

    def warm(self) -> None:
        """Start the processes and draw a first chart in each, before the first request: spawning them and
        loading matplotlib's fonts costs seconds of CPU that would otherwise land on the first burst's acks."""
        if self.in_process:
            return
        pool = self.executor()
        for started in [pool.submit(charts.warm_up) for _ in range(self.workers)]:
            started.result()

    def shutdown(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.shutdown(wait=True, cancel_futures=True)
                self._pool = None
