"""Rendering MIDI songs to clips: cutting with the tempo map, FluidSynth guards, caching, failures, manifest."""

import csv
import logging

import mido
import numpy as np
import pytest
import soundfile as sf

from genrekit.datasets import load_dataset
from genrekit.datasets.songs import read_songs
from genrekit.midi.cutting import RenderError, cut_midi, midi_length, read_midi
from genrekit.midi.render import (DEFAULT_SOUNDFONT, PEAK_DBFS, fluidsynth_available, render_midi_corpus, run_fluidsynth,
                                  song_windows)

SR = 22050
TPB = 480
COLUMNS = ["path", "split", "genre", "artist", "title", "group", "duration_s", "n_instruments", "has_drums", "sha1",
           "source_repo", "source_path"]
# (note, beats): 8 beats at 120 bpm (0-4 s), then 60 bpm: E4 4-8 s, A5 8-14 s, C4 14-20 s
MELODY = [(57, 8), (64, 4), (81, 6), (60, 6)]

needs_fluidsynth = pytest.mark.skipif(not fluidsynth_available(DEFAULT_SOUNDFONT),
                                      reason=f"fluidsynth binary or soundfont {DEFAULT_SOUNDFONT} missing")


def hz(note):
    return 440.0 * 2 ** ((note - 69) / 12)


def tempo_song(path, program=79):
    """Type-1 MIDI, 20 s: tempo 120 -> 60 bpm after 4 s (on the tempo track), ocarina playing MELODY."""
    midi = mido.MidiFile(type=1, ticks_per_beat=TPB)
    tempo = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=500000, time=0),
                            mido.MetaMessage("set_tempo", tempo=1000000, time=8 * TPB),
                            mido.MetaMessage("end_of_track", time=16 * TPB)])
    notes = mido.MidiTrack([mido.Message("program_change", channel=0, program=program, time=0)])
    for note, beats in MELODY:
        notes.append(mido.Message("note_on", channel=0, note=note, velocity=100, time=0))
        notes.append(mido.Message("note_off", channel=0, note=note, velocity=0, time=beats * TPB))
    notes.append(mido.MetaMessage("end_of_track", time=0))
    midi.tracks += [tempo, notes]
    midi.save(str(path))
    return path


def short_song(path, seconds=4):
    """Type-0 MIDI at 120 bpm: piano repeating a C major chord for `seconds` s."""
    track = mido.MidiTrack([mido.Message("program_change", channel=0, program=0, time=0)])
    for _ in range(seconds):
        for i, note in enumerate((60, 64, 67)):
            track.append(mido.Message("note_on", channel=0, note=note, velocity=90, time=0))
        for i, note in enumerate((60, 64, 67)):
            track.append(mido.Message("note_off", channel=0, note=note, velocity=0, time=2 * TPB if i == 0 else 0))
    track.append(mido.MetaMessage("end_of_track", time=0))
    midi = mido.MidiFile(type=0, ticks_per_beat=TPB)
    midi.tracks.append(track)
    midi.save(str(path))
    return path


def silent_song(path, seconds=10):
    """Controllers but no notes."""
    track = mido.MidiTrack([mido.Message("control_change", channel=0, control=7, value=100, time=0),
                            mido.MetaMessage("end_of_track", time=seconds * 2 * TPB)])
    midi = mido.MidiFile(type=0, ticks_per_beat=TPB)
    midi.tracks.append(track)
    midi.save(str(path))
    return path


def early_song(path, seconds=30):
    """Notes only in the first 4 s (120 bpm), then silence until `seconds`."""
    track = mido.MidiTrack([mido.Message("program_change", channel=0, program=79, time=0),
                            mido.Message("note_on", channel=0, note=69, velocity=100, time=0),
                            mido.Message("note_off", channel=0, note=69, velocity=0, time=8 * TPB),
                            mido.MetaMessage("end_of_track", time=(seconds - 4) * 2 * TPB)])
    midi = mido.MidiFile(type=0, ticks_per_beat=TPB)
    midi.tracks.append(track)
    midi.save(str(path))
    return path


