"""One engine for work over many files: this machine's processes, or a Ray cluster's tasks (`genrekit.distributed`).

The work is described once, by an object that travels to the workers (`Work`): `setup()` runs once per
worker process (loading a model), `run(state, item)` once per item, and `crashed(item)` gives the result of
an item whose worker died on it. Locally, a pool of single-threaded processes (killed with their parent)
runs two items per worker at a time; when a worker dies (a decoder crash), the items that were in flight are
tried again one at a time in a fresh pool, and an item that kills a worker on its own gets `crashed(item)`.
On Ray, Ray retries the task elsewhere, then the item gets `crashed(item)`. Either way each (item, result) is
handed to `handle` in this process as it arrives, so the caller commits results as they come.
"""

import os
from collections import deque
from concurrent.futures.process import BrokenProcessPool
from typing import Protocol

from .exceptions import ParameterError
from .parallel import submit_bounded, worker_pool

ENGINES = ("local", "ray")


class Work(Protocol):
    """What each worker does (must pickle)."""

    def setup(self):
        """The state a worker process makes once (e.g. a loaded model)."""

    def run(self, state, item):
        """The result for one item; never raises for a bad item, returns what went wrong instead."""

    def crashed(self, item):
        """The result for an item whose worker process died on it."""


def check_engine(engine, address=None):
    """Refuse, before any work, an unknown engine, an address without Ray, or the ray engine without Ray
    installed (one line saying how to install it)."""
    if engine not in ENGINES:
        raise ParameterError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    if engine == "local" and address is not None:
        raise ParameterError("an address is for the ray engine")
    if engine == "ray":
        from .distributed import require_ray

        require_ray()


def run_work(work, items, handle, *, count, engine="local", workers=None, address=None):
    """`handle(item, work.run(state, item))` for every item, on this machine (`engine="local"`: `workers`
    processes, default one per core; one: in this process) or as Ray tasks (`engine="ray"`, the cluster at
    `address`: see `genrekit.distributed.ray_session`; `workers` at once, default one per CPU of the cluster).
    `items` are taken only as they are handed out (`count` of them at most)."""
    check_engine(engine, address)
    if engine == "local":
        _run_local(work, items, handle, count, workers)
    else:
        from .distributed import run_on_ray  # Ray is optional, and slow to import

        run_on_ray(work, items, handle, count=count, workers=workers, address=address)


_WORK, _STATE = None, None


def _set_up(work):
    global _WORK, _STATE
    _WORK, _STATE = work, work.setup()


def _run_item(item):
    return _WORK.run(_STATE, item)


def _drain(queue):
    while queue:
        yield queue.popleft()


def _run_local(work, items, handle, count, workers):
    workers = max(1, min(workers or os.cpu_count() or 1, count))
    if workers == 1:
        state = work.setup()
        for item in items:
            handle(item, work.run(state, item))
        return
    items, suspects = iter(items), deque()
    while True:
        pool, crashed = worker_pool(workers, _set_up, (work,)), []
        try:
            for source, limit in ((_drain(suspects), 1), (items, 2 * workers)):
                for item, future in submit_bounded(pool, _run_item, source, limit):
                    try:
                        result = future.result()
                    except BrokenProcessPool:
                        crashed.append(item)
                        continue
                    handle(item, result)
                if crashed:
                    break
        finally:
            pool.shutdown(wait=not crashed, cancel_futures=True)
        if not crashed:
            return
        if len(crashed) == 1:
            handle(crashed[0], work.crashed(crashed[0]))
        else:
            suspects.extend(crashed)
