"""A truncated file is scored on what decodes, and every output says so: predict's stderr, JSON and CSV, tag's
database and exports, the server's answer."""

import csv
import io
import json
import sqlite3

import httpx
import soundfile as sf
from typer.testing import CliRunner

from conftest import live_server
from genrekit.cli import app
from genrekit.examples import example_clip
from genrekit.library.database import SCHEMA, _connect
from genrekit.server import create_app

MISSING = "truncated: 3.0 s of the 8.0 s its header promises are in the file (62% missing)"


def _music(tmp_path):
    music = tmp_path / "music"
    music.mkdir()
    sf.write(music / "whole.wav", example_clip(8.0), 22050, subtype="PCM_16")
    (music / "cut.wav").write_bytes((music / "whole.wav").read_bytes()[:44 + 2 * 22050 * 3])
    return music


def test_predict_tag_and_the_server_score_a_cut_file_and_say_what_is_missing(tmp_path):
    music = _music(tmp_path)
    files = [str(music / "cut.wav"), str(music / "whole.wav")]
    runner = CliRunner()
    result = runner.invoke(app, ["predict", *files, "--format", "json"])
    assert result.exit_code == 0, result.output
    rows = {row["source"].rsplit("/", 1)[-1]: row for row in json.loads(result.stdout)}
    assert rows["cut.wav"]["warning"] == MISSING and rows["cut.wav"]["duration"] == 3.0
    assert rows["whole.wav"]["warning"] is None
    assert f"warning: {files[0]}: {MISSING} (scored on what decodes)" in result.stderr
    result = runner.invoke(app, ["predict", *files, "--format", "csv"])
    rows = {row["path"].rsplit("/", 1)[-1]: row for row in csv.DictReader(io.StringIO(result.stdout))}
    assert rows["cut.wav"]["warning"] == MISSING and rows["whole.wav"]["warning"] == ""

    db = tmp_path / "lib.sqlite"
    result = runner.invoke(app, ["tag", str(music), "--db", str(db), "--workers", "1", "--export", "json"])
    assert result.exit_code == 0, result.output
    assert "1 scored on what decodes (truncated)" in result.stdout and f"cut.wav: {MISSING}" in result.stdout
    stored = dict(sqlite3.connect(db).execute("SELECT path, warning FROM tracks").fetchall())
    assert stored == {str(music / "cut.wav"): MISSING, str(music / "whole.wav"): None}
    exported = {row["path"].rsplit("/", 1)[-1]: row for row in json.loads((tmp_path / "lib.json").read_text())}
    assert exported["cut.wav"]["warning"] == MISSING and exported["cut.wav"]["genre"]

    with live_server(create_app()) as (host, port), httpx.Client(base_url=f"http://{host}:{port}") as http:
        answer = http.post("/api/predict", files={"file": ("cut.wav", (music / "cut.wav").read_bytes())})
        assert answer.status_code == 200 and answer.json()["warning"] == MISSING


def test_a_library_database_of_version_1_gets_the_warning_column(tmp_path):
    db = tmp_path / "old.sqlite"
    conn = sqlite3.connect(db)
    conn.executescript(SCHEMA.replace("    warning TEXT,\n", ""))
    conn.execute("INSERT INTO tracks VALUES ('/a.wav', 1, 2, 'x', 'm', 'rock', '{}', NULL, NULL, 't')")
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()
    upgraded = _connect(db)
    row = dict(upgraded.execute("SELECT * FROM tracks").fetchone())
    assert row["genre"] == "rock" and row["warning"] is None
    assert upgraded.execute("PRAGMA user_version").fetchone()[0] == 2