def write_songs(root, rows):
    with open(root / "songs.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow({column: row.get(column, "") for column in COLUMNS})


def duration_of(path):
    return f"{mido.MidiFile(str(path)).length:.2f}"


def dominant_hz(y, start, end):
    segment = y[int(start * SR):int(end * SR)]
    spectrum = np.abs(np.fft.rfft(segment * np.hanning(len(segment))))
    return np.fft.rfftfreq(len(segment), 1 / SR)[np.argmax(spectrum)]


@pytest.fixture
def corpus(tmp_path):
    """songs.csv with a 20 s tempo-change song, a 4 s song (no duration_s), a broken file, a silent file
    and a 30 s song whose notes all fall in its first 4 s."""
    root = tmp_path / "midi"
    for genre in ("pop", "rock"):
        (root / genre).mkdir(parents=True)
    tempo_song(root / "pop" / "aaaa.mid")
    short_song(root / "rock" / "bbbb.mid")
    (root / "rock" / "cccc.mid").write_bytes(b"MThd this is not really a MIDI file")
    silent_song(root / "pop" / "dddd.mid")
    early_song(root / "pop" / "eeee.mid")
    write_songs(root, [
        dict(path="pop/aaaa.mid", split="train", genre="pop", group="artist:alpha", duration_s=duration_of(root / "pop/aaaa.mid")),
        dict(path="rock/bbbb.mid", split="test", genre="rock", group="artist:beta", duration_s=""),
        dict(path="rock/cccc.mid", split="valid", genre="rock", group="artist:gamma", duration_s="100.0"),
        dict(path="pop/dddd.mid", split="train", genre="pop", group="artist:alpha", duration_s=duration_of(root / "pop/dddd.mid")),
        dict(path="pop/eeee.mid", split="train", genre="pop", group="artist:delta", duration_s=duration_of(root / "pop/eeee.mid")),
    ])
    return root


def test_tempo_map_and_cut_carry_state(tmp_path):
    midi = mido.MidiFile(type=1, ticks_per_beat=TPB)
    midi.tracks.append(mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=500000, time=0),
                                       mido.MetaMessage("set_tempo", tempo=1000000, time=8 * TPB)]))
    cc = lambda control, value, time=0: mido.Message("control_change", channel=2, control=control, value=value, time=time)
    midi.tracks.append(mido.MidiTrack([
        mido.Message("sysex", data=[0x7E, 0x7F, 0x09, 0x01], time=0),  # GM system on
        cc(0, 1), mido.Message("program_change", channel=2, program=40, time=0), cc(7, 90), cc(10, 20),
        cc(101, 0), cc(100, 0), cc(6, 12),  # pitch-bend range 12 semitones
        mido.Message("pitchwheel", channel=2, pitch=-2000, time=0), cc(64, 127),
        mido.Message("note_on", channel=2, note=60, velocity=80, time=0),  # held into the window: restarted
        mido.Message("note_on", channel=9, note=36, velocity=80, time=0),  # drum without note-off: not restarted
        mido.Message("note_on", channel=2, note=62, velocity=70, time=4 * TPB),  # 2 s
        mido.Message("note_off", channel=2, note=62, velocity=0, time=2 * TPB),  # 3 s
        cc(7, 100, time=4 * TPB),  # 6 s, inside the window below
        mido.Message("note_off", channel=2, note=60, velocity=0, time=TPB),  # 7 s
        mido.Message("note_on", channel=2, note=72, velocity=60, time=10 * TPB),  # 17 s, after the window
    ]))
    path = tmp_path / "state.mid"
    midi.save(str(path))
    midi = read_midi(path)
    assert midi_length(midi) == pytest.approx(midi.length) == pytest.approx(17.0)

    cut = cut_midi(midi, 5.0, 9.0)  # 5 s = tick 9 * TPB at 60 bpm after 4 s at 120 bpm
    assert cut.type == 0 and cut.ticks_per_beat == TPB
    events, tick = [], 0
    for msg in cut.tracks[0]:
        tick += msg.time
        events.append((tick, msg))
    head = [msg for tick, msg in events if tick == 0]
    assert head[0].type == "set_tempo" and head[0].tempo == 1000000
    assert any(msg.type == "sysex" for msg in head)
    program = [msg for msg in head if msg.type == "program_change"]
    assert [(msg.channel, msg.program) for msg in program] == [(2, 40)]
    before = head[:head.index(program[0])]
    assert any(msg.type == "control_change" and (msg.control, msg.value) == (0, 1) for msg in before)
    controls = {(msg.control, msg.value) for msg in head if msg.type == "control_change" and msg.channel == 2}
    assert {(7, 90), (10, 20), (64, 127), (101, 0), (100, 0), (6, 12)} <= controls
    assert any(msg.type == "pitchwheel" and msg.pitch == -2000 for msg in head)
    restarted = [(msg.channel, msg.note) for msg in head if msg.type == "note_on"]
    assert restarted == [(2, 60)]  # note 62 ended at 3 s, the drum is not restarted
    # inside the window: volume change at 6 s (1 beat = 1 s in), note-off at 7 s; nothing from 17 s
    assert (TPB, "control_change", 7) in [(t, m.type, getattr(m, "control", None)) for t, m in events]
    assert (2 * TPB, "note_off", 60) in [(t, m.type, getattr(m, "note", None)) for t, m in events]
    assert not any(msg.type == "note_on" and msg.note == 72 for _, msg in events)
    # ends at 9 s (4 beats after 5 s) with sustain-off, all-notes-off and all-sound-off on all 16 channels
    tail = {(msg.channel, msg.control) for t, msg in events if t == 4 * TPB and msg.type == "control_change"}
    assert {(channel, control) for channel in range(16) for control in (64, 123, 120)} <= tail
    assert events[-1][1].type == "end_of_track" and events[-1][0] == 4 * TPB


