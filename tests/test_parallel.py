"""The worker-process map: complete results, failures raised, workers that die with their parent."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from genrekit.parallel import map_unordered

REPO = Path(__file__).resolve().parents[1]


def square(x):
    return x * x


def fail_on_three(x):
    if x == 3:
        raise ValueError("three is bad")
    return x


@pytest.mark.parametrize("workers", [1, 2])
def test_every_result_comes_back(workers):
    assert sorted(map_unordered(square, range(20), workers=workers, progress=False)) == [x * x for x in range(20)]


@pytest.mark.parametrize("workers", [1, 2])
def test_a_failing_item_is_raised_with_the_item_named(workers):
    with pytest.raises(ValueError, match="three is bad") as caught:
        list(map_unordered(fail_on_three, range(6), workers=workers, progress=False))
    assert "while processing 3" in caught.value.__notes__


def test_the_initializer_runs_in_every_worker():
    assert set(map_unordered(os.getenv, ["GENREKIT_TEST_INIT"] * 4, workers=2, progress=False,
                             initializer=os.environ.__setitem__, initargs=("GENREKIT_TEST_INIT", "yes"))) == {"yes"}


PARENT = """
import os, sys, time
from pathlib import Path
from genrekit.parallel import map_unordered

def report_and_sleep(seconds):
    Path(sys.argv[1], str(os.getpid())).touch()
    time.sleep(seconds)

for _ in map_unordered(report_and_sleep, [120, 120], workers=2, progress=False):
    pass
"""


def _alive(pid):
    """True while `pid` exists and is not a zombie (a dead child nobody has reaped yet)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _wait_until(condition, seconds):
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)
    return condition()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="workers die with their parent on Linux")
def test_workers_die_when_their_parent_is_killed(tmp_path):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    parent = subprocess.Popen([sys.executable, "-c", PARENT, str(tmp_path)], env=env)
    workers = []
    try:
        assert _wait_until(lambda: len(list(tmp_path.iterdir())) == 2 or parent.poll() is not None, 120)
        assert parent.poll() is None, "the parent process ended early"
        workers = [int(path.name) for path in tmp_path.iterdir()]
        assert all(_alive(pid) for pid in workers)
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=10)
        assert _wait_until(lambda: not any(_alive(pid) for pid in workers), 5)
    finally:
        parent.kill()
        for pid in workers:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
