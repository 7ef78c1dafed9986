import asyncio
import io
import re
import socket
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
import soundfile as sf
from fastapi.testclient import TestClient

from conftest import BAD_INPUTS, live_server, tone, unknown_length, write_bad_inputs, write_tone
from genrekit.constants import AUDIO_EXTENSIONS
from genrekit.exceptions import ParameterError
from genrekit.predict import load
from genrekit.server import create_app


@pytest.fixture(scope="module")
def classifier(members):
    return load(members[0][0])


@pytest.fixture(scope="module")
def client(classifier):
    with TestClient(create_app(classifier)) as test_client:
        yield test_client


@pytest.fixture
def uploads_dir(tmp_path, monkeypatch):
    """Where the server's temporary upload files go during the test."""
    folder = tmp_path / "uploads"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def post(client, name, content, **params):
    return client.post("/api/predict", params=params, files={"file": (name, content)})


def test_wav_flac_and_m4a_uploads_predict_like_the_library(client, classifier, tmp_path):
    wav = write_tone(tmp_path / "song one.wav", freq=1700, seconds=3.0)
    flac = tmp_path / "stereo.flac"
    sf.write(flac, tone(220, 2.5, 44100, amplitude=0.4, channels=2), 44100)
    m4a = write_tone(tmp_path / "song.m4a", freq=220, seconds=2.5, sr=44100, channels=2)
    for path in (wav, flac, m4a):
        response = post(client, path.name, path.read_bytes())
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["file"] == body["source"] == path.name
        assert list(body["probabilities"]) == classifier.labels
        assert sum(body["probabilities"].values()) == pytest.approx(1, abs=1e-3)
        expected = classifier.predict(path)
        assert np.allclose(list(body["probabilities"].values()), expected.probabilities, atol=1e-4)
        assert body["genre"] == expected.genre and body["duration"] == pytest.approx(expected.duration, abs=1e-3)
        assert "timeline" not in body and len(body["top"]) == 3
    assert post(client, wav.name, wav.read_bytes()).json()["genre"] == "high"


def test_top_is_honoured_and_checked(client, tmp_path):
    song = write_tone(tmp_path / "a.wav", freq=1700, seconds=2.0).read_bytes()
    for n in (1, 2, 3):
        top = post(client, "a.wav", song, top=n).json()["top"]
        assert len(top) == n and top == sorted(top, key=lambda g: -g["probability"])
    for bad in (0, 4, "many"):
        response = post(client, "a.wav", song, top=bad)
        assert response.status_code == 422 and response.json()["error"].startswith("top: ")


def test_timeline_of_a_longer_song(client, tmp_path):
    y = np.concatenate([tone(220, 6.0, 22050, amplitude=0.4), tone(1760, 6.0, 22050, amplitude=0.4)])
    sf.write(tmp_path / "long.wav", y, 22050)
    body = post(client, "long.wav", (tmp_path / "long.wav").read_bytes(), timeline="true").json()
    assert body["duration"] == pytest.approx(12.0) and len(body["timeline"]) == 12
    assert [(row["start"], row["end"]) for row in body["timeline"]] == [(float(t), t + 1.0) for t in range(12)]
    for row in body["timeline"]:
        assert sum(value for key, value in row.items() if key not in ("start", "end")) == pytest.approx(1, abs=1e-3)


def _silence():
    out = io.BytesIO()
    sf.write(out, np.zeros(22050 * 2, np.float32), 22050, format="WAV")
    return out.getvalue()


@pytest.mark.parametrize("name, content, reason", [
    ("empty.wav", b"", "empty file (0 bytes)"),
    ("corrupt.flac", b"fLaC" + bytes(200), "not a readable audio file"),
    ("notes.txt", b"just some text, not audio\n" * 20, "unsupported format"),
    ("quiet.wav", _silence(), "silent"),
])
def test_bad_audio_is_422_with_the_file_name(client, uploads_dir, name, content, reason):
    response = post(client, name, content)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error.startswith(f"{name}: ") and reason in error and "\n" not in error
    assert "genrekit-upload" not in error and str(uploads_dir) not in error
    assert list(uploads_dir.iterdir()) == []


