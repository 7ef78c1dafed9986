"""Audio variants (speed, stretch, pitch, noise, low-pass, MP3), separation, and MIDI melody versions."""

import csv

import mido
import numpy as np
import pytest

from conftest import tone
from genrekit.datasets.songs import read_versions
from genrekit.exceptions import ParameterError
from genrekit.midi.cutting import read_midi
from genrekit.midi.render import DEFAULT_SOUNDFONT, fluidsynth_available, render_window
from genrekit.midi.versions import (CHOIR_PROGRAM, MelodyNotFound, a_cappella, find_melody_track, instrumental,
                                    midi_parts, render_versions)
from genrekit.variants import (DEFAULT_VARIANTS, VARIANTS, aac, add_noise, apply_variant, check_variants, low_pass, mp3,
                               pitch_shift, separate, speed, time_stretch)

SR = 22050
TPB = 480
needs_fluidsynth = pytest.mark.skipif(not fluidsynth_available(DEFAULT_SOUNDFONT),
                                      reason=f"fluidsynth binary or soundfont {DEFAULT_SOUNDFONT} missing")


def peak_hz(y, sr=SR):
    """Frequency of the strongest spectral peak (Hann window, parabolic interpolation)."""
    spectrum = np.abs(np.fft.rfft(y * np.hanning(len(y))))
    k = int(np.argmax(spectrum[1:-1])) + 1
    a, b, c = np.log(spectrum[k - 1:k + 2] + 1e-12)
    return (k + 0.5 * (a - c) / (a - 2 * b + c)) * sr / len(y)


def band_energy(y, low, high, sr=SR):
    spectrum = np.abs(np.fft.rfft(y)) ** 2
    freqs = np.fft.rfftfreq(len(y), 1 / sr)
    return spectrum[(freqs >= low) & (freqs < high)].sum()


# ----------------------------------------------------------------------------------------------- audio

def test_speed_scales_pitch_and_duration_together():
    y = tone(440.0, seconds=2.0)
    z = speed(y, SR, 1.25)
    assert abs(len(z) - len(y) / 1.25) <= 2
    assert peak_hz(z) == pytest.approx(440.0 * 1.25, rel=0.005)
    slow = apply_variant("speed-0.8x", y, SR)
    assert abs(len(slow) - len(y) / 0.8) <= 2 and peak_hz(slow) == pytest.approx(440.0 * 0.8, rel=0.005)


