"""Past one machine: tagging a library and embedding a corpus with Ray (`pip install 'genrekit[ray]'`).

The driver (this process) does what it does for the local engines: it scans the folder, skips unchanged
files, hashes each file as it hands it out and commits each result to SQLite as it arrives (or writes each
track's features to Parquet), so a killed driver resumes as a killed local run does. Each file or track is
one Ray task, `2 x workers` of them in flight: `workers` run at once in a placement group of one CPU per
task (spread over the nodes), the others wait in Ray's queue so that no worker idles between files. The
model reaches the workers through Ray's object store (no shared model file needed) and is loaded once per
Ray worker process, run by onnxruntime with one thread for `.onnx` files and exports of the bundled models.

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
from pathlib import Path
from tempfile import TemporaryDirectory

from .exceptions import GenrekitError, ParameterError
from .library import CRASH_REASON, Classified, classify, worker_classifier
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


# ---------------------------------------------------------------------------------------------- tagging


@lru_cache(maxsize=1)
def _shipped_classifier(suffix, holder, settings):
    """The `worker_classifier` of a model file put in Ray's object store (`holder`: its reference, in a
    tuple so that Ray hands over the reference, not the bytes; `settings`: a `Classifier`'s, as pairs),
    loaded once per worker process."""
    with TemporaryDirectory() as folder:
        path = Path(folder) / f"model{suffix}"
        path.write_bytes(ray.get(holder[0]))
        return worker_classifier(path, **dict(settings))


def _classify_shipped(model, path):
    """`genrekit.library.classify` of one file in a Ray worker, with the model `run_ray` shipped."""
    return classify(_shipped_classifier(*model), path)


def run_ray(jobs, count, classifier, workers, handle, *, address=None):
    """An engine of `genrekit.library.tag_library` (as `functools.partial(run_ray, address=...)`): the files
    classified by Ray tasks on the cluster at `address` (see `ray_session`), `workers` at once (None: one
    per CPU of the cluster), each (job, result) handed to `handle` as it arrives."""
    with ray_session(address):
        source = Path(classifier.source)
        model = (source.suffix, (ray.put(source.read_bytes()),), tuple(classifier.settings.items()))
        for job, future in ray_map(_classify_shipped, jobs, lambda job: (model, job.path), count=count,
                                   workers=workers):
            try:
                result = future.result()
            except WorkerCrashedError:
                result = Classified(error=CRASH_REASON)
            handle(job, result)


# ---------------------------------------------------------------------------------------------- embedding


def map_ray(fn, spec, items, workers, *, address=None):
    """An engine of `genrekit.embedding.embed_corpus` (as `functools.partial(map_ray, address=...)`):
    `fn(spec, item)` of each item as a Ray task on the cluster at `address`, yielded as they finish; a
    worker that dies on the same item every time (`WorkerCrashedError`) ends the run, as in a local pool."""
    with ray_session(address):
        for _, future in ray_map(fn, items, lambda item: (spec, item), count=len(items), workers=workers):
            yield future.result()
