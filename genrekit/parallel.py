"""Mapping a function over items in worker processes, with a progress bar.

Workers run one thread each (torch, OpenMP, MKL, OpenBLAS) and, on Linux, are forked and die with the
process that started them, even when it is killed with SIGKILL.
"""

import ctypes
import multiprocessing
import os
import signal
import sys
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool

from .progress import progress_bar

_LINUX = sys.platform.startswith("linux")
_PR_SET_PDEATHSIG = 1
_THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
_END = object()


def _init_worker(parent, initializer, initargs):
    for name in _THREAD_VARIABLES:
        os.environ[name] = "1"
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)
    if _LINUX:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL))
        if os.getppid() != parent:  # the parent died before prctl: nobody is left to kill this worker
            os._exit(1)
    if initializer is not None:
        initializer(*initargs)


def worker_pool(workers, initializer=None, initargs=()):
    """A `ProcessPoolExecutor` of `workers` single-threaded processes that run `initializer(*initargs)` first.

    On Linux the workers are forked and get SIGKILL when the thread that started them ends, so create and
    use the pool from one long-lived thread.
    """
    context = multiprocessing.get_context("fork" if _LINUX else None)
    return ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker,
                               initargs=(os.getpid(), initializer, initargs))


def submit_bounded(pool, fn, items, limit, *, arg=None):
    """Run `fn(item)` (or `fn(arg(item))`) in `pool` for each item, at most `limit` at a time, and yield
    `(item, future)` as each finishes; items are taken from `items` only when they are submitted.

    Once a worker has died (`BrokenProcessPool`) nothing more is submitted: the futures in flight all
    fail with it, and the items not yet taken stay in `items`.
    """
    items, in_flight, broken = iter(items), {}, False
    while True:
        while not broken and len(in_flight) < limit:
            item = next(items, _END)
            if item is _END:
                break
            try:
                future = pool.submit(fn, item if arg is None else arg(item))
            except BrokenProcessPool as error:
                future, broken = Future(), True
                future.set_exception(error)
            in_flight[future] = item
        if not in_flight:
            return
        done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
        for future in done:
            broken = broken or isinstance(future.exception(), BrokenProcessPool)
            yield in_flight.pop(future), future


def map_unordered(fn, items, *, workers=None, desc=None, unit="item", progress=True, initializer=None,
                  initargs=()):
    """Yield `fn(item)` for every item, in the order they finish, showing a progress bar.

    `fn` runs in `workers` processes (default: one per CPU, never more than items) set up by `worker_pool`;
    with one worker it runs in this process (after `initializer(*initargs)`, without the thread pinning).
    `fn` and the items must pickle. An exception in `fn` ends the map and is raised here, with a note
    naming the item.
    """
    items = list(items)
    if not items:
        return
    workers = max(1, min(workers or os.cpu_count() or 1, len(items)))
    if desc and workers > 1:
        desc = f"{desc} ({workers} workers)"
    with progress_bar(total=len(items), desc=desc, unit=unit, enabled=progress) as bar:
        if workers == 1:
            if initializer is not None:
                initializer(*initargs)
            for item in items:
                result = _noted(item, fn, item)
                bar.update()
                yield result
            return
        pool = worker_pool(workers, initializer, initargs)
        try:
            for item, future in submit_bounded(pool, fn, items, 2 * workers):
                result = _noted(item, future.result)
                bar.update()
                yield result
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


def _noted(item, call, *args):
    try:
        return call(*args)
    except Exception as error:
        error.add_note(f"while processing {item!r}")
        raise
