"""Render a collection of MIDI songs (`songs.csv` + `<genre>/<id>.mid`) to labelled WAV clips with FluidSynth.

Only the audio that is needed is synthesised: each window is first cut out of the MIDI file with mido
(`cut_midi`) and that short file is rendered. The cut

* converts seconds to ticks with the file's tempo map, so windows are exact in time across tempo changes;
* starts with the state in force at the window start: system-exclusive messages seen so far (GM/GS/XG
  resets, drum-part set-up), the tempo, per channel the bank and program, every controller value, the
  RPN/NRPN parameters set so far (pitch-bend range, fine/coarse tuning), pitch bend and channel pressure;
* restarts notes still held at the window start (key down, no note-off yet) at their original velocity,
  unless they are on the drum channel (10) or began more than `RESTART_MAX_AGE` s earlier (usually a
  stuck note missing its note-off); notes held only by the sustain pedal are dropped;
* ends with sustain-off (CC64=0), all-notes-off (CC123) and all-sound-off (CC120) on all 16 channels,
  without which FluidSynth 2.3 never stops on a hanging note (it keeps writing audio, ~90 MB/s).

FluidSynth runs under a time limit and a size guard (it is killed when its output grows far past the
expected length). Its float output (no clipping, whatever the mix level) is mixed down to mono, cut to the
exact window length, peak-normalised to `PEAK_DBFS` (-1 dBFS) and written atomically as 22050 Hz mono
16-bit PCM WAV. Clips whose file exists are not rendered again; a song that fails (unreadable MIDI,
FluidSynth error or time-out, silent render) is logged, listed in `failures` and `failures.csv`, and skipped.

Windows are planned from songs.csv's `duration_s` (mido's length: up to the last event, so it includes any
silence after the last note). In "middle" mode a window that renders silent, which happens when a song's
notes end long before that nominal end, is replaced by the window centred on the notes (`notes_window`).
A MIDI file mido cannot read only because of a malformed meta message is read with that message ignored.
"""

import csv
import logging
import multiprocessing
import os
import shutil
import subprocess
import tempfile
import time
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from ..audio import SILENCE_PEAK, to_mono
from ..constants import CLIP_SECONDS, SAMPLE_RATE
from ..exceptions import DatasetError, GenrekitError, ParameterError
from .folder import write_manifest
from .track import SPLITS, Track, read_track_table, snippets

log = logging.getLogger(__name__)

DEFAULT_SOUNDFONT = "/usr/share/sounds/sf2/FluidR3_GM.sf2"
FLUIDSYNTH = "fluidsynth"
FLUIDSYNTH_GAIN = 0.5
PEAK_DBFS = -1.0
"""Level every clip is normalised to: its absolute peak sits at -1 dBFS."""
RESTART_MAX_AGE = 10.0
"""Notes held at a window start are restarted only if they began less than this many seconds earlier."""
MODES = ("middle", "all")
SOURCE = "midi"
DRUM_CHANNEL = 9
DEFAULT_TEMPO = 500000  # microseconds per beat (120 bpm), the MIDI default

_RESET_BY_CC121 = {1, 11, 64, 65, 66, 67, 68, 69}  # controllers "reset all controllers" returns to default
_RPN_CONTROLS = {6, 38, 96, 97, 98, 99, 100, 101}
_NOTES_OFF_CONTROLS = {120, 123, 124, 125, 126, 127}  # all-sound-off, all-notes-off, omni/mono/poly mode


class RenderError(GenrekitError):
    """A song or clip that could not be rendered; the message gives the reason."""


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


# --------------------------------------------------------------------------------------------- MIDI cutting

