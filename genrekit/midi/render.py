"""Rendering MIDI songs to labelled WAV clips with FluidSynth, a window at a time.

Each window is first cut out of the MIDI file (`genrekit.midi.cutting.cut_midi`) and only that short file
is rendered. FluidSynth runs under a time limit and a size guard (it is killed when its output grows far
past the expected length). Its float output (no clipping, whatever the mix level) is mixed down to mono,
cut to the exact window length, peak-normalised to `PEAK_DBFS` (-1 dBFS) and written atomically as 22050 Hz
mono 16-bit PCM WAV. Clips whose file exists are not rendered again; a song that fails (unreadable MIDI,
FluidSynth error or time-out, silent render) is logged, listed in `failures` and `failures.csv`, and skipped.

Windows are planned from songs.csv's `duration_s` (mido's length: up to the last event, so it includes any
silence after the last note). In "middle" mode a window that renders silent, which happens when a song's
notes end long before that nominal end, is replaced by the window centred on the notes (`notes_window`).
"""

import csv
import logging
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import soundfile as sf

from ..atomic import atomic_path
from ..audio import SILENCE_PEAK, to_mono
from ..constants import CLIP_SECONDS, SAMPLE_RATE
from ..datasets.folder import write_manifest
from ..datasets.songs import read_songs
from ..datasets.track import Track, snippets
from ..exceptions import ParameterError
from ..parallel import map_unordered
from .cutting import RenderError, cut_midi, midi_length, notes_window, read_midi

log = logging.getLogger(__name__)

DEFAULT_SOUNDFONT = "/usr/share/sounds/sf2/FluidR3_GM.sf2"
FLUIDSYNTH = "fluidsynth"
FLUIDSYNTH_GAIN = 0.5
PEAK_DBFS = -1.0
"""Level every clip is normalised to: its absolute peak sits at -1 dBFS."""
MODES = ("middle", "all")


class SilentRender(RenderError):
    """FluidSynth rendered the window as silence (peak below -80 dBFS)."""


@dataclass(frozen=True)
class RenderFailure:
    """A song (or one window of it) that was skipped: MIDI path, window ("" for the whole song), reason."""

    path: str
    reason: str
    window: str = ""


class RenderedCorpus(list):
    """The rendered clips as a `list[Track]`, plus `failures` (list of `RenderFailure`) and counts.

    `rendered` is how many clips this call synthesised, `cached` how many were already on disk.
    """

    def __init__(self, tracks=(), failures=(), rendered=0, cached=0):
        super().__init__(tracks)
        self.failures = list(failures)
        self.rendered = rendered
        self.cached = cached


def check_renderer(soundfont=DEFAULT_SOUNDFONT):
    """Raise a clear error unless FluidSynth and the soundfont are there."""
    if not Path(soundfont).is_file():
        raise ParameterError(f"{soundfont}: soundfont not found")
    if shutil.which(FLUIDSYNTH) is None:
        raise RenderError(f"{FLUIDSYNTH} not found on PATH (Debian: apt install fluidsynth)")


def fluidsynth_available(soundfont=DEFAULT_SOUNDFONT):
    """True when the fluidsynth binary is on PATH and `soundfont` exists."""
    return shutil.which(FLUIDSYNTH) is not None and Path(soundfont).is_file()


def run_fluidsynth(midi_path, wav_path, *, soundfont=DEFAULT_SOUNDFONT, sr=SAMPLE_RATE, timeout=60.0,
                   expected_seconds=None):
    """Render `midi_path` to a float WAV at `wav_path` with FluidSynth, single-threaded, under guards.

    FluidSynth is killed after `timeout` s, or as soon as its output grows past twice the size of
    `expected_seconds` (+ 10 s of tail) of audio: a hanging note makes FluidSynth 2.3 write forever.
    """
    wav_path = Path(wav_path)
    command = [FLUIDSYNTH, "-ni", "-g", str(FLUIDSYNTH_GAIN), "-r", str(sr), "-o", "synth.cpu-cores=1",
               "-T", "wav", "-O", "float", "-F", str(wav_path), str(soundfont), str(midi_path)]
    max_bytes = None if expected_seconds is None else 2 * (expected_seconds + 10.0) * sr * 2 * 4 + 1e6
    log_path = wav_path.with_suffix(".log")
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT)
        began, problem = time.monotonic(), None
        try:
            while process.poll() is None:
                if time.monotonic() - began > timeout:
                    problem = f"fluidsynth timed out after {timeout:g} s"
                elif max_bytes is not None and wav_path.exists() and wav_path.stat().st_size > max_bytes:
                    problem = f"fluidsynth kept writing past {expected_seconds:.0f} s of audio (hanging notes?)"
                if problem:
                    break
                time.sleep(0.05)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    if problem:
        wav_path.unlink(missing_ok=True)
        raise RenderError(problem)
    if process.returncode != 0:
        tail = log_path.read_text(errors="replace").strip().splitlines()[-3:]
        raise RenderError(f"fluidsynth exited with status {process.returncode}: {' / '.join(tail)}")
    if not wav_path.is_file() or wav_path.stat().st_size <= 44:
        raise RenderError("fluidsynth wrote no audio")
    return wav_path