def test_time_stretch_keeps_pitch_and_changes_duration():
    y = tone(440.0, seconds=2.0)
    z = time_stretch(y, SR, 1.25)
    assert abs(len(z) - len(y) / 1.25) <= 0.01 * len(y)
    assert peak_hz(z[len(z) // 8: -len(z) // 8]) == pytest.approx(440.0, rel=0.01)


def test_pitch_shift_moves_pitch_and_keeps_duration():
    y = tone(440.0, seconds=2.0)
    z = pitch_shift(y, SR, 2)
    assert len(z) == len(y)
    assert peak_hz(z[len(z) // 4: -len(z) // 8]) == pytest.approx(440.0 * 2 ** (2 / 12), rel=0.01)
    down = apply_variant("pitch-2", y, SR)
    assert peak_hz(down[len(z) // 4: -len(z) // 8]) == pytest.approx(440.0 * 2 ** (-2 / 12), rel=0.01)


def test_noise_has_the_asked_snr_and_is_reproducible():
    y = tone(440.0, seconds=1.0)
    z = add_noise(y, 20, seed=1)
    snr = 10 * np.log10(np.mean(y.astype(np.float64) ** 2) / np.mean((z - y).astype(np.float64) ** 2))
    assert snr == pytest.approx(20.0, abs=0.05)
    assert np.array_equal(z, add_noise(y, 20, seed=1)) and not np.array_equal(z, add_noise(y, 20, seed=2))
    assert np.array_equal(add_noise(np.zeros(100, np.float32), 20), np.zeros(100))


def test_low_pass_removes_a_high_tone_and_keeps_a_low_one():
    y = tone(440.0, seconds=1.0) + tone(6000.0, seconds=1.0)
    z = low_pass(y, SR, 3000)
    assert len(z) == len(y)
    assert band_energy(z, 5500, 6500) < 1e-4 * band_energy(y, 5500, 6500)
    assert band_energy(z, 400, 480) == pytest.approx(band_energy(y, 400, 480), rel=0.05)
    with pytest.raises(ParameterError):
        low_pass(y, SR, SR)


@pytest.mark.parametrize("codec", [mp3, aac])
def test_low_bitrate_codecs_keep_length_and_content(codec):
    rng = np.random.default_rng(0)
    y = sum(tone(f, seconds=2.0, amplitude=0.2) for f in (220.0, 330.0, 495.0))
    y = (y * (1 + 0.5 * np.sin(2 * np.pi * 3 * np.arange(len(y)) / SR)) + 0.01 * rng.standard_normal(len(y)))
    z = codec(y.astype(np.float32), SR, 32)
    assert len(z) == len(y) and z.dtype == np.float32
    assert np.corrcoef(y[SR // 4:-SR // 4], z[SR // 4:-SR // 4])[0, 1] > 0.9  # aligned: encoder delay removed
    for partial in (220.0, 330.0, 495.0):  # each partial keeps its energy (which one peaks may change)
        assert band_energy(z, partial - 20, partial + 20) == pytest.approx(band_energy(y, partial - 20, partial + 20),
                                                                            rel=0.2)


def test_registry_variants_run_and_unknown_names_are_refused():
    y = tone(440.0, seconds=1.0)
    assert set(DEFAULT_VARIANTS) <= set(VARIANTS)
    for name in VARIANTS:
        z = apply_variant(name, y, SR)
        assert z.dtype == np.float32 and z.ndim == 1 and np.isfinite(z).all() and len(z) > 0.5 * len(y), name
    assert check_variants(["NOISE-20DB", "noise-20db", "speed-0.8X"]) == ["noise-20dB", "noise-20dB", "speed-0.8x"]
    assert np.array_equal(apply_variant("noise-20db", y, SR), apply_variant("noise-20dB", y, SR))
    with pytest.raises(ParameterError, match="speed-1.25x") as error:
        apply_variant("chipmunk", y, SR)
    assert "chipmunk" in str(error.value)
    with pytest.raises(ParameterError):
        speed(np.zeros((10, 2), np.float32), SR, 1.1)


def test_separation_returns_two_signals_that_sum_to_the_input():
    rng = np.random.default_rng(0)
    beat = np.concatenate([tone(220.0, seconds=0.25, amplitude=0.4), np.zeros(SR // 4, np.float32)])
    background = np.tile(beat, 6)  # a repeating loop, 3 s
    voice = np.zeros_like(background)
    voice[SR: SR + SR // 2] = tone(1320.0, seconds=0.5, amplitude=0.3)  # one non-repeating event
    y = (background + voice + 0.001 * rng.standard_normal(len(background))).astype(np.float32)
    back, fore = separate(y, SR)
    assert back.shape == fore.shape == y.shape
    assert np.max(np.abs(back + fore - y)) < 1e-3
    # the non-repeating tone goes mostly to the foreground
    assert band_energy(fore, 1250, 1400) > band_energy(back, 1250, 1400)


# ------------------------------------------------------------------------------------------------ MIDI

def _notes(channel, pitches, beats=1, chord=False, velocity=90):
    """note_on/off messages: a sequence of pitches (or of chords when `chord`), `beats` each."""
    out = []
    for item in pitches:
        group = item if chord else (item,)
        for note in group:
            out.append(mido.Message("note_on", channel=channel, note=note, velocity=velocity, time=0))
        for i, note in enumerate(group):
            out.append(mido.Message("note_off", channel=channel, note=note, velocity=0, time=beats * TPB if i == 0 else 0))
    return out


def band_song(path=None, names=("", "", "", ""), type0=False, vocal_name=None):
    """8 beats at 120 bpm (4 s): piano chords (ch 1), bass (ch 2, program 33), drums (ch 10), a flute
    melody (ch 3, program 73) and, with `vocal_name`, a sparse mid-register part of that name (ch 4)."""
    parts = [
        (0, 0, _notes(0, [(60, 64, 67), (62, 65, 69)] * 4, chord=True)),
        (1, 33, _notes(1, [36, 43, 38, 41] * 2)),
        (9, 0, _notes(9, [36, 38] * 4)),
        (2, 73, _notes(2, [72, 74, 76, 77, 79, 77, 76, 74])),
    ]
    if vocal_name is not None:
        parts.append((3, 16, _notes(3, [(60, 64), (62, 65)] * 2, beats=2, chord=True)))  # organ-ish, 2 notes
    midi = mido.MidiFile(type=0 if type0 else 1, ticks_per_beat=TPB)
    tempo = [mido.MetaMessage("set_tempo", tempo=500000, time=0)]
    if type0:
        # merge the parts into one track by absolute tick
        events = [(0, m) for m in tempo]
        for channel, program, notes in parts:
            events.append((0, mido.Message("program_change", channel=channel, program=program)))
            tick = 0
            for msg in notes:
                tick += msg.time
                events.append((tick, msg))
        events.sort(key=lambda e: e[0])
        track, previous = mido.MidiTrack(), 0
        for tick, msg in events:
            track.append(msg.copy(time=tick - previous))
            previous = tick
        midi.tracks.append(track)
    else:
        midi.tracks.append(mido.MidiTrack(tempo))
        all_names = list(names) + ([vocal_name] if vocal_name is not None else [])
        for (channel, program, notes), name in zip(parts, all_names):
            head = [mido.MetaMessage("track_name", name=name)] if name else []
            midi.tracks.append(mido.MidiTrack(head + [mido.Message("program_change", channel=channel,
                                                                   program=program)] + notes))
    if path is not None:
        midi.save(str(path))
        return read_midi(path)
    return midi


def note_set(midi):
    """{(channel, note, absolute tick of its note-on)} of a MIDI file."""
    found = set()
    for track in midi.tracks:
        tick = 0
        for msg in track:
            tick += msg.time
            if msg.type == "note_on" and msg.velocity > 0:
                found.add((msg.channel, msg.note, tick))
    return found


def test_unnamed_parts_pick_the_monophonic_high_line(tmp_path):
    for type0 in (False, True):
        midi = band_song(tmp_path / f"song{type0}.mid", type0=type0)
        part, how = find_melody_track(midi)
        assert how == "heuristic" and part.channel == 2, (type0, part)
        assert part.monophony == pytest.approx(1.0) and part.median_pitch > 72
    parts = {p.channel: p for p in midi_parts(midi)}
    assert parts[9].is_drums and parts[1].is_bass and parts[0].monophony == 0.0


def test_heuristic_looks_inside_the_window(tmp_path):
    midi = band_song(tmp_path / "song.mid", names=("Piano", "Bass", "Drums", "Flute"))
    # a second, high and monophonic line that plays only in the first second (beats 0-1)
    midi.tracks.append(mido.MidiTrack([mido.Message("program_change", channel=4, program=40)]
                                      + _notes(4, [84, 86], beats=1)))
    assert find_melody_track(midi)[0].channel == 2
    assert find_melody_track(midi, window=(0.0, 1.0))[0].channel in (2, 4)
    assert find_melody_track(midi, window=(2.0, 4.0))[0].channel == 2
    assert 4 not in {p.channel for p in midi_parts(midi, window=(2.0, 4.0))}


def test_named_melody_track_wins(tmp_path):
    midi = band_song(tmp_path / "named.mid", names=("Piano", "Bass", "Drums", "Flute"), vocal_name="Lead Vocal")
    part, how = find_melody_track(midi)
    assert how == "named" and part.channel == 3 and part.name == "Lead Vocal"
    # backing vocals are not the melody: the heuristic decides
    midi = band_song(tmp_path / "backing.mid", names=("Piano", "Bass", "Drums", "Flute"), vocal_name="Backing Vocals")
    part, how = find_melody_track(midi)
    assert how == "heuristic" and part.channel == 2
    midi = band_song(tmp_path / "melody.mid", names=("Piano", "Bass", "Drums", "Melody"))
    assert find_melody_track(midi)[1] == "named" and find_melody_track(midi)[0].channel == 2


def test_no_melody_part(tmp_path):
    midi = mido.MidiFile(type=1, ticks_per_beat=TPB)
    midi.tracks.append(mido.MidiTrack(_notes(9, [36, 38] * 4) + _notes(1, [36, 40])))
    with pytest.raises(MelodyNotFound):
        find_melody_track(midi)


def test_instrumental_and_a_cappella_content(tmp_path):
    midi = band_song(tmp_path / "song.mid", names=("Piano", "Bass", "Drums", "Flute"), vocal_name="Vocals")
    part, _ = find_melody_track(midi)
    everything = note_set(midi)
    melody = {n for n in everything if n[0] == part.channel}
    assert melody and everything - melody

    inst = instrumental(midi, part)
    assert note_set(inst) == everything - melody  # timing of the others kept

    solo = a_cappella(midi, part)
    assert note_set(solo) == melody
    messages = [msg for track in solo.tracks for msg in track if not msg.is_meta]
    assert {msg.channel for msg in messages} == {part.channel}
    programs = [msg.program for msg in messages if msg.type == "program_change"]
    assert programs == [CHOIR_PROGRAM]
    assert any(msg.type == "set_tempo" for track in solo.tracks for msg in track)
    # round trip through a file
    solo.save(str(tmp_path / "solo.mid"))
    assert note_set(read_midi(tmp_path / "solo.mid")) == melody


@needs_fluidsynth
def test_versions_render_and_differ(tmp_path):
    midi = band_song(tmp_path / "song.mid", names=("Piano", "Bass", "Drums", "Flute"))
    part, _ = find_melody_track(midi)
    solo = render_window(a_cappella(midi, part), 0.0, 3.0)
    inst = render_window(instrumental(midi, part), 0.0, 3.0)
    assert len(solo) == len(inst) == 3 * SR
    # the flute melody sits at 523-784 Hz (C5-G5); the choir sings it, the instrumental lacks it
    assert peak_hz(solo) == pytest.approx(523.25, rel=0.2) or band_energy(solo, 500, 820) > 0.2 * band_energy(solo, 0, 11025)


@needs_fluidsynth
def test_render_versions_of_a_collection(tmp_path):
    source = tmp_path / "midi"
    (source / "rock").mkdir(parents=True)
    (source / "pop").mkdir()
    band_song(source / "rock" / "aaaa.mid", names=("Piano", "Bass", "Drums", "Vocals"))
    band_song(source / "pop" / "bbbb.mid")
    solo = mido.MidiFile(type=0, ticks_per_beat=TPB)  # one part only: no instrumental version
    solo.tracks.append(mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=500000)] + _notes(0, [72, 74, 76, 77])))
    solo.save(str(source / "pop" / "cccc.mid"))
    with open(source / "songs.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "split", "genre", "duration_s"])
        writer.writerows([["rock/aaaa.mid", "test", "rock", "4.0"], ["pop/bbbb.mid", "test", "pop", "4.0"],
                          ["pop/cccc.mid", "test", "pop", "2.0"], ["pop/dddd.mid", "train", "pop", "4.0"]])
    out = tmp_path / "versions"
    result = render_versions(source, out, workers=2, progress=False)
    assert sorted(result.by_song()) == ["aaaa", "bbbb"] and (result.named, result.heuristic) == (1, 1)
    assert [f.path for f in result.failures] == ["pop/cccc.mid"]
    for clip in result:
        assert clip.start == 0.0 and clip.end == 4.0 and clip.path.endswith("_0000.00-0004.00.wav")
    for version in ("original", "instrumental", "a-cappella"):
        assert len((out / version / "manifest.csv").read_text().splitlines()) == 3
    assert len(read_versions(out)) == 6
    again = render_versions(source, out, workers=1, progress=False)
    assert again.rendered == 0 and len(again) == 6