class TempoMap:
    """Ticks <-> seconds for a MIDI file, following every set_tempo event (on any track)."""

    def __init__(self, ticks_per_beat, tempo_changes):
        if ticks_per_beat <= 0:
            raise RenderError(f"SMPTE or invalid time division ({ticks_per_beat}) is not supported")
        self.ticks_per_beat = ticks_per_beat
        ticks, tempos, seconds = [0], [DEFAULT_TEMPO], [0.0]
        for tick, tempo in sorted(tempo_changes, key=lambda change: change[0]):
            if tempo <= 0:
                continue
            if tick == ticks[-1]:
                tempos[-1] = tempo  # the last of several changes at one tick wins
                continue
            seconds.append(seconds[-1] + (tick - ticks[-1]) * tempos[-1] / (1e6 * ticks_per_beat))
            ticks.append(tick)
            tempos.append(tempo)
        self._ticks = np.array(ticks, dtype=np.float64)
        self._tempos = np.array(tempos, dtype=np.float64)
        self._seconds = np.array(seconds, dtype=np.float64)

    def tempo_at(self, tick):
        """Microseconds per beat in force at `tick` (changes at `tick` included)."""
        return int(self._tempos[np.searchsorted(self._ticks, tick, side="right") - 1])

    def seconds(self, tick):
        i = np.searchsorted(self._ticks, tick, side="right") - 1
        return float(self._seconds[i] + (tick - self._ticks[i]) * self._tempos[i] / (1e6 * self.ticks_per_beat))

    def ticks(self, seconds):
        i = np.searchsorted(self._seconds, seconds, side="right") - 1
        return float(self._ticks[i] + (seconds - self._seconds[i]) * 1e6 * self.ticks_per_beat / self._tempos[i])


@contextmanager
def _lenient_meta_messages():
    """Make mido read a malformed meta message (an empty or invalid key signature, ...) as an
    `UnknownMetaMessage`.

    Only set_tempo matters for rendering; a malformed one is dropped (the tempo stays as it was).
    """
    from mido.midifiles import meta, midifiles

    strict = midifiles.build_meta_message

    def lenient(meta_type, data, delta):
        try:
            return strict(meta_type, data, delta)
        except Exception:  # IndexError, KeySignatureError, ...: mido's decoders raise many kinds
            return meta.UnknownMetaMessage(type_byte=meta_type, data=data, time=delta)

    midifiles.build_meta_message = lenient
    try:
        yield
    finally:
        midifiles.build_meta_message = strict


def read_midi(path):
    """Parse a MIDI file with mido (out-of-range data bytes clipped); `RenderError` if unreadable.

    A file that fails only on a malformed meta message is read again with such messages ignored.
    """
    import mido

    try:
        midi = mido.MidiFile(str(path), clip=True)
    except Exception as error:  # mido raises OSError, EOFError, ValueError, KeyError, IndexError, ...
        try:
            with _lenient_meta_messages():
                midi = mido.MidiFile(str(path), clip=True)
        except Exception:
            raise RenderError(f"unreadable MIDI ({type(error).__name__}: {error})") from None
        log.info("%s: ignored malformed meta message(s) (%s: %s)", path, type(error).__name__, error)
    if midi.type == 2:
        raise RenderError("type 2 (asynchronous) MIDI files are not supported")
    if not midi.tracks:
        raise RenderError("MIDI file has no tracks")
    return midi


def _events(midi):
    """All events of all tracks as (absolute tick, track, index, message), in playing order."""
    events = []
    for number, track in enumerate(midi.tracks):
        tick = 0
        for index, message in enumerate(track):
            tick += message.time
            events.append((tick, number, index, message))
    events.sort(key=lambda event: event[:3])
    return events


def _tempo_map(midi, events):
    return TempoMap(midi.ticks_per_beat, [(tick, msg.tempo) for tick, _, _, msg in events if msg.type == "set_tempo"])


def midi_length(midi):
    """Length of a parsed MIDI file in seconds (to its last event, end-of-track included), as mido's."""
    events = _events(midi)
    return _tempo_map(midi, events).seconds(events[-1][0]) if events else 0.0


