"""Example songs the project makes itself (no third-party audio shipped): short pieces in four styles,
composed here as MIDI and rendered with FluidSynth, plus a synthesised loop for machines without it."""

import mido
import numpy as np
import soundfile as sf

from .constants import SAMPLE_RATE

TICKS = 480  # per beat
_CHORDS = ((60, 64, 67), (67, 71, 74), (69, 72, 76), (65, 69, 72))  # C G Am F
_MELODY = (76, 74, 72, 74, 76, 76, 76, 74, 74, 74, 76, 79, 79, 76, 74, 72)


class _Song:
    """Note events on channels, collected in beats and written as one MIDI track."""

    def __init__(self, bpm, programs):
        self.events, self.bpm = [], bpm
        self.programs = programs  # channel -> General MIDI program

    def note(self, channel, pitch, start, length, velocity=90):
        self.events.append((start, 1, mido.Message("note_on", channel=channel, note=pitch, velocity=velocity)))
        self.events.append((start + length * 0.95, 0, mido.Message("note_off", channel=channel, note=pitch)))

    def midi(self):
        track = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(self.bpm))])
        track += [mido.Message("program_change", channel=c, program=p) for c, p in self.programs.items()]
        now = 0
        for beat, _, message in sorted(self.events, key=lambda e: (e[0], e[1])):
            tick = int(round(beat * TICKS))
            track.append(message.copy(time=tick - now))
            now = tick
        song = mido.MidiFile(ticks_per_beat=TICKS)
        song.tracks.append(track)
        return song


def _classical(bars=12):
    song = _Song(96, {0: 0})
    for bar in range(bars):
        low, third, fifth = _CHORDS[bar % 4]
        for i, pitch in enumerate((low - 12, fifth - 12, third - 12, fifth - 12) * 2):  # Alberti bass
            song.note(0, pitch, bar * 4 + i * 0.5, 0.5, 60)
        for i in range(4):
            song.note(0, _MELODY[(bar * 4 + i) % 16] + 5 * (bar % 2), bar * 4 + i, 1, 80)
    return song.midi()


def _rock(bars=12):
    song = _Song(132, {0: 30, 1: 33})
    for bar in range(bars):
        root = _CHORDS[bar % 4][0] - 12
        for i in range(8):
            at = bar * 4 + i * 0.5
            song.note(9, 42, at, 0.5, 80)
            song.note(9, 36 if i in (0, 3, 4) else 38 if i in (2, 6) else 42, at, 0.5, 110)
            for pitch in (root, root + 7, root + 12):
                song.note(0, pitch, at, 0.5, 100)
            song.note(1, root - 12, at, 0.5, 100)
    return song.midi()


def _jazz(bars=12):
    song = _Song(150, {0: 0, 1: 32})
    swing = (0, 2 / 3)
    for bar in range(bars):
        low, third, fifth = _CHORDS[bar % 4]
        for beat in range(4):
            for offset in swing:
                song.note(9, 51, bar * 4 + beat + offset, 1 / 3, 70 if offset else 90)
            song.note(1, low - 24 + (0, 4, 7, 9)[beat], bar * 4 + beat, 1, 90)
        for at in (bar * 4 + 1 + 2 / 3, bar * 4 + 3):
            for pitch in (third, fifth, low + 10, low + 14):
                song.note(0, pitch, at, 0.6, 70)
    return song.midi()


def _hiphop(bars=10):
    song = _Song(88, {0: 4, 1: 38})
    for bar in range(bars):
        low = _CHORDS[bar % 4][0]
        for i in range(16):
            at = bar * 4 + i * 0.25
            if i in (0, 7, 10):
                song.note(9, 36, at, 0.25, 120)
            if i in (4, 12):
                song.note(9, 38, at, 0.25, 110)
            if i % 2 == 0:
                song.note(9, 42, at, 0.25, 60)
        song.note(1, low - 24, bar * 4, 1.5, 110)
        song.note(1, low - 24, bar * 4 + 2.75, 1, 100)
        for pitch in _CHORDS[bar % 4]:
            song.note(0, pitch, bar * 4, 3.5, 60)
    return song.midi()


EXAMPLES = {"example-classical": _classical, "example-rock": _rock, "example-jazz": _jazz,
            "example-hiphop": _hiphop}


def write_example_songs(out_dir, *, seconds=20.0):
    """Render the example songs to `out_dir/<name>.wav` with FluidSynth; returns their paths.

    Without FluidSynth only the synthesised loop (`example-loop.wav`) is written.
    """
    from .midi.render import fluidsynth_available, render_window, write_wav

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [write_example_clip(out_dir / "example-loop.wav")]
    if fluidsynth_available():
        for name, compose in EXAMPLES.items():
            path = out_dir / f"{name}.wav"
            write_wav(path, render_window(compose(), 0.0, seconds))
            paths.append(path)
    return paths


def _note(midi, seconds, sr, *, harmonics=(1.0, 0.5, 0.25)):
    t = np.arange(int(seconds * sr)) / sr
    freq = 440.0 * 2 ** ((midi - 69) / 12)
    tone = sum(amp * np.sin(2 * np.pi * freq * (k + 1) * t) for k, amp in enumerate(harmonics))
    return tone * np.exp(-3.0 * t)


def _drum(kind, seconds, sr, rng):
    t = np.arange(int(seconds * sr)) / sr
    if kind == "kick":
        return np.sin(2 * np.pi * (50 + 100 * np.exp(-30 * t)) * t) * np.exp(-12 * t)
    return rng.standard_normal(t.size) * np.exp(-(40 if kind == "hat" else 18) * t) * (0.3 if kind == "hat" else 0.8)


def example_clip(seconds=12.0, *, sr=SAMPLE_RATE, tempo=110.0, seed=0):
    """A pop-like loop (chords, melody, drums) of `seconds` s as mono float32 peaking at -1 dBFS."""
    rng = np.random.default_rng(seed)
    beat = 60.0 / tempo
    y = np.zeros(int(seconds * sr) + sr)
    for i in range(int(seconds / beat)):
        at = int(i * beat * sr)
        parts = [_drum("kick" if i % 2 == 0 else "snare", beat, sr, rng), _drum("hat", beat / 2, sr, rng)]
        if i % 4 == 0:
            parts.append(0.4 * sum(_note(n - 12, 4 * beat, sr) for n in _CHORDS[(i // 4) % 4]))
        parts.append(0.5 * _note(_MELODY[i % len(_MELODY)], beat, sr))
        for part in parts:
            y[at:at + part.size] += part[: y.size - at]
    y = y[: int(seconds * sr)]
    return (y / np.abs(y).max() * 10 ** (-1 / 20)).astype(np.float32)


def write_example_clip(path, seconds=12.0):
    """Write the synthesised loop as a 16-bit WAV and return its path."""
    sf.write(str(path), example_clip(seconds), SAMPLE_RATE, subtype="PCM_16")
    return path