def test_cut_forgets_state_before_a_reset(tmp_path):
    track = mido.MidiTrack([
        mido.Message("program_change", channel=0, program=40, time=0),
        mido.Message("control_change", channel=0, control=7, value=30, time=0),
        mido.Message("sysex", data=[0x41, 0x10, 0x42, 0x12, 0x40, 0x00, 0x7F, 0x00, 0x41], time=TPB),  # GS reset
        mido.Message("program_change", channel=1, program=20, time=0),
        mido.Message("note_on", channel=1, note=60, velocity=50, time=4 * TPB),
        mido.Message("note_off", channel=1, note=60, velocity=0, time=4 * TPB),
    ])
    midi = mido.MidiFile(type=0, ticks_per_beat=TPB)
    midi.tracks.append(track)
    head = [msg for msg in cut_midi(midi, 1.0, 4.0).tracks[0] if msg.time == 0][:8]
    programs = [(msg.channel, msg.program) for msg in head if msg.type == "program_change"]
    assert programs == [(1, 20)]
    assert not any(msg.type == "control_change" and msg.control == 7 for msg in head)


@pytest.mark.parametrize("bad_meta", [[0xFF, 0x59, 0x00], [0xFF, 0x59, 0x02, 0x00, 0x02]],
                         ids=["empty key signature", "key signature mode 2"])
def test_malformed_meta_message_is_ignored(tmp_path, bad_meta):
    # one track: a key signature mido cannot decode, tempo 60 bpm, one 2-beat note
    events = bytes([0x00] + bad_meta + [0x00, 0xFF, 0x51, 0x03, 0x0F, 0x42, 0x40, 0x00, 0x90, 60, 100,
                                        0x87, 0x40, 0x80, 60, 0, 0x00, 0xFF, 0x2F, 0x00])
    data = b"MThd" + (6).to_bytes(4, "big") + bytes([0, 0, 0, 1, 0x01, 0xE0]) + b"MTrk" + len(events).to_bytes(4, "big") + events
    (tmp_path / "meta.mid").write_bytes(data)
    with pytest.raises(Exception):
        mido.MidiFile(str(tmp_path / "meta.mid"))
    assert midi_length(read_midi(tmp_path / "meta.mid")) == pytest.approx(2.0)
    (tmp_path / "junk.mid").write_bytes(b"MThd" + bytes(20))
    with pytest.raises(RenderError, match="unreadable MIDI"):
        read_midi(tmp_path / "junk.mid")