class _ChannelState:
    """What a channel has been told so far: bank/program, controllers, (N)RPN parameters, bend, pressure."""

    def __init__(self):
        self.bank = {0: None, 32: None}
        self.program = None  # (program, bank msb, bank lsb) at the program change
        self.controls = {}
        self.selected = {101: None, 100: None, 99: None, 98: None}
        self.selected_kind = None  # "rpn" or "nrpn": the one last selected
        self.parameters = {}  # (kind, msb, lsb) -> [data msb, data lsb]
        self.pitch = None
        self.pressure = None

    def _parameter(self):
        if self.selected_kind == "rpn":
            key = ("rpn", self.selected[101], self.selected[100])
        elif self.selected_kind == "nrpn":
            key = ("nrpn", self.selected[99], self.selected[98])
        else:
            return None
        return None if None in key[1:] or key[1:] == (127, 127) else key

    def update(self, msg):
        if msg.type == "program_change":
            self.program = (msg.program, self.bank[0], self.bank[32])
        elif msg.type == "pitchwheel":
            self.pitch = msg.pitch
        elif msg.type == "aftertouch":
            self.pressure = msg.value
        elif msg.type == "control_change":
            control, value = msg.control, msg.value
            if control in (0, 32):
                self.bank[control] = value
            elif control in (101, 100, 99, 98):
                self.selected[control] = value
                self.selected_kind = "rpn" if control in (101, 100) else "nrpn"
            elif control in (6, 38):
                key = self._parameter()
                if key is not None:
                    self.parameters.setdefault(key, [None, None])[0 if control == 6 else 1] = value
            elif control == 121:
                for reset in _RESET_BY_CC121:
                    self.controls.pop(reset, None)
                self.pitch = self.pressure = None
                self.selected = dict.fromkeys(self.selected)
                self.selected_kind = None
            elif control not in _RPN_CONTROLS and control not in _NOTES_OFF_CONTROLS:
                self.controls[control] = value

    def messages(self, channel):
        """Messages that put a fresh synth channel into this state."""
        import mido

        def cc(control, value):
            return mido.Message("control_change", channel=channel, control=control, value=value)

        out = []
        if self.program is not None:
            program, msb, lsb = self.program
            out += [cc(0, msb)] if msb is not None else []
            out += [cc(32, lsb)] if lsb is not None else []
            out.append(mido.Message("program_change", channel=channel, program=program))
        out += [cc(control, value) for control, value in self.bank.items() if value is not None]
        out += [cc(control, value) for control, value in sorted(self.controls.items())]
        for (kind, msb, lsb), (data_msb, data_lsb) in self.parameters.items():
            out += [cc(101, msb), cc(100, lsb)] if kind == "rpn" else [cc(99, msb), cc(98, lsb)]
            out += [cc(6, data_msb)] if data_msb is not None else []
            out += [cc(38, data_lsb)] if data_lsb is not None else []
        if self.selected_kind is not None:
            pair = (101, 100) if self.selected_kind == "rpn" else (99, 98)
            out += [cc(control, self.selected[control]) for control in pair if self.selected[control] is not None]
        if self.pitch is not None:
            out.append(mido.Message("pitchwheel", channel=channel, pitch=self.pitch))
        if self.pressure is not None:
            out.append(mido.Message("aftertouch", channel=channel, value=self.pressure))
        return out


def _is_reset(data):
    """True for a GM1/GM2 system-on, GS reset or XG system-on system-exclusive message (data without F0/F7)."""
    data = tuple(data)
    return (data[:4] in ((0x7E, 0x7F, 0x09, 0x01), (0x7E, 0x7F, 0x09, 0x03))
            or (len(data) >= 7 and data[0] == 0x41 and data[2:7] == (0x42, 0x12, 0x40, 0x00, 0x7F))
            or (len(data) >= 6 and data[0] == 0x43 and data[2:6] == (0x4C, 0x00, 0x00, 0x7E)))


def end_messages():
    """Sustain-off, all-notes-off and all-sound-off on all 16 channels."""
    import mido

    return [mido.Message("control_change", channel=channel, control=control, value=0)
            for channel in range(16) for control in (64, 123, 120)]


