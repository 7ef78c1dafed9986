"""Installed by root and run by a service user without a HOME (systemd, www-data): `predict` and `serve` work,
and write nothing but genrekit's cache (and, without one, nothing that outlives them)."""

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx
import pytest
import soundfile as sf

from conftest import wait_until
from genrekit.examples import example_clip

NOBODY = 65534
SETPRIV = shutil.which("setpriv")
pytestmark = pytest.mark.skipif(os.geteuid() != 0 or SETPRIV is None,
                                reason="running as another user needs root and util-linux's setpriv")
GENREKIT = str(Path(sys.executable).with_name("genrekit"))
SHARED_FOLDERS = ("/tmp", "/var/tmp", "/dev/shm")


def _as_service_user(*command, cache=None):
    """`command` as user nobody with HOME=/nonexistent, allowed to read anything (the interpreter may live
    under /root) and to write only where nobody may."""
    env = ["env", "-i", "PATH=/usr/bin:/bin", "HOME=/nonexistent", *([f"GENREKIT_CACHE={cache}"] if cache else [])]
    return [SETPRIV, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--inh-caps=+dac_read_search",
            "--ambient-caps=+dac_read_search", *env, *command]


def _owned_by_nobody():
    return {entry.path for folder in SHARED_FOLDERS if os.path.isdir(folder) for entry in os.scandir(folder)
            if entry.stat(follow_symlinks=False).st_uid == NOBODY}


@pytest.fixture
def cache():
    """A cache folder of the service user's (in /tmp: the folders above pytest's tmp_path are root's only)."""
    folder = Path(tempfile.mkdtemp(prefix="genrekit-service-cache-"))
    folder.chmod(0o755)
    os.chown(folder, NOBODY, NOBODY)
    yield folder
    shutil.rmtree(folder)


@pytest.fixture
def song(tmp_path):
    path = tmp_path / "song.wav"
    sf.write(path, example_clip(6.0), 22050)
    return path


@pytest.mark.parametrize("with_cache", [True, False], ids=["GENREKIT_CACHE", "no-cache-folder"])
def test_predict_as_a_service_user_without_home(cache, song, with_cache):
    before = _owned_by_nobody()
    done = subprocess.run(_as_service_user(GENREKIT, "predict", str(song), "--format", "json",
                                           cache=cache if with_cache else None),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)[0]["genre"]
    assert "Traceback" not in done.stderr and "cannot cache" not in done.stderr
    assert _owned_by_nobody() == before  # nothing left in /tmp, /var/tmp or /dev/shm
    assert (cache / "numba").is_dir() == with_cache


def test_serve_as_a_service_user_without_home(cache, song):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(_as_service_user(GENREKIT, "serve", "--port", str(port), cache=cache),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as http:
            def up():
                try:
                    return http.get("/api/health").status_code == 200
                except httpx.TransportError:
                    return server.poll() is not None

            assert wait_until(up, 120) and server.poll() is None, server.stdout.read() if server.poll() else ""
            answer = http.post("/api/predict", files={"file": ("song.wav", song.read_bytes())})
            assert answer.status_code == 200 and answer.json()["genre"]
    finally:
        server.terminate()
        output = server.communicate(timeout=30)[0]
    assert "Traceback" not in output and "cannot cache" not in output, output