def render_window(midi, start, end, *, soundfont=DEFAULT_SOUNDFONT, sr=SAMPLE_RATE, timeout=60.0,
                  peak_dbfs=PEAK_DBFS):
    """Seconds [start, end) of a parsed MIDI file as mono float32 at `sr`, peak-normalised to `peak_dbfs`.

    Raises `RenderError` when FluidSynth fails or the excerpt is silent.
    """
    with tempfile.TemporaryDirectory(prefix="genrekit-midi-") as temp:
        cut_path, wav_path = Path(temp) / "cut.mid", Path(temp) / "render.wav"
        cut_midi(midi, start, end).save(str(cut_path))
        run_fluidsynth(cut_path, wav_path, soundfont=soundfont, sr=sr, timeout=timeout, expected_seconds=end - start)
        try:
            data, rate = sf.read(str(wav_path), dtype="float32", always_2d=True)
        except (sf.LibsndfileError, RuntimeError) as error:
            raise RenderError(f"fluidsynth output unreadable ({error})") from None
    if rate != sr:
        raise RenderError(f"fluidsynth wrote {rate} Hz, not {sr} Hz")
    y = to_mono(data)
    n = int(round((end - start) * sr))
    y = y[:n] if len(y) >= n else np.pad(y, (0, n - len(y)))
    y = np.nan_to_num(y, nan=0.0, posinf=0.0, neginf=0.0)
    peak = float(np.max(np.abs(y))) if y.size else 0.0
    if peak < SILENCE_PEAK:
        raise SilentRender("silent render")
    return (y * (10 ** (peak_dbfs / 20) / peak)).astype(np.float32)


def write_wav(path, y, sr=SAMPLE_RATE):
    """Write mono float audio as 16-bit PCM WAV atomically."""
    with atomic_path(path) as temp:
        sf.write(str(temp), y, sr, format="WAV", subtype="PCM_16")


def song_windows(duration, *, mode="middle", clip_seconds=CLIP_SECONDS):
    """The [start, end) windows (seconds, rounded to 10 ms) to render from a song of `duration` s.

    "middle": one `clip_seconds` window centred in the song (the whole song when it is shorter);
    "all": consecutive `clip_seconds` windows, the last shorter one kept if at least half as long
    (`genrekit.datasets.snippets`).
    """
    if duration <= 0:
        return []
    if mode == "middle":
        if duration <= clip_seconds:
            return [(0.0, round(duration, 2))]
        start = round((duration - clip_seconds) / 2, 2)
        return [(start, round(start + clip_seconds, 2))]
    spans = snippets(Track("", "", "", ""), duration, length=clip_seconds)
    return [(round(span.start, 2), round(span.end, 2)) for span in spans if round(span.end, 2) > round(span.start, 2)]


def clip_name(song, start, end):
    """`<genre>/<id>_<start>-<end>.wav` with the song-relative window in seconds."""
    return f"{song.genre}/{song.id}_{start:07.2f}-{end:07.2f}.wav"



def render_song(song, out_dir, *, mode="middle", clip_seconds=CLIP_SECONDS, soundfont=DEFAULT_SOUNDFONT, timeout=60.0,
                peak_dbfs=PEAK_DBFS):
    """Render the missing windows of one `Song` under `out_dir`. Returns (tracks, failures, rendered, cached).

    In "middle" mode a middle window that renders silent (a song whose notes end long before its nominal
    end) is replaced by the window centred on the song's notes (`notes_window`).
    """
    out_dir = Path(out_dir)
    try:
        midi = read_midi(song.path)
        duration = song.duration if song.duration is not None else midi_length(midi)
    except RenderError as error:
        return [], [RenderFailure(song.rel, str(error))], 0, 0
    except Exception as error:  # a bug or an oddity of this file must not stop the whole corpus
        return [], [RenderFailure(song.rel, f"{type(error).__name__}: {error}")], 0, 0
    tracks, failures, rendered, cached = [], [], 0, 0
    windows = song_windows(duration, mode=mode, clip_seconds=clip_seconds)
    if not windows:
        failures.append(RenderFailure(song.rel, "MIDI file is empty (length 0 s)"))
    for window in windows:
        path = out_dir / clip_name(song, *window)
        if path.is_file():
            tracks.append(song.track(path))
            cached += 1
            continue
        try:
            fallback = notes_window(midi, duration, clip_seconds) if mode == "middle" else None
            fallback = None if fallback == window else fallback
            if fallback is not None and (out_dir / clip_name(song, *fallback)).is_file():
                tracks.append(song.track(out_dir / clip_name(song, *fallback)))
                cached += 1
                continue
            try:
                y = render_window(midi, *window, soundfont=soundfont, timeout=timeout, peak_dbfs=peak_dbfs)
            except SilentRender:
                if fallback is None:
                    raise
                log.debug("%s: middle window %s s is silent, using %s s", song.rel, window, fallback)
                window, path = fallback, out_dir / clip_name(song, *fallback)
                y = render_window(midi, *window, soundfont=soundfont, timeout=timeout, peak_dbfs=peak_dbfs)
        except Exception as error:  # RenderError, or anything odd in this window: skip it, keep going
            reason = str(error) if isinstance(error, RenderError) else f"{type(error).__name__}: {error}"
            failures.append(RenderFailure(song.rel, reason, f"{window[0]:.2f}-{window[1]:.2f}"))
            continue
        write_wav(path, y)
        tracks.append(song.track(path))
        rendered += 1
    return tracks, failures, rendered, cached