def cut_midi(midi, start, end):
    """A type-0 MIDI file playing seconds [start, end) of `midi` (a `mido.MidiFile`), see the module notes.

    The result keeps the original ticks-per-beat and tempo events; it begins with the state in force at
    `start` and ends at `end` with sustain-off / all-notes-off / all-sound-off on every channel.
    """
    import mido

    if not 0 <= start < end:
        raise ParameterError(f"need 0 <= start < end, got [{start}, {end})")
    events = _events(midi)
    tempo_map = _tempo_map(midi, events)
    start_tick = int(round(tempo_map.ticks(start)))
    end_tick = max(int(round(tempo_map.ticks(end))), start_tick + 1)

    sysex, channels, held = [], [_ChannelState() for _ in range(16)], {}
    body = []  # (tick relative to the window, message)
    for tick, _, _, msg in events:
        if tick >= end_tick:
            break
        if msg.is_meta:
            if msg.type == "set_tempo" and tick >= start_tick:
                body.append((tick - start_tick, msg.copy(time=0)))
            continue
        if tick >= start_tick:
            body.append((tick - start_tick, msg.copy(time=0)))
            continue
        if msg.type == "sysex":
            sysex.append(msg.copy(time=0))
            if _is_reset(msg.data):  # GM/GS/XG reset: what the channels were told before no longer holds
                channels, held = [_ChannelState() for _ in range(16)], {}
        elif msg.type == "note_on" and msg.velocity > 0:
            held[(msg.channel, msg.note)] = (tick, msg.velocity)
        elif msg.type in ("note_on", "note_off"):
            held.pop((msg.channel, msg.note), None)
        elif hasattr(msg, "channel"):
            if msg.type == "control_change" and msg.control in _NOTES_OFF_CONTROLS:
                held = {key: value for key, value in held.items() if key[0] != msg.channel}
            channels[msg.channel].update(msg)

    start_seconds = tempo_map.seconds(start_tick)
    head = [mido.MetaMessage("set_tempo", tempo=tempo_map.tempo_at(start_tick))] + sysex
    for channel, state in enumerate(channels):
        head += state.messages(channel)
    for (channel, note), (tick, velocity) in sorted(held.items(), key=lambda item: item[1][0]):
        if channel != DRUM_CHANNEL and start_seconds - tempo_map.seconds(tick) < RESTART_MAX_AGE:
            head.append(mido.Message("note_on", channel=channel, note=note, velocity=velocity))

    track = mido.MidiTrack()
    previous = 0
    for tick, msg in [(0, msg) for msg in head] + body + [(end_tick - start_tick, msg) for msg in end_messages()]:
        track.append(msg.copy(time=tick - previous))
        previous = tick
    track.append(mido.MetaMessage("end_of_track", time=0))
    cut = mido.MidiFile(type=0, ticks_per_beat=midi.ticks_per_beat)
    cut.tracks.append(track)
    return cut


# ------------------------------------------------------------------------------------------------ rendering

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
    """Write mono float audio as 16-bit PCM WAV atomically (temp file + os.replace)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        sf.write(str(temp), y, sr, format="WAV", subtype="PCM_16")
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)


# --------------------------------------------------------------------------------------------- the corpus

@dataclass(frozen=True)
class _Song:
    path: str  # absolute path of the .mid
    rel: str  # as in songs.csv
    split: str | None
    genre: str
    group: str
    duration: float | None

    @property
    def id(self):
        return Path(self.rel).stem


def read_songs(source_dir, *, splits=None, limit_per_genre=None):
    """Rows of `source_dir/songs.csv`, optionally only `splits`, and at most `limit_per_genre` songs per
    (split, genre) in file order."""
    source_dir = Path(source_dir)
    table = source_dir / "songs.csv"
    if not table.is_file():
        raise DatasetError(f"{table}: songs.csv not found")
    wanted = None if splits is None else {splits} if isinstance(splits, str) else set(splits)
    if wanted is not None and not wanted <= set(SPLITS):
        raise ParameterError(f"splits must be among {SPLITS}, got {sorted(wanted)}")
    songs, taken = [], defaultdict(int)
    for _, row, split in read_track_table(table, ("path", "genre")):
        if wanted is not None and split not in wanted:
            continue
        genre = row["genre"].strip()
        if limit_per_genre is not None and taken[(split, genre)] >= limit_per_genre:
            continue
        taken[(split, genre)] += 1
        duration = (row.get("duration_s") or "").strip()
        rel = row["path"].strip()
        songs.append(_Song(path=str(source_dir / rel), rel=rel, split=split, genre=genre,
                           group=(row.get("group") or "").strip() or f"midi:{rel}",
                           duration=float(duration) if duration else None))
    return songs


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


def _track(song, path):
    return Track(path=str(path), label=song.genre, group=song.group, source=SOURCE, split=song.split)


def notes_window(midi, duration, clip_seconds=CLIP_SECONDS):
    """A `clip_seconds` window centred on the span from the first note-on to the last note event (rounded
    to 10 ms, inside [0, duration]), or None when the file has no notes."""
    events = _events(midi)
    notes = [tick for tick, _, _, msg in events if msg.type in ("note_on", "note_off")]
    onsets = [tick for tick, _, _, msg in events if msg.type == "note_on" and msg.velocity > 0]
    if not onsets:
        return None
    tempo_map = _tempo_map(midi, events)
    centre = (tempo_map.seconds(min(onsets)) + tempo_map.seconds(max(notes))) / 2
    length = min(clip_seconds, duration)
    start = round(min(max(centre - length / 2, 0.0), duration - length), 2)
    return start, round(start + length, 2)


def _render_song(song, out_dir, mode, clip_seconds, soundfont, timeout, peak_dbfs):
    """Worker: render the missing windows of one song. Returns (tracks, failures, rendered, cached).

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
            tracks.append(_track(song, path))
            cached += 1
            continue
        try:
            fallback = notes_window(midi, duration, clip_seconds) if mode == "middle" else None
            fallback = None if fallback == window else fallback
            if fallback is not None and (out_dir / clip_name(song, *fallback)).is_file():
                tracks.append(_track(song, out_dir / clip_name(song, *fallback)))
                cached += 1
                continue
            try:
                y = render_window(midi, *window, soundfont=soundfont, timeout=timeout, peak_dbfs=peak_dbfs)
            except SilentRender:
                if fallback is None:
                    raise
                log.info("%s: middle window %s s is silent, using %s s", song.rel, window, fallback)
                window, path = fallback, out_dir / clip_name(song, *fallback)
                y = render_window(midi, *window, soundfont=soundfont, timeout=timeout, peak_dbfs=peak_dbfs)
        except Exception as error:  # RenderError, or anything odd in this window: skip it, keep going
            reason = str(error) if isinstance(error, RenderError) else f"{type(error).__name__}: {error}"
            failures.append(RenderFailure(song.rel, reason, f"{window[0]:.2f}-{window[1]:.2f}"))
            continue
        write_wav(path, y)
        tracks.append(_track(song, path))
        rendered += 1
    return tracks, failures, rendered, cached


