"""`make demo` installs PyTorch's CPU build anywhere (scripts/install_torch.sh): from a wheel pip finds without an
index where there is one, else from PyTorch's CPU index, never PyPI's multi-GB CUDA build."""

import os
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "install_torch.sh"


def _run_with_pip(tmp_path, local_wheel):
    """The pip commands the script runs, with a pip that finds a local CPU wheel or not (a clean configuration)."""
    calls = tmp_path / "calls"
    pip = tmp_path / "pip"
    pip.write_text("#!/usr/bin/env bash\n"
                   f'echo "$*" >> {calls}\n'
                   f'if [[ "$*" == *--no-index* ]]; then exit {0 if local_wheel else 1}; fi\n'
                   'if [[ "$1" == show ]]; then echo "Version: 2.13.0+cpu"; fi\n')
    pip.chmod(0o755)
    done = subprocess.run(["bash", str(SCRIPT), str(pip)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return calls.read_text().splitlines()


def test_a_clean_pip_configuration_gets_the_cpu_index(tmp_path):
    calls = _run_with_pip(tmp_path, local_wheel=False)
    assert calls[1] == "install -q torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu"


def test_a_local_cpu_wheel_is_taken_without_any_index(tmp_path):
    calls = _run_with_pip(tmp_path, local_wheel=True)
    assert calls[:2] == ["install -q --no-index --no-deps torch==2.13.0", "install -q torch==2.13.0"]


@pytest.mark.skipif(not os.path.isdir("/opt/wheels"), reason="no local wheel folder on this machine")
def test_the_real_pip_of_a_clean_configuration_finds_no_torch_without_an_index(tmp_path):
    """What the script's first step sees on an ordinary machine: nothing, so it goes to the CPU index."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")} | {"PIP_CONFIG_FILE": os.devnull}
    done = subprocess.run(["python3", "-m", "pip", "install", "--dry-run", "-q", "--no-index", "--no-deps",
                           "torch==2.13.0"], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode != 0 and "No matching distribution found for torch==2.13.0" in done.stderr
