"""The worker-process map: complete results, failures raised, workers that die with their parent."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import assert_workers_die_with
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


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="workers die with their parent on Linux")
def test_workers_die_when_their_parent_is_killed(tmp_path):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    parent = subprocess.Popen([sys.executable, "-c", PARENT, str(tmp_path)], env=env)
    assert_workers_die_with(parent, tmp_path)
