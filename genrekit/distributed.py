"""The ray engine of `genrekit.engine.run_work` (`pip install 'genrekit[ray]'`): tagging a library and
embedding a corpus past one machine.

The driver (this process) does what it does for the local engine: it scans the folder, skips unchanged
files, hashes each file as it hands it out and commits each result to SQLite as it arrives (or writes each
track's features to Parquet), so a killed driver resumes as a killed local run does. Each file or track is
one Ray task, `2 x workers` of them in flight: `workers` run at once in a placement group of one CPU per
task (spread over the nodes), the others wait in Ray's queue so that no worker idles between files. The
work (for tagging, the model file's bytes and the classifier's settings) reaches the workers through Ray's
object store (no shared model file needed) and is set up once per Ray worker process.

Why tasks and not Ray Data's `map_batches` over an actor pool, or our own actors: a task is retried by Ray
(`max_retries`) when its worker dies (killed, out of memory, a node lost), on another worker, and a file
that kills every worker it runs on fails alone after the retries, recorded as the local pool records it.
Ray Data restarts a dead actor and retries its whole batch without end (or fails the whole dataset once
retries are limited), and actor calls queued behind a crashing file share its fate; either would let one
bad file stop a library-wide run. Tasks also take the files one by one from the driver's scan, hashing
and the reuse of known content included, where Ray Data wants its items up front.

Files and datasets must be at the same paths on every node (shared storage) and genrekit installed on
every node; see the README.
"""

import logging
from contextlib import contextmanager
from functools import lru_cache

from .exceptions import GenrekitError, ParameterError
from .parallel import submit_bounded

try:
    import ray
    from ray.exceptions import WorkerCrashedError
    from ray.util.placement_group import placement_group, remove_placement_group
    from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy
except ImportError:  # an optional extra: only the ray engine needs it
    ray = None

INSTALL = "pip install 'genrekit[ray]'"
MAX_RETRIES = 2
"""Tries of a file after the first when its Ray worker dies; then it is recorded as having crashed it."""


def require_ray():
    """Raise a one-line `GenrekitError` saying how to install Ray when it is not installed."""
    if ray is None:
        raise GenrekitError(f"the ray engine needs Ray, which is not installed: {INSTALL}")


@contextmanager
def ray_session(address=None):
    """Connected to Ray: the cluster at `address` ("auto": the one `ray start` runs on this machine;
    HOST:PORT), or Ray's default (RAY_ADDRESS, else the one `ray start` runs here, else a new local instance,
    stopped at the end). A session already open in this process (`ray.init` by the caller) is used as it is."""
    require_ray()
    if ray.is_initialized():
        yield
        return
    try:
        ray.init(address=address, include_dashboard=False, logging_level=logging.WARNING)
    except ConnectionError as error:
        raise GenrekitError(f"Ray at {address}: {error}") from None
    try:
        yield
    finally:
        ray.shutdown()


class _RayTasks:
    """What `submit_bounded` needs of a pool: `submit(task, args)` runs a Ray task, as a `Future`."""

    @staticmethod
    def submit(task, args):
        return task.remote(*args).future()


def ray_map(fn, items, args, *, count, workers=None):
    """Yield `(item, future of fn(*args(item)))` for each item as Ray finishes it, inside `ray_session`.

    `workers` tasks run at once (None: one per CPU of the cluster; never more than `count`, the items at
    most), each reserving one CPU, and as many again wait in Ray's queue; a task whose worker dies is run
    again, `MAX_RETRIES` times at most, then its future raises `WorkerCrashedError`.
    """
    cpus = int(ray.cluster_resources().get("CPU", 0))
    if workers and workers > cpus:
        raise ParameterError(f"workers: {workers} asked, the Ray cluster has {cpus} CPUs")
    workers = max(1, min(workers or cpus, count))
    group = placement_group([{"CPU": 1}] * workers, strategy="SPREAD")
    try:
        ray.get(group.ready())
        task = ray.remote(fn).options(num_cpus=1, max_retries=MAX_RETRIES,
                                      scheduling_strategy=PlacementGroupSchedulingStrategy(group))
        yield from submit_bounded(_RayTasks, task, items, 2 * workers, arg=args)
    finally:
        remove_placement_group(group)


@lru_cache(maxsize=1)
def _worker_state(holder):
    """(work, its state) of the `Work` put in Ray's object store (`holder`: its reference, in a tuple so that
    Ray hands over the reference, not the object), set up once per worker process."""
    work = ray.get(holder[0])
    return work, work.setup()


def _run_task(holder, item):
    work, state = _worker_state(holder)
    return work.run(state, item)


def run_on_ray(work, items, handle, *, count, workers=None, address=None):
    """The ray engine of `genrekit.engine.run_work`: each item a Ray task on the cluster at `address` (see
    `ray_session`), `workers` at once (None: one per CPU of the cluster), each (item, result) handed to
    `handle` as it arrives; an item whose workers die every time gets `work.crashed(item)`."""
    with ray_session(address):
        holder = (ray.put(work),)
        for item, future in ray_map(_run_task, items, lambda item: (holder, item), count=count, workers=workers):
            try:
                result = future.result()
            except WorkerCrashedError:
                result = work.crashed(item)
            handle(item, result)
