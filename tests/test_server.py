import asyncio
import io
import re
import tempfile
import threading

import httpx
import numpy as np
import pytest
import soundfile as sf
from fastapi.testclient import TestClient

from conftest import tone, write_tone
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


def test_wav_and_flac_uploads_predict_like_the_library(client, classifier, tmp_path):
    wav = write_tone(tmp_path / "song one.wav", freq=1700, seconds=3.0)
    flac = tmp_path / "stereo.flac"
    sf.write(flac, tone(220, 2.5, 44100, amplitude=0.4, channels=2), 44100)
    for path in (wav, flac):
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

    def spy(path):
        seen.append((path, path.is_file(), path.parent))
        return predict(path)

    monkeypatch.setattr(classifier, "predict", spy)
    song = write_tone(tmp_path / "s.flac", freq=1700, seconds=2.0).read_bytes()
    assert post(client, "dir\\sub/My Song.FLAC", song).json()["file"] == "My Song.FLAC"
    (path, existed, parent), = seen
    assert existed and parent == uploads_dir and path.suffix == ".flac"
    assert list(uploads_dir.iterdir()) == []


def test_prediction_runs_off_the_event_loop(classifier, tmp_path, monkeypatch):
    """While a prediction runs, the server still answers other requests."""
    release, predict = threading.Event(), classifier.predict

    def slow(path):
        assert release.wait(10), "the health request never got through"
        return predict(path)

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
    health = client.get("/api/health").json()
    assert health["status"] == "ok" and health["model"] == classifier.source
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


def test_serve_with_a_bad_model_is_a_one_line_error(monkeypatch, capsys):
    from genrekit.cli import main

    monkeypatch.setattr("uvicorn.run", lambda *args, **kwargs: pytest.fail("the server should not start"))
    monkeypatch.setattr("sys.argv", ["genrekit", "serve", "--model", "/no/such/file"])
    with pytest.raises(SystemExit) as stop:
        main()
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("error: /no/such/file: ")