def render_midi_corpus(source_dir, out_dir, *, mode="middle", clip_seconds=CLIP_SECONDS, soundfont=DEFAULT_SOUNDFONT,
                       workers=None, timeout=60.0, progress=True, splits=None, limit_per_genre=None,
                       peak_dbfs=PEAK_DBFS):
    """Render the songs of `source_dir/songs.csv` to 22050 Hz mono 16-bit WAV clips under `out_dir`.

    Parameters
    ----------
    mode
        "middle": one `clip_seconds` excerpt from the middle of each song (the whole song if shorter);
        "all": every consecutive `clip_seconds` window of the song (see `song_windows`).
    workers
        Processes rendering in parallel (default `os.cpu_count()`); each runs one single-threaded FluidSynth.
    timeout
        Seconds one FluidSynth run may take before it is killed and the window counted as failed.
    splits, limit_per_genre
        Render only songs of these splits, and at most this many per (split, genre), in songs.csv order.

    Clips are written to `out_dir/<genre>/<id>_<start>-<end>.wav` (window in song seconds, e.g.
    `pop/3ea35750e67bf97d_0075.10-0105.10.wav`); existing files are reused, never re-rendered.
    `out_dir/manifest.csv` lists every clip of the selected songs (load it with
    `genrekit.datasets.load_dataset(out_dir)`), `out_dir/failures.csv` the skipped songs/windows.
    Failed songs are not remembered: a later call tries them again.

    Returns
    -------
    RenderedCorpus
        A `list[Track]` (label = genre, group and split from songs.csv, source "midi", start/end None),
        sorted by path, with `.failures` (list of `RenderFailure`), `.rendered` and `.cached` counts.
    """
    if mode not in MODES:
        raise ParameterError(f"mode must be one of {MODES}, got {mode!r}")
    if not clip_seconds > 0:
        raise ParameterError(f"clip_seconds must be positive, got {clip_seconds}")
    if not timeout > 0:
        raise ParameterError(f"timeout must be positive, got {timeout}")
    if limit_per_genre is not None and limit_per_genre < 1:
        raise ParameterError(f"limit_per_genre must be at least 1, got {limit_per_genre}")
    if workers is not None and workers < 1:
        raise ParameterError(f"workers must be at least 1, got {workers}")
    check_renderer(soundfont)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    songs = read_songs(source_dir, splits=splits, limit_per_genre=limit_per_genre)

    # Songs whose clips all exist need no worker (the windows follow from duration_s alone).
    tracks, failures, todo, cached = [], [], [], 0
    for song in songs:
        if song.duration is not None:
            windows = song_windows(song.duration, mode=mode, clip_seconds=clip_seconds)
            paths = [out_dir / clip_name(song, start, end) for start, end in windows]
            if paths and all(path.is_file() for path in paths):
                tracks += [song.track(path) for path in paths]
                cached += len(paths)
                continue
        todo.append(song)

    work = partial(render_song, out_dir=str(out_dir), mode=mode, clip_seconds=clip_seconds, soundfont=str(soundfont),
                   timeout=timeout, peak_dbfs=peak_dbfs)
    rendered = 0
    for song_tracks, song_failures, song_rendered, song_cached in map_unordered(
            work, todo, workers=workers, desc="rendering MIDI", unit="song", progress=progress):
        tracks.extend(song_tracks)
        rendered += song_rendered
        cached += song_cached
        for failure in song_failures:
            window = f" [{failure.window} s]" if failure.window else ""
            log.warning("skipped %s%s: %s", failure.path, window, failure.reason)
            failures.append(failure)

    tracks.sort(key=lambda track: track.path)
    failures.sort(key=lambda failure: (failure.path, failure.window))
    write_manifest(tracks, out_dir / "manifest.csv")
    write_failures(failures, out_dir / "failures.csv")
    return RenderedCorpus(tracks, failures, rendered=rendered, cached=cached)


def write_failures(failures, path):
    """Write `RenderFailure`s as `failures.csv` (path, window, reason), atomically."""
    with atomic_path(path) as temp, open(temp, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "window", "reason"])
        writer.writerows([failure.path, failure.window, failure.reason] for failure in failures)
