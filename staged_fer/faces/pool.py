"""The worker processes that align_target and predict spread their photos over.

Each worker builds what it needs once (``make(*args)``: cascades, dlib's model) and is then
called on one item after another; results come back in the order of the items, so the output
does not depend on the number of workers. A worker is one core: OpenCV runs one thread in it,
also when the single worker runs in this process.
"""
from __future__ import annotations

import multiprocessing
import os
from typing import Any, Callable, Iterator, Sequence

import cv2

Worker = Callable[[Any], Any]


def worker_count(requested: int) -> int:
    """Processes for ``requested`` workers (`align.workers`, predict's --workers): 0 = one per available core."""
    return requested if requested > 0 else len(os.sched_getaffinity(0))


def _built(make: Callable[..., Worker], args: tuple) -> Worker:
    cv2.setNumThreads(1)   # one worker per core already; OpenCV's own threads would oversubscribe
    return make(*args)


_worker: list[Worker] = []   # in a worker process: what its ``make`` built


def _start(make: Callable[..., Worker], args: tuple) -> None:
    _worker[:] = [_built(make, args)]


def _call(item):
    return _worker[0](item)


class WorkerPool:
    """``make(*args)`` built in each of ``processes`` spawned processes, or in this process when
    ``processes`` is at most 1, and called on items by :meth:`imap`. Used as a context manager:
    leaving it on an error (or a consumer's early stop) stops the workers at once."""

    def __init__(self, processes: int, make: Callable[..., Worker], args: tuple = ()):
        self.processes, self.make, self.args = processes, make, args
        self._pool = None
        self._here: Worker | None = None
        self._threads = 0

    def __enter__(self) -> "WorkerPool":
        if self.processes <= 1:
            self._threads = cv2.getNumThreads()
            self._here = _built(self.make, self.args)
        else:
            # spawn: workers never inherit CUDA state or the threads of torch/OpenCV from this process.
            ctx = multiprocessing.get_context("spawn")
            self._pool = ctx.Pool(self.processes, initializer=_start, initargs=(self.make, self.args))
        return self

    def __exit__(self, *exc) -> None:
        if self._pool is not None:
            self._pool.terminate() if exc[0] is not None else self._pool.close()
            self._pool.join()
            self._pool = None
        elif self._here is not None:
            self._here = None
            cv2.setNumThreads(self._threads)

    def imap(self, items: Sequence, chunksize: int) -> Iterator:
        """The results of ``items`` in order, each as soon as it is ready. Worker processes are
        handed all the items now (``chunksize`` at a time); in this process each item is worked
        on when its result is asked for."""
        if self._pool is not None:
            return self._pool.imap(_call, items, chunksize=chunksize)
        if self._here is None:
            raise RuntimeError("WorkerPool.imap called outside its `with` block")
        return map(self._here, items)