def test_the_bad_input_corpus_is_refused_with_422(client, uploads_dir, tmp_path):
    for path in sorted(write_bad_inputs(tmp_path / "bad").iterdir()):
        response = post(client, path.name, path.read_bytes())
        assert response.status_code == 422, path.name
        error = response.json()["error"]
        assert error.startswith(f"{path.name}: ") and BAD_INPUTS[path.name] in error and "\n" not in error
    assert list(uploads_dir.iterdir()) == []


def test_a_streamed_flac_without_a_length_is_predicted_to_its_end(client, classifier, tmp_path):
    whole = write_tone(tmp_path / "whole.flac", 1700, seconds=5.0)
    streamed = tmp_path / "streamed.flac"
    streamed.write_bytes(whole.read_bytes())
    response = post(client, "streamed.flac", unknown_length(streamed).read_bytes())
    assert response.status_code == 200, response.text
    expected = classifier.predict(whole)
    assert response.json()["duration"] == 5.0
    assert np.allclose(list(response.json()["probabilities"].values()), expected.probabilities, atol=1e-4)


def test_upload_over_the_cap_is_413(classifier, uploads_dir, tmp_path):
    song = write_tone(tmp_path / "big.wav", seconds=3.0).read_bytes()  # 132 kB
    with TestClient(create_app(classifier, max_upload_mb=0.05)) as small:
        response = post(small, "big.wav", song)  # refused from its Content-Length
        assert response.status_code == 413 and "upload limit of 0.05 MB" in response.json()["error"]
        boundary = "b0undary"
        head = (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.wav"\r\n\r\n').encode()
        chunks = [head, *[song[i:i + 8192] for i in range(0, len(song), 8192)], f"\r\n--{boundary}--\r\n".encode()]
        response = small.post("/api/predict", content=iter(chunks),  # chunked: refused while streaming
                              headers={"content-type": f"multipart/form-data; boundary={boundary}"})
        assert response.status_code == 413
        assert response.json()["error"] == "big.wav: larger than the upload limit of 0.05 MB"
        assert post(small, "small.wav", song[:40000]).status_code == 200
    assert list(uploads_dir.iterdir()) == []


def test_the_whole_chunked_body_counts_towards_the_cap(classifier, uploads_dir, tmp_path):
    song = write_tone(tmp_path / "a.wav", seconds=0.5).read_bytes()  # 22 kB, under the 50 kB cap
    boundary = "b0undary"
    extra = f'--{boundary}\r\nContent-Disposition: form-data; name="extra"\r\n\r\n'.encode() + b"x" * 2**20 + b"\r\n"
    body = extra + multipart("a.wav", song, boundary)
    with TestClient(create_app(classifier, max_upload_mb=0.05)) as small:
        response = small.post("/api/predict", content=iter([body[i:i + 8192] for i in range(0, len(body), 8192)]),
                              headers={"content-type": f"multipart/form-data; boundary={boundary}"})
    assert response.status_code == 413 and response.json()["error"] == "upload larger than the upload limit of 0.05 MB"
    assert list(uploads_dir.iterdir()) == []


def test_a_boundary_over_256_characters_is_a_json_400(client):
    boundary = "x" * 300
    response = client.post("/api/predict", content=multipart("a.wav", b"RIFF", boundary),
                           headers={"content-type": f"multipart/form-data; boundary={boundary}"})
    assert response.status_code == 400 and "Boundary length 300 exceeds maximum of 256" in response.json()["error"]


def test_405_says_which_methods_are_allowed(client):
    for path, allowed in (("/api/predict", "POST"), ("/api/health", "GET")):
        response = client.put(path)
        assert response.status_code == 405 and response.headers["allow"] == allowed
        assert response.json() == {"error": "Method Not Allowed"}


def test_requests_without_a_usable_file(client, uploads_dir):
    assert client.post("/api/predict", data={"top": "1"}).status_code == 415
    multipart = {"content-type": "multipart/form-data; boundary=x"}
    assert client.post("/api/predict", content=b"garbage", headers=multipart).status_code == 400
    cut = b'--x\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\nRIFF'
    response = client.post("/api/predict", content=cut, headers=multipart)
    assert response.status_code == 400 and response.json()["error"] == "a.wav: the upload ended before the file did"
    response = client.post("/api/predict", files={"other": ("a.wav", b"RIFF")})
    assert response.status_code == 422 and "form field 'file'" in response.json()["error"]
    files = [("file", ("a.wav", b"RIFF")), ("file", ("b.wav", b"RIFF"))]
    assert "one file per request" in client.post("/api/predict", files=files).json()["error"]
    assert list(uploads_dir.iterdir()) == []


def test_upload_keeps_its_extension_and_its_temp_file_is_removed(client, classifier, uploads_dir, tmp_path,
                                                                  monkeypatch):
    seen = []
    predict = classifier.predict

    def spy(path, **kwargs):
        seen.append((path, path.is_file(), path.parent))
        return predict(path, **kwargs)

    monkeypatch.setattr(classifier, "predict", spy)
    song = write_tone(tmp_path / "s.flac", freq=1700, seconds=2.0).read_bytes()
    assert post(client, "dir\\sub/My Song.FLAC", song).json()["file"] == "My Song.FLAC"
    (path, existed, parent), = seen
    assert existed and parent == uploads_dir and path.suffix == ".flac"
    assert list(uploads_dir.iterdir()) == []


def test_prediction_runs_off_the_event_loop(classifier, tmp_path, monkeypatch):
    """While a prediction runs, the server still answers other requests."""
    release, predict = threading.Event(), classifier.predict

    def slow(path, **kwargs):
        assert release.wait(10), "the health request never got through"
        return predict(path, **kwargs)

    monkeypatch.setattr(classifier, "predict", slow)
    song = write_tone(tmp_path / "a.wav", freq=1700, seconds=2.0).read_bytes()

    async def scenario():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(create_app(classifier)),
                                     base_url="http://test") as http:
            pending = asyncio.create_task(http.post("/api/predict", files={"file": ("a.wav", song)}))
            health = await http.get("/api/health")
            release.set()
            return health, await pending

    health, result = asyncio.run(scenario())
    assert health.status_code == 200 and result.status_code == 200