def _pool(workers):
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else None)
    return ProcessPoolExecutor(max_workers=workers, mp_context=context)


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
    workers = (os.cpu_count() or 1) if workers is None else workers
    if workers < 1:
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
                tracks += [_track(song, path) for path in paths]
                cached += len(paths)
                continue
        todo.append(song)

    arguments = (str(out_dir), mode, clip_seconds, str(soundfont), timeout, peak_dbfs)
    rendered = 0

    def collect(result):
        nonlocal rendered, cached
        song_tracks, song_failures, song_rendered, song_cached = result
        tracks.extend(song_tracks)
        rendered += song_rendered
        cached += song_cached
        for failure in song_failures:
            window = f" [{failure.window} s]" if failure.window else ""
            log.warning("skipped %s%s: %s", failure.path, window, failure.reason)
            failures.append(failure)

    if todo:
        from tqdm import tqdm

        workers = min(workers, len(todo))
        if workers == 1:
            with tqdm(total=len(todo), unit="song", desc="rendering MIDI", disable=not progress) as bar:
                for song in todo:
                    collect(_render_song(song, *arguments))
                    bar.update()
                    bar.set_postfix(failed=len(failures), refresh=False)
        else:
            with _pool(workers) as pool:
                futures = [pool.submit(_render_song, song, *arguments) for song in todo]  # fork before tqdm's thread
                with tqdm(total=len(todo), unit="song", desc=f"rendering MIDI ({workers} workers)",
                          disable=not progress) as bar:
                    for future in as_completed(futures):
                        collect(future.result())
                        bar.update()
                        bar.set_postfix(failed=len(failures), refresh=False)

    tracks.sort(key=lambda track: track.path)
    failures.sort(key=lambda failure: (failure.path, failure.window))
    write_manifest(tracks, out_dir / "manifest.csv")
    _write_failures(failures, out_dir / "failures.csv")
    if progress:
        print(f"{len(tracks)} clips in {out_dir} ({rendered} rendered, {cached} already there), "
              f"{len(failures)} failure(s)" + "".join(f"\n  {f.path} {f.window}: {f.reason}" for f in failures))
    return RenderedCorpus(tracks, failures, rendered=rendered, cached=cached)


def _write_failures(failures, path):
    temp = path.with_name(path.name + ".tmp")
    with open(temp, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "window", "reason"])
        writer.writerows([failure.path, failure.window, failure.reason] for failure in failures)
    os.replace(temp, path)