def test_song_windows_and_filters(corpus):
    assert song_windows(100.0, mode="middle", clip_seconds=30) == [(35.0, 65.0)]
    assert song_windows(20.0, mode="middle", clip_seconds=30) == [(0.0, 20.0)]
    assert song_windows(70.0, mode="all", clip_seconds=30) == [(0.0, 30.0), (30.0, 60.0)]  # 10 s rest < 15 s
    assert song_windows(80.0, mode="all", clip_seconds=30) == [(0.0, 30.0), (30.0, 60.0), (60.0, 80.0)]
    assert [s.rel for s in read_songs(corpus, splits="train")] == ["pop/aaaa.mid", "pop/dddd.mid", "pop/eeee.mid"]
    assert [s.rel for s in read_songs(corpus, limit_per_genre=1)] == ["pop/aaaa.mid", "rock/bbbb.mid", "rock/cccc.mid"]


@needs_fluidsynth
def test_fluidsynth_is_killed_on_hanging_notes(tmp_path):
    track = mido.MidiTrack([mido.Message("program_change", channel=0, program=19, time=0),  # organ: never decays
                            mido.Message("note_on", channel=0, note=60, velocity=100, time=0),
                            mido.MetaMessage("end_of_track", time=TPB)])
    midi = mido.MidiFile(type=0, ticks_per_beat=TPB)
    midi.tracks.append(track)
    midi.save(str(tmp_path / "hang.mid"))
    with pytest.raises(RenderError, match="kept writing"):
        run_fluidsynth(tmp_path / "hang.mid", tmp_path / "out.wav", timeout=30, expected_seconds=1.0)
    with pytest.raises(RenderError, match="timed out"):
        run_fluidsynth(tmp_path / "hang.mid", tmp_path / "out.wav", timeout=0.5)
    assert not (tmp_path / "out.wav").exists()


@needs_fluidsynth
def test_render_middle_clips(corpus, tmp_path, caplog):
    out = tmp_path / "clips"
    with caplog.at_level(logging.WARNING, logger="genrekit.midi.render"):
        tracks = render_midi_corpus(corpus, out, clip_seconds=6.0, workers=2, progress=False)

    # three clips; the broken and the silent file are skipped, logged and listed. The middle of eeee
    # (12-18 s) is silent: its clip is taken from the middle of its notes instead (0-6 s).
    assert [t.path for t in tracks] == [str(out / "pop/aaaa_0007.00-0013.00.wav"),
                                        str(out / "pop/eeee_0000.00-0006.00.wav"),
                                        str(out / "rock/bbbb_0000.00-0004.00.wav")]
    reasons = {f.path: f.reason for f in tracks.failures}
    assert set(reasons) == {"rock/cccc.mid", "pop/dddd.mid"}
    assert "unreadable MIDI" in reasons["rock/cccc.mid"] and reasons["pop/dddd.mid"] == "silent render"
    assert "rock/cccc.mid" in caplog.text and "pop/dddd.mid" in caplog.text
    assert (tracks.rendered, tracks.cached) == (3, 0)
    with open(out / "failures.csv") as handle:
        assert len(list(csv.DictReader(handle))) == 2

    by_label = {t.label: t for t in tracks if "eeee" not in t.path}
    assert by_label["pop"].group == "artist:alpha" and by_label["pop"].split == "train"
    assert by_label["rock"].group == "artist:beta" and by_label["rock"].split == "test"
    assert all(t.source == "midi" and t.start is None and t.end is None for t in tracks)

    for track, seconds in ((by_label["pop"], 6.0), (by_label["rock"], 4.0)):
        info = sf.info(track.path)
        assert (info.samplerate, info.channels, info.subtype) == (SR, 1, "PCM_16")
        assert info.duration == pytest.approx(seconds, abs=0.01)
        y, _ = sf.read(track.path, dtype="float32")
        assert 20 * np.log10(np.abs(y).max()) == pytest.approx(PEAK_DBFS, abs=0.01)

    # seconds 7-13 of the song: with the tempo map, E4 (held since 4 s, restarted) for 1 s, then A5.
    # (Ignoring the tempo change, 7-13 s would be beats 14-26: A5 then C4.)
    y, _ = sf.read(by_label["pop"].path, dtype="float32")
    assert dominant_hz(y, 0.1, 0.9) == pytest.approx(hz(64), rel=0.02)
    assert dominant_hz(y, 1.5, 5.9) == pytest.approx(hz(81), rel=0.02)

    # the manifest loads as a dataset with labels, groups and splits
    loaded = load_dataset(out)
    assert sorted((t.path, t.label, t.group, t.split) for t in loaded) == \
        sorted((t.path, t.label, t.group, t.split) for t in tracks)

    # a second run renders nothing and rewrites no clip
    mtimes = {path: path.stat().st_mtime_ns for path in out.rglob("*.wav")}
    again = render_midi_corpus(corpus, out, clip_seconds=6.0, workers=2, progress=False)
    assert list(again) == list(tracks) and (again.rendered, again.cached) == (0, 3)
    assert {path: path.stat().st_mtime_ns for path in out.rglob("*.wav")} == mtimes
    assert len(again.failures) == 2