def test_health_and_labels(client, classifier):
    response = client.get("/api/health")
    health = response.json()
    assert health["status"] == "ok" and health["model"] == Path(classifier.source).name  # not where it is
    assert str(Path(classifier.source).parent) not in response.text
    assert health["labels"] == classifier.labels == ["high", "low", "noisy"] and health["max_upload_mb"] == 200
    assert client.get("/api/labels").json() == {"labels": classifier.labels}
    assert client.get("/no/such/page").json() == {"error": "Not Found"}


def test_page_is_self_contained_and_docs_need_no_cdn(client):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert '<form id="form"' in page.text and 'type="file"' in page.text and "api/predict" in page.text
    assert not re.search(r'https?://|//cdn|<link (?![^>]*href="data:)|<script src', page.text)  # data: URIs only
    assert client.get("/docs").status_code == 404 and client.get("/redoc").status_code == 404
    assert "/api/predict" in client.get("/openapi.json").json()["paths"]
    offered = re.search(r'accept="([^"]+)"', page.text).group(1).split(",")
    assert offered == ["audio/*", *AUDIO_EXTENSIONS]  # the picker offers what tag scans, FFmpeg's formats too


def test_serve_with_a_bad_model_is_a_one_line_error(monkeypatch, capsys):
    from genrekit.cli import main

    monkeypatch.setattr("uvicorn.Server.run", lambda *args, **kwargs: pytest.fail("the server should not start"))
    monkeypatch.setattr("sys.argv", ["genrekit", "serve", "--model", "/no/such/file"])
    with pytest.raises(SystemExit) as stop:
        main()
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("error: /no/such/file: ")


@pytest.mark.parametrize("option, value, message", [
    ("--port", "99999", "Invalid value for '--port': Input should be less than or equal to 65535"),
    ("--port", "-1", "Invalid value for '--port': Input should be greater than or equal to 0"),
    ("--max-upload-mb", "inf", "Invalid value for '--max-upload-mb': Input should be less than or equal to 1048576"),
    ("--timeout", "0", "error: timeout must be a positive number, got 0.0"),
    ("--max-duration", "nan", "Invalid value for '--max-duration': Input should be less than or equal to 10000"),
    ("--max-concurrent", "0", "Invalid value for '--max-concurrent': Input should be greater than or equal to 1")])
def test_serve_with_bad_limits_says_so_without_a_traceback(monkeypatch, capsys, option, value, message):
    from genrekit.cli import main

    monkeypatch.setattr("genrekit.predict.load", lambda *args, **kwargs: pytest.fail("no model should load"))
    monkeypatch.setattr("sys.argv", ["genrekit", "serve", option, value])
    monkeypatch.setenv("COLUMNS", "200")
    with pytest.raises(SystemExit) as stop:
        main()
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert message in " ".join(err.replace("│", " ").split()) and "Traceback" not in err


def test_serve_on_a_port_in_use_fails_before_announcing_the_page(members, monkeypatch, capsys):
    from genrekit.cli import main

    monkeypatch.setattr("uvicorn.Server.run", lambda *args, **kwargs: pytest.fail("the server should not start"))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        monkeypatch.setattr("sys.argv", ["genrekit", "serve", "--model", str(members[0][0]), "--port", str(port)])
        with pytest.raises(SystemExit) as stop:
            main()
    assert stop.value.code == 2
    out, err = capsys.readouterr()
    assert "page at" not in out and err.strip() == f"error: 127.0.0.1:{port}: cannot listen there (Address already in use)"


# ---------------------------------------------------------------------------------------------- under abuse

def _wait_until(condition, seconds):
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.02)
    return condition()


def multipart(name, content, boundary="b0undary"):
    head = f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n\r\n'.encode()
    return head + content + f"\r\n--{boundary}--\r\n".encode()


def raw_request(body, boundary="b0undary", length=None):
    return (f"POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; "
            f"boundary={boundary}\r\nContent-Length: {length or len(body)}\r\n\r\n").encode() + body


@pytest.fixture
def scored(classifier, monkeypatch):
    """The number of windows the model scores, per call, while the test runs."""
    calls, score = [], classifier.scorer.member_log_probs

    def spy(windows):
        calls.append(len(next(iter(windows.values()))))
        return score(windows)

    monkeypatch.setattr(classifier.scorer, "member_log_probs", spy)
    return calls


def test_audio_over_max_minutes_is_413_before_decoding_more(classifier, scored, uploads_dir, tmp_path):
    app = create_app(classifier, max_minutes=0.1)  # 6 s
    honest = write_tone(tmp_path / "long.flac", 1700, seconds=10.0)
    hidden = unknown_length(write_tone(tmp_path / "hidden.flac", 1700, seconds=40.0))
    short = write_tone(tmp_path / "short.flac", 1700, seconds=5.0)
    with live_server(app) as (host, port), httpx.Client(base_url=f"http://{host}:{port}") as http:
        response = http.post("/api/predict", files={"file": ("long.flac", honest.read_bytes())})
        assert response.status_code == 413 and response.json()["error"] == \
            "long.flac: longer than the limit of 6.0 s (10.0 s)"
        assert scored == []  # refused from the header: nothing decoded
        response = http.post("/api/predict", files={"file": ("hidden.flac", hidden.read_bytes())})
        assert response.status_code == 413 and response.json()["error"] == \
            "hidden.flac: longer than the limit of 6.0 s (found by decoding up to there: its header does not say)"
        assert scored == []  # decoded up to the limit, but nothing scored
        assert http.post("/api/predict", files={"file": ("short.flac", short.read_bytes())}).status_code == 200
    assert list(uploads_dir.iterdir()) == []


def test_a_client_that_disconnects_stops_its_prediction(classifier, uploads_dir, tmp_path, monkeypatch):
    started, calls, score = threading.Event(), [], classifier.scorer.member_log_probs

    def slow(windows):
        calls.append(1)
        started.set()
        time.sleep(0.3)
        return score(windows)

    monkeypatch.setattr(classifier.scorer, "member_log_probs", slow)
    song = write_tone(tmp_path / "long.wav", 1700, seconds=300.0).read_bytes()  # 10 blocks of 30 s
    with live_server(create_app(classifier)) as (host, port):
        with socket.create_connection((host, port), timeout=10) as client:
            client.sendall(raw_request(multipart("long.wav", song)))
            assert started.wait(30), "the prediction never started"
        assert _wait_until(lambda: list(uploads_dir.iterdir()) == [], 15), "the temp file stayed"
        count = len(calls)
        time.sleep(1.0)
        assert len(calls) == count < 10  # stopped, and before the end of the song