@needs_fluidsynth
def test_render_all_snippets(corpus, tmp_path):
    out = tmp_path / "all"
    tracks = render_midi_corpus(corpus, out, mode="all", clip_seconds=6.0, workers=1, progress=False,
                                splits=["train"], limit_per_genre=1)
    # 20 s song: 0-6, 6-12, 12-18 (the 2 s rest is shorter than half a clip)
    names = [t.path.rsplit("/", 1)[1] for t in tracks]
    assert names == ["aaaa_0000.00-0006.00.wav", "aaaa_0006.00-0012.00.wav", "aaaa_0012.00-0018.00.wav"]
    assert {t.group for t in tracks} == {"artist:alpha"}
    first, _ = sf.read(tracks[0].path, dtype="float32")
    assert len(first) == 6 * SR
    assert dominant_hz(first, 0.5, 3.5) == pytest.approx(hz(57), rel=0.02)
    last, _ = sf.read(tracks[2].path, dtype="float32")
    assert dominant_hz(last, 0.5, 1.5) == pytest.approx(hz(81), rel=0.02)  # A5 until 14 s
    assert dominant_hz(last, 2.5, 5.5) == pytest.approx(hz(60), rel=0.02)  # then C4


@needs_fluidsynth
def test_cli_renders_a_subset_by_split_and_per_genre(corpus, tmp_path):
    from typer.testing import CliRunner

    from genrekit.cli import app
    from genrekit.exceptions import ParameterError

    runner = CliRunner()
    args = ["data", "render-midi", str(corpus), str(tmp_path / "out"), "--clip-seconds", "6", "--workers", "1"]
    result = runner.invoke(app, [*args, "--split", "train,test", "--limit-per-genre", "1"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "out").rglob("*.wav")) == ["aaaa_0007.00-0013.00.wav",
                                                                         "bbbb_0000.00-0004.00.wav"]
    assert result.output.count("2 clips") == 1  # the summary once
    assert "2 clips in 2 groups (no group in two splits); 2 rendered, 0 reused, 0 failed" in result.output
    result = runner.invoke(app, [*args, "--split", "test", "--split", "train", "--limit-per-genre", "1"])
    assert "2 clips in 2 groups (no group in two splits); 0 rendered, 2 reused" in result.output
    result = runner.invoke(app, [*args, "--split", "test", "--limit-per-genre", "1"])
    assert "1 clip in 1 group " in result.output
    assert isinstance(runner.invoke(app, [*args, "--split", "bogus"]).exception, ParameterError)