def test_past_max_concurrent_and_max_waiting_requests_get_503(classifier, uploads_dir, tmp_path, monkeypatch):
    release, lock, running, peak = threading.Event(), threading.Lock(), [0], [0]
    predict = classifier.predict

    def held(path, **kwargs):
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        try:
            assert release.wait(60)
            return predict(path, **kwargs)
        finally:
            with lock:
                running[0] -= 1

    monkeypatch.setattr(classifier, "predict", held)
    song = write_tone(tmp_path / "a.wav", 1700, seconds=2.0).read_bytes()
    app = create_app(classifier, max_concurrent=2, max_waiting=2)

    async def scenario(base):
        async with httpx.AsyncClient(base_url=base, timeout=60) as http:
            tasks = [asyncio.create_task(http.post("/api/predict", files={"file": ("a.wav", song)}))
                     for _ in range(8)]
            for _ in range(1500):  # until the 4 not admitted are answered (at most 30 s)
                if sum(task.done() for task in tasks) >= 4:
                    break
                await asyncio.sleep(0.02)
            refused = [task.result() for task in tasks if task.done()]
            release.set()
            return refused, await asyncio.gather(*tasks)

    with live_server(app) as (host, port):
        refused, answers = asyncio.run(scenario(f"http://{host}:{port}"))
    assert len(refused) == 4 and all(r.status_code == 503 and r.headers["retry-after"] == "5" for r in refused)
    assert all("busy" in r.json()["error"] for r in refused)
    assert sorted(r.status_code for r in answers) == [200] * 4 + [503] * 4
    assert peak[0] == 2  # never more than max_concurrent predictions at once
    assert list(uploads_dir.iterdir()) == []


def _closed(client, seconds):
    """What the server sends before it closes the connection, or None when it keeps it open for `seconds`."""
    client.settimeout(seconds)
    received = b""
    try:
        while chunk := client.recv(4096):
            received += chunk
    except TimeoutError:
        return None
    return received


def test_clients_that_trickle_their_upload_lose_their_own_slot_not_others(classifier, uploads_dir, tmp_path):
    """Before, eight clients sending 10 bytes/s held every slot (the timeout caught only pauses)."""
    song = write_tone(tmp_path / "a.wav", 1700, seconds=2.0).read_bytes()
    app = create_app(classifier, timeout=1.0, min_upload_kbps=1.0, max_concurrent=1, max_waiting=0)
    with live_server(app, timeout=5.0) as (host, port):
        body = multipart("a.wav", song)
        with socket.create_connection((host, port)) as client:  # 10 bytes every 0.2 s: 50 bytes/s
            client.sendall(raw_request(b"", length=len(body)))
            start, answer = time.monotonic(), b""
            for i in range(0, 400, 10):
                try:
                    client.sendall(body[i:i + 10])
                except OSError:
                    break
                time.sleep(0.2)
            answer = _closed(client, 10)
            assert answer is not None and answer.startswith(b"HTTP/1.1 408") and b"too slow" in answer
            assert time.monotonic() - start < 6
        with httpx.Client(base_url=f"http://{host}:{port}", timeout=30) as http:  # the slot is free again
            assert http.post("/api/predict", files={"file": ("a.wav", song)}).status_code == 200
    assert _wait_until(lambda: list(uploads_dir.iterdir()) == [], 10)
    with pytest.raises(ParameterError, match="min_upload_kbps"):
        create_app(classifier, min_upload_kbps=0)


def test_stalled_clients_are_timed_out_and_leave_no_temp_file(classifier, uploads_dir, tmp_path):
    song = write_tone(tmp_path / "a.wav", 1700, seconds=2.0).read_bytes()
    with live_server(create_app(classifier, timeout=1.0), timeout=1.0) as (host, port):
        with socket.create_connection((host, port)) as client:  # headers never finished
            client.sendall(b"POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            assert _closed(client, 10) == b""
        with socket.create_connection((host, port)) as client:  # headers dripped a byte at a time
            request, start = raw_request(b"x" * 100), time.monotonic()
            for byte in request[:40]:
                try:
                    client.sendall(bytes([byte]))
                except OSError:
                    break
                time.sleep(0.2)
            assert _closed(client, 10) == b"" and time.monotonic() - start < 7
        with socket.create_connection((host, port)) as client:  # body stops half way
            body = multipart("a.wav", song)
            client.sendall(raw_request(body[:len(body) // 2], length=len(body)))
            assert _wait_until(lambda: len(list(uploads_dir.iterdir())) == 1, 10)
            answer = _closed(client, 10)
            assert answer is not None and answer.startswith(b"HTTP/1.1 408") and b"stalled" in answer
        assert _wait_until(lambda: list(uploads_dir.iterdir()) == [], 10)
