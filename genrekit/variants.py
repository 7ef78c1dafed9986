"""Variants of songs for the paper's robustness experiments (section 3).

Audio variants of a mono float32 signal at `sr` Hz (section 3.1, "song variants such as sped-up versions"):

* `speed`: played faster or slower by resampling, so pitch and tempo change together (a "sped-up" song);
* `time_stretch`: tempo only, `pitch_shift`: pitch only (Rubber Band through pedalboard; librosa's phase
  vocoder when pedalboard is not installed);
* `add_noise` (white noise at a given SNR), `low_pass` (Butterworth), `mp3` (re-encoding at a low bitrate).

`VARIANTS` names the ones the experiment runner uses; `apply_variant(name, y, sr)` applies one.

Instrumental and a-cappella versions (section 3.2):

* exact, from MIDI: `find_melody_track` picks the part carrying the (sung) melody, `instrumental` drops
  it, `a_cappella` keeps only it, played by a choir (GM program 52, "Choir Aahs"); render them with
  `genrekit.datasets.midi.render_window`, or a whole collection with `render_versions`;
* approximate, from audio: `separate` splits a mixture into a repeating background and a non-repeating
  foreground (REPET-SIM, as in librosa's vocal separation example). On real songs the foreground holds
  the vocals plus whatever else does not repeat; results from it are labelled approximate.
"""

import csv
import io
import logging
import os
import re
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from .audio import resample
from .exceptions import GenrekitError, ParameterError

log = logging.getLogger(__name__)


# ------------------------------------------------------------------------------------------ audio variants

def _signal(y):
    y = np.asarray(y, dtype=np.float32)
    if y.ndim != 1:
        raise ParameterError(f"need a mono signal of shape (n,), got shape {y.shape}")
    return y


def _pedalboard():
    try:
        import pedalboard
    except ImportError:  # optional: librosa's phase vocoder is the fallback
        return None
    return pedalboard


def speed(y, sr, factor):
    """Play `y` `factor` times as fast by resampling: duration / factor, every frequency x factor
    (tempo and pitch change together, like a sped-up song)."""
    y = _signal(y)
    if not factor > 0:
        raise ParameterError(f"speed factor must be positive, got {factor}")
    return resample(y, sr * factor, sr)


def time_stretch(y, sr, rate):
    """Tempo x `rate` with the pitch kept: duration / rate (Rubber Band via pedalboard, else librosa)."""
    y = _signal(y)
    if not rate > 0:
        raise ParameterError(f"stretch rate must be positive, got {rate}")
    pedalboard = _pedalboard()
    if pedalboard is None:
        import librosa

        return librosa.effects.time_stretch(y, rate=rate).astype(np.float32)
    return pedalboard.time_stretch(y[None], float(sr), stretch_factor=float(rate))[0].astype(np.float32)


def pitch_shift(y, sr, semitones):
    """Pitch moved by `semitones` (frequencies x 2^(semitones/12)) with the duration kept."""
    y = _signal(y)
    pedalboard = _pedalboard()
    if pedalboard is None:
        import librosa

        return librosa.effects.pitch_shift(y, sr=sr, n_steps=semitones).astype(np.float32)
    out = pedalboard.PitchShift(semitones=float(semitones))(y[None], float(sr))[0]
    return _fit_length(out, len(y))


def add_noise(y, snr_db, seed=0):
    """`y` plus white Gaussian noise scaled so that the signal-to-noise ratio is exactly `snr_db` dB
    (a silent signal is returned unchanged)."""
    y = _signal(y)
    power = float(np.mean(y.astype(np.float64) ** 2)) if y.size else 0.0
    if power == 0.0:
        return y.copy()
    noise = np.random.default_rng(seed).standard_normal(y.size)
    noise *= np.sqrt(power / 10 ** (snr_db / 10) / np.mean(noise ** 2))
    return (y + noise).astype(np.float32)


def low_pass(y, sr, cutoff_hz, order=8):
    """Zero-phase Butterworth low-pass at `cutoff_hz` (order `order`, applied forwards and backwards)."""
    from scipy.signal import butter, sosfiltfilt

    y = _signal(y)
    if not 0 < cutoff_hz < sr / 2:
        raise ParameterError(f"cutoff must lie between 0 and {sr / 2:g} Hz (Nyquist), got {cutoff_hz}")
    if y.size <= 3 * (order + 1):
        return y.copy()
    sos = butter(order, cutoff_hz, btype="low", fs=sr, output="sos")
    return sosfiltfilt(sos, y).astype(np.float32)


def _fit_length(y, n):
    y = np.asarray(y, dtype=np.float32)
    return y[:n] if len(y) >= n else np.pad(y, (0, n - len(y)))


def _encoder_delay(reference, decoded, max_lag):
    """Lag (samples) by which `decoded` trails `reference`, by cross-correlation over [0, max_lag]."""
    from scipy.signal import correlate

    n = min(len(reference), len(decoded) - max_lag, 5 * 22050)
    if n <= 0 or not np.any(reference[:n]):
        return 0
    scores = correlate(decoded[: n + max_lag], reference[:n], mode="valid", method="fft")
    return int(np.argmax(scores))


def mp3(y, sr, bitrate_kbps):
    """`y` encoded as MP3 at `bitrate_kbps` kbit/s (constant bitrate, LAME through pedalboard) and decoded
    again, the encoder's delay removed so the result lines up with `y` and has its length."""
    y = _signal(y)
    pedalboard = _pedalboard()
    if pedalboard is None:
        raise GenrekitError("the mp3 variant needs pedalboard (pip install pedalboard)")
    from pedalboard.io import AudioFile

    buffer = io.BytesIO()
    try:
        with AudioFile(buffer, "w", float(sr), 1, format="mp3", quality=f"{int(bitrate_kbps)}k") as handle:
            handle.write(y[None])
    except (ValueError, RuntimeError) as error:
        raise ParameterError(f"cannot encode MP3 at {bitrate_kbps} kbit/s and {sr} Hz ({error})") from None
    buffer.seek(0)
    try:
        import soundfile as sf

        decoded, rate = sf.read(buffer, dtype="float32", always_2d=True)
    except Exception:  # libsndfile without MP3 support: decode with pedalboard
        buffer.seek(0)
        with AudioFile(buffer) as handle:
            decoded, rate = handle.read(handle.frames).T, handle.samplerate
    decoded = decoded.mean(axis=1) if decoded.ndim == 2 else decoded
    if int(rate) != int(sr):
        decoded = resample(decoded, int(rate), sr)
    max_lag = min(4096, max(len(decoded) - 1, 0))
    delay = _encoder_delay(y, decoded, max_lag) if len(decoded) > len(y) else 0
    return _fit_length(decoded[delay:], len(y))


@dataclass(frozen=True)
class Variant:
    """A named audio variant: `function(y, sr)` and what it does in words."""

    name: str
    description: str
    function: object

    def __call__(self, y, sr):
        return np.asarray(self.function(_signal(y), sr), dtype=np.float32)


def _noise(y, sr, snr_db):
    return add_noise(y, snr_db, seed=0)


VARIANTS = {variant.name: variant for variant in [
    Variant("speed-0.8x", "played at 0.8x speed (slower and lower, resampled)", partial(speed, factor=0.8)),
    Variant("speed-1.1x", "played at 1.1x speed (faster and higher, resampled)", partial(speed, factor=1.1)),
    Variant("speed-1.25x", "played at 1.25x speed (faster and higher, resampled)", partial(speed, factor=1.25)),
    Variant("speed-1.5x", "played at 1.5x speed (faster and higher, resampled)", partial(speed, factor=1.5)),
    Variant("stretch-0.8x", "tempo x0.8, pitch kept", partial(time_stretch, rate=0.8)),
    Variant("stretch-1.25x", "tempo x1.25, pitch kept", partial(time_stretch, rate=1.25)),
    Variant("pitch+2", "pitch up 2 semitones, tempo kept", partial(pitch_shift, semitones=2)),
    Variant("pitch-2", "pitch down 2 semitones, tempo kept", partial(pitch_shift, semitones=-2)),
    Variant("noise-20dB", "white noise at 20 dB SNR", partial(_noise, snr_db=20)),
    Variant("noise-10dB", "white noise at 10 dB SNR", partial(_noise, snr_db=10)),
    Variant("lowpass-3k", "low-pass at 3 kHz (8th-order Butterworth)", partial(low_pass, cutoff_hz=3000)),
    Variant("mp3-32k", "MP3 at 32 kbit/s and back", partial(mp3, bitrate_kbps=32)),
]}

DEFAULT_VARIANTS = ("speed-0.8x", "speed-1.1x", "speed-1.25x", "speed-1.5x", "stretch-1.25x", "pitch+2", "pitch-2",
                    "noise-20dB", "lowpass-3k", "mp3-32k")
"""The variants `genrekit experiment variants` runs when none are named."""


def check_variants(names):
    """The names as a list, or ParameterError naming the unknown ones and listing the known ones."""
    names = list(names)
    unknown = [name for name in names if name not in VARIANTS]
    if unknown:
        raise ParameterError(f"unknown variant(s) {', '.join(map(repr, unknown))}; known: {', '.join(VARIANTS)}")
    return names


def apply_variant(name, y, sr):
    """The variant `name` (a key of `VARIANTS`) of the mono signal `y` at `sr` Hz, float32."""
    check_variants([name])
    return VARIANTS[name](y, sr)


# ---------------------------------------------------------------------------------- separation from audio

def separate(y, sr, *, width_seconds=2.0, margin_background=2.0, margin_foreground=10.0, power=2.0,
             n_fft=2048, hop_length=512):
    """Split a mixture into (background, foreground), both of `y`'s length: REPET-SIM as in librosa's
    vocal separation example, with the two soft masks normalised to sum to one so that
    background + foreground == y up to STFT round-off.

    Each magnitude frame is replaced by the median of its most similar frames (cosine, at least
    `width_seconds` away): what repeats (accompaniment) survives the median, what does not (mostly the
    voice) does not. Approximate: the foreground also takes non-repeating instruments and transients.
    """
    import librosa

    y = _signal(y)
    if y.size == 0:
        return y.copy(), y.copy()
    stft = librosa.stft(y, n_fft=n_fft, hop_length=hop_length)
    magnitude, phase = librosa.magphase(stft)
    frames = magnitude.shape[1]
    if frames < 5:  # too short to find repetitions: all background
        return y.copy(), np.zeros_like(y)
    width = int(librosa.time_to_frames(width_seconds, sr=sr, hop_length=hop_length))
    width = max(1, min(width, (frames - 1) // 2 - 1))  # librosa needs width < (frames - 1) // 2
    repeating = librosa.decompose.nn_filter(magnitude, aggregate=np.median, metric="cosine", width=width)
    repeating = np.minimum(magnitude, repeating)
    mask_background = librosa.util.softmask(repeating, margin_background * (magnitude - repeating), power=power)
    mask_foreground = librosa.util.softmask(magnitude - repeating, margin_foreground * repeating, power=power)
    total = mask_background + mask_foreground
    share = np.divide(mask_background, total, out=np.full_like(total, 0.5), where=total > 1e-12)
    background = librosa.istft(share * stft, hop_length=hop_length, n_fft=n_fft, length=len(y))
    foreground = librosa.istft((1.0 - share) * stft, hop_length=hop_length, n_fft=n_fft, length=len(y))
    return background.astype(np.float32), foreground.astype(np.float32)


# ------------------------------------------------------------------------------ melody parts of MIDI files

CHOIR_PROGRAM = 52
"""General MIDI program 53 (0-based 52), "Choir Aahs": the voice the a-cappella version sings with."""
DRUM_CHANNEL = 9
MIN_MONOPHONY = 0.5
"""A part chosen by the heuristic must sound one note at a time for at least this share of its sounding
time; otherwise the song is taken to have no melody part."""

_MELODY_NAME = re.compile(r"(?<![a-z])(lead\s*vo(cal|x)|vocals?|voice|vox|voz|voix|singer|singing|sing|sung|"
                          r"melod(y|ie|ia|i)|lead)(?![a-z])")
_BACKING_NAME = re.compile(r"(?<![a-z])(backing|backup|back|bgv|bg|harmony|harmonies|harm|choir|chorus|oohs?|aahs?|"
                           r"pad|space|2nd|second|counter)(?![a-z])")
_NAME_PRIORITY = {"vocal": 0, "melody": 1, "lead": 2}


class MelodyNotFound(GenrekitError):
    """A MIDI file with no part that can stand for the sung melody."""


@dataclass(frozen=True)
class Part:
    """The notes of one channel within one track of a MIDI file (a type-0 file has one part per channel).

    `name` is the track's name (and instrument name) as the file gives it; the statistics drive the
    melody heuristic: `monophony` is the share of the part's sounding time with exactly one note held,
    `coverage` its sounding time in seconds, `median_pitch` the median MIDI note number.
    """

    track: int
    channel: int
    name: str
    program: int | None
    n_notes: int
    coverage: float
    monophony: float
    median_pitch: float

    @property
    def is_drums(self):
        return self.channel == DRUM_CHANNEL

    @property
    def is_bass(self):
        """A GM bass program (33-40), or a line whose median sits below C3 (MIDI 48)."""
        return (self.program is not None and 32 <= self.program <= 39) or self.median_pitch < 48


def _name_kind(name):
    """"vocal", "melody" or "lead" when a part's name says it carries the melody, else None."""
    text = name.lower()
    if not text or _BACKING_NAME.search(text):
        return None
    found = _MELODY_NAME.search(text)
    if not found:
        return None
    word = found.group(1)
    return "melody" if word.startswith("melod") else "lead" if word == "lead" else "vocal"


def midi_parts(midi, window=None):
    """Every (track, channel) of a parsed MIDI file that plays notes, as `Part`s, in file order.

    With `window` (start, end) seconds, only notes sounding in it count (clipped to it), and parts
    silent in it are left out."""
    from .datasets.midi import _events, _tempo_map

    events = _events(midi)
    tempo_map = _tempo_map(midi, events)
    names = {}
    for number, track in enumerate(midi.tracks):
        words = [msg.name.strip() for msg in track if msg.type in ("track_name", "instrument_name") and msg.name.strip()]
        names[number] = " / ".join(dict.fromkeys(words))
    held, notes, programs = {}, {}, {}
    for tick, number, _, msg in events:
        if msg.type == "program_change":
            programs.setdefault((number, msg.channel), msg.program)
            programs.setdefault((None, msg.channel), msg.program)
        elif msg.type == "note_on" and msg.velocity > 0:
            held.setdefault((number, msg.channel, msg.note), []).append(tick)
        elif msg.type in ("note_on", "note_off"):
            starts = held.get((number, msg.channel, msg.note))
            if starts:
                start = starts.pop(0)
                notes.setdefault((number, msg.channel), []).append(
                    (tempo_map.seconds(start), tempo_map.seconds(tick), msg.note))
    if window is not None:
        low, high = window
        notes = {key: [(max(start, low), min(end, high), pitch) for start, end, pitch in spans
                       if start < high and end > low]
                 for key, spans in notes.items()}
    parts = []
    for (number, channel), spans in sorted(notes.items()):
        if not spans:
            continue
        parts.append(Part(track=number, channel=channel, name=names.get(number, ""),
                          program=programs.get((number, channel), programs.get((None, channel))),
                          n_notes=len(spans), **_polyphony(spans)))
    return parts


def _polyphony(spans):
    """Sounding time and the share of it with exactly one note held, from (start, end, pitch) spans."""
    changes = sorted([(start, 1) for start, end, _ in spans if end > start] +
                     [(end, -1) for start, end, _ in spans if end > start])
    sounding = single = 0.0
    count, previous = 0, None
    for time, step in changes:
        if previous is not None and count > 0:
            sounding += time - previous
            single += (time - previous) * (count == 1)
        count, previous = count + step, time
    return {"coverage": sounding, "monophony": single / sounding if sounding > 0 else 0.0,
            "median_pitch": float(np.median([pitch for _, _, pitch in spans]))}


def melody_score(part, length):
    """How much a part looks like a sung melody: monophony x share of the song it sounds in x a register
    weight (1 for a median between G3 (55) and C6 (84), falling off by 1/12 per semitone outside)."""
    register = 1.0
    if part.median_pitch < 55:
        register = max(0.0, 1 - (55 - part.median_pitch) / 12)
    elif part.median_pitch > 84:
        register = max(0.0, 1 - (part.median_pitch - 84) / 12)
    return part.monophony * min(1.0, part.coverage / max(length, 1e-9)) * register


def find_melody_track(midi, window=None):
    """The part that carries the melody of a parsed MIDI file, and how it was found.

    Returns `(part, how)`: `part` a `Part` (its `.track` is the track index, `.channel` the 0-based MIDI
    channel), `how` "named" or "heuristic".

    1. "named": a non-drum part whose track or instrument name says vocal/voice/vox/sing... (first
       choice), melody, or lead (a "lead" part only if mostly monophonic and not bass: "Lead Guitar" is
       often chords), and not backing/harmony/choir/pad...; among several of the same kind, the one
       with the highest `melody_score`.
    2. "heuristic": among parts that are neither drums (channel 10) nor bass (GM bass program, or median
       below C3), the one with the highest `melody_score` (mostly one note at a time, sounding through
       much of the song, median in the mid-to-high register), provided its monophony is at least
       `MIN_MONOPHONY`.

    With `window` (start, end) seconds, the part is chosen for that excerpt: a named part is still
    taken as it is (it may rest there), the heuristic looks only at the notes inside the window.

    Raises `MelodyNotFound` when no part qualifies.
    """
    from .datasets.midi import midi_length

    parts = [part for part in midi_parts(midi) if not part.is_drums]
    if not parts:
        raise MelodyNotFound("no pitched (non-drum) notes")
    length = midi_length(midi)
    named = [(part, _name_kind(part.name)) for part in parts]
    named = [(part, kind) for part, kind in named
             if kind is not None and (kind != "lead" or (part.monophony >= MIN_MONOPHONY and not part.is_bass))]
    if named:
        best = min(named, key=lambda item: (_NAME_PRIORITY[item[1]], -melody_score(item[0], length)))
        return best[0], "named"
    if window is not None:
        parts = [part for part in midi_parts(midi, window) if not part.is_drums]
        length = window[1] - window[0]
    candidates = [part for part in parts if not part.is_bass and part.monophony >= MIN_MONOPHONY]
    if not candidates:
        where = "" if window is None else f" in {window[0]:.2f}-{window[1]:.2f} s"
        raise MelodyNotFound(f"no mostly monophonic, non-bass part{where} (monophony >= {MIN_MONOPHONY})")
    return max(candidates, key=lambda part: (melody_score(part, length), part.median_pitch)), "heuristic"


def _is_note(msg):
    return msg.type in ("note_on", "note_off", "polytouch")


def _rebuild(midi, keep, start_messages=None):
    """A copy of `midi` with only the messages `keep(track, msg)` accepts (timing kept), and
    `start_messages[track]` put at tick 0 of that track."""
    import mido

    out = mido.MidiFile(type=midi.type, ticks_per_beat=midi.ticks_per_beat)
    for number, track in enumerate(midi.tracks):
        new, tick, previous = mido.MidiTrack(), 0, 0
        for msg in (start_messages or {}).get(number, []):
            new.append(msg.copy(time=0))
        for msg in track:
            tick += msg.time
            if keep(number, msg):
                new.append(msg.copy(time=tick - previous))
                previous = tick
        out.tracks.append(new)
    return out


def instrumental(midi, part=None):
    """The song without its melody: `midi` with the notes of `part` (default: `find_melody_track`)
    removed, everything else (timing, other parts, controllers) as it was."""
    part = part if part is not None else find_melody_track(midi)[0]
    return _rebuild(midi, lambda number, msg: not (_is_note(msg) and number == part.track
                                                   and msg.channel == part.channel))


def a_cappella(midi, part=None, program=CHOIR_PROGRAM):
    """Only the melody, sung: `midi` keeping the notes of `part` (default: `find_melody_track`) and, of the
    channel messages, only those of its channel (its controllers, pitch bend...), with the program set
    to `program` (GM 52, "Choir Aahs", bank 0) instead of the file's program and bank changes, and
    volume and expression fixed at 100 and 127 (karaoke files often mute their melody track; the render
    is peak-normalised anyway).

    Meta messages (tempo) and system-exclusive messages stay.
    """
    import mido

    part = part if part is not None else find_melody_track(midi)[0]
    channel = part.channel

    def keep(number, msg):
        if msg.is_meta or msg.type == "sysex":
            return True
        if getattr(msg, "channel", None) != channel:
            return False
        if msg.type == "program_change" or (msg.type == "control_change" and msg.control in (0, 7, 11, 32)):
            return False
        return not _is_note(msg) or number == part.track

    setup = [mido.Message("control_change", channel=channel, control=0, value=0),
             mido.Message("control_change", channel=channel, control=32, value=0),
             mido.Message("program_change", channel=channel, program=program),
             mido.Message("control_change", channel=channel, control=7, value=100),
             mido.Message("control_change", channel=channel, control=11, value=127)]
    return _rebuild(midi, keep, {part.track: setup})


# ----------------------------------------------------------------------------- rendering a MIDI collection

VERSIONS = ("original", "instrumental", "a-cappella")
_WINDOW = re.compile(r"_(\d+(?:\.\d+)?)-(\d+(?:\.\d+)?)\.wav$")


@dataclass(frozen=True)
class VersionClip:
    """One rendered version of a song's clip (a row of `versions.csv`): the song window [start, end) s,
    and the melody part (track index, `melody_channel` 1-based as musicians count, so drums are 10)."""

    song: str
    genre: str
    group: str
    split: str | None
    version: str
    path: str
    start: float
    end: float
    how: str
    melody_track: int
    melody_channel: int
    melody_name: str


class RenderedVersions(list):
    """`VersionClip`s of every song whose three versions all exist, plus `failures` (list of
    `RenderFailure`) and the counts `named` and `heuristic` (how the melody part was found)."""

    def __init__(self, clips=(), failures=(), named=0, heuristic=0, rendered=0, cached=0):
        super().__init__(clips)
        self.failures, self.named, self.heuristic = list(failures), named, heuristic
        self.rendered, self.cached = rendered, cached

    def by_song(self):
        """{song id: {version: VersionClip}}."""
        songs = {}
        for clip in self:
            songs.setdefault(clip.song, {})[clip.version] = clip
        return songs


def clip_window(path):
    """The song window [start, end) seconds encoded in a rendered clip's name (`<id>_<start>-<end>.wav`)."""
    found = _WINDOW.search(Path(path).name)
    if not found:
        raise ParameterError(f"{path}: not a rendered clip name (<id>_<start>-<end>.wav)")
    return float(found.group(1)), float(found.group(2))


def _original_clips(midi_audio):
    """{(genre, song id): path} of the clips in a rendered corpus folder (its manifest, else its WAVs)."""
    found = {}
    if midi_audio is None or not Path(midi_audio).is_dir():
        return found
    root = Path(midi_audio)
    paths = []
    if (root / "manifest.csv").is_file():
        with open(root / "manifest.csv", newline="") as handle:
            paths = [root / row["path"] if not Path(row["path"]).is_absolute() else Path(row["path"])
                     for row in csv.DictReader(handle)]
    paths = paths or sorted(root.glob("*/*.wav"))
    for path in paths:
        found_window = _WINDOW.search(path.name)
        if found_window and path.is_file():
            found.setdefault((path.parent.name, path.name[: found_window.start()]), path)
    return found


def _describe(part, how):
    name = f" {part.name!r}" if part.name else ""
    return f"{how} melody part: track {part.track}{name}, channel {part.channel + 1}"


def _render_versions_song(song, original, out_dir, soundfont, timeout, peak_dbfs):
    """Worker: the original (reused or rendered), instrumental and a-cappella clips of one song.
    Returns (clips, failures, how, rendered, cached)."""
    from .datasets.midi import RenderError, RenderFailure, _render_song, clip_name, read_midi, render_window, write_wav

    out_dir = Path(out_dir)
    rendered = cached = 0
    try:
        if original is None:
            tracks, failures, rendered, cached = _render_song(song, out_dir / "original", "middle", 30.0, soundfont,
                                                              timeout, peak_dbfs)
            if not tracks:
                return [], failures, None, rendered, cached
            original = Path(tracks[0].path)
        else:
            cached += 1
        start, end = clip_window(original)
        midi = read_midi(song.path)
        part, how = find_melody_track(midi, window=(start, end))
        if not [p for p in midi_parts(midi) if (p.track, p.channel) != (part.track, part.channel)]:
            raise MelodyNotFound("the melody part is the only part: no instrumental version")
        info = dict(song=song.id, genre=song.genre, group=song.group, split=song.split, start=start, end=end, how=how,
                    melody_track=part.track, melody_channel=part.channel + 1, melody_name=part.name)
        clips = [VersionClip(version="original", path=str(original), **info)]
        for version, make in (("instrumental", instrumental), ("a-cappella", a_cappella)):
            path = out_dir / version / clip_name(song, start, end)
            if path.is_file():
                cached += 1
            else:
                try:
                    y = render_window(make(midi, part), start, end, soundfont=soundfont, timeout=timeout,
                                      peak_dbfs=peak_dbfs)
                except RenderError as error:
                    raise RenderError(f"{version} ({_describe(part, how)}): {error}") from None
                write_wav(path, y)
                rendered += 1
            clips.append(VersionClip(version=version, path=str(path), **info))
    except (RenderError, MelodyNotFound) as error:
        return [], [RenderFailure(song.rel, str(error))], None, rendered, cached
    except Exception as error:  # an oddity of one file must not stop the collection
        return [], [RenderFailure(song.rel, f"{type(error).__name__}: {error}")], None, rendered, cached
    return clips, [], how, rendered, cached


def render_versions(source_dir, out_dir, *, midi_audio=None, split="test", soundfont=None, workers=None,
                    timeout=60.0, progress=True, limit_per_genre=None, peak_dbfs=None):
    """Render the instrumental and a-cappella versions of the songs of one split of a MIDI collection
    (`source_dir/songs.csv`), over the same window as each song's original clip.

    The original clip is taken from `midi_audio` (a folder written by `render_midi_corpus` /
    `genrekit data render-midi`, mode "middle") when it is there, else rendered to `out_dir/original/`
    the same way. The versions go to `out_dir/instrumental/` and `out_dir/a-cappella/` under the same
    `<genre>/<id>_<start>-<end>.wav` names (existing files are reused). Written alongside:
    `out_dir/<version>/manifest.csv` (loadable with `genrekit.datasets.load_dataset`) for each version,
    `out_dir/versions.csv` (every clip with its song, window and melody part) and `out_dir/failures.csv`
    (songs skipped: no melody part, render failed, silent render...). Only songs with all three
    versions are kept, so the versions compare clip for clip. The melody part is chosen for the clip's
    window (`find_melody_track(midi, window=...)`); `.named` / `.heuristic` count the kept songs.
    """
    from .datasets.folder import write_manifest
    from .datasets.midi import DEFAULT_SOUNDFONT, PEAK_DBFS, _pool, _track, _write_failures, check_renderer, read_songs

    soundfont = DEFAULT_SOUNDFONT if soundfont is None else soundfont
    peak_dbfs = PEAK_DBFS if peak_dbfs is None else peak_dbfs
    check_renderer(soundfont)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    songs = read_songs(source_dir, splits=split, limit_per_genre=limit_per_genre)
    originals = _original_clips(midi_audio)
    arguments = (str(out_dir), str(soundfont), timeout, peak_dbfs)
    result = RenderedVersions()

    def collect(outcome):
        clips, failures, how, rendered, cached = outcome
        result.extend(clips)
        result.rendered += rendered
        result.cached += cached
        if how == "named":
            result.named += 1
        elif how == "heuristic":
            result.heuristic += 1
        for failure in failures:
            log.warning("skipped %s%s: %s", failure.path, f" [{failure.window} s]" if failure.window else "",
                        failure.reason)
        result.failures.extend(failures)

    from tqdm import tqdm

    workers = max(1, min((os.cpu_count() or 1) if workers is None else workers, len(songs) or 1))
    jobs = [(song, originals.get((song.genre, song.id))) for song in songs]
    if workers == 1:
        for song, original in tqdm(jobs, unit="song", desc="rendering versions", disable=not progress):
            collect(_render_versions_song(song, original, *arguments))
    else:
        from concurrent.futures import as_completed

        with _pool(workers) as pool:
            futures = [pool.submit(_render_versions_song, song, original, *arguments) for song, original in jobs]
            for future in tqdm(as_completed(futures), total=len(futures), unit="song",
                               desc=f"rendering versions ({workers} workers)", disable=not progress):
                collect(future.result())

    result.sort(key=lambda clip: (clip.genre, clip.song, VERSIONS.index(clip.version)))
    result.failures.sort(key=lambda failure: (failure.path, failure.window))
    songs_by_id = {song.id: song for song in songs}
    for version in VERSIONS:
        write_manifest([_track(songs_by_id[clip.song], clip.path) for clip in result if clip.version == version],
                       out_dir / version / "manifest.csv")
    _write_versions(result, out_dir / "versions.csv")
    _write_failures(result.failures, out_dir / "failures.csv")
    if progress:
        print(f"{len(result.by_song())} songs with all versions in {out_dir} ({result.rendered} clips rendered, "
              f"{result.cached} reused); melody part named in {result.named}, found by the heuristic in "
              f"{result.heuristic}; {len(result.failures)} song(s) skipped (see {out_dir / 'failures.csv'})")
    return result


def _write_versions(clips, path):
    from .atomic import atomic_path

    fields = ["song", "genre", "group", "split", "version", "path", "start", "end", "how", "melody_track",
              "melody_channel", "melody_name"]
    with atomic_path(path) as temp, open(temp, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(fields)
        for clip in clips:
            writer.writerow([getattr(clip, field) if getattr(clip, field) is not None else "" for field in fields])


def read_versions(out_dir):
    """The `VersionClip`s listed in `out_dir/versions.csv` (as `render_versions` wrote them)."""
    from .exceptions import DatasetError

    path = Path(out_dir) / "versions.csv"
    if not path.is_file():
        raise DatasetError(f"{path}: not found (render the versions first)")
    with open(path, newline="") as handle:
        return [VersionClip(song=row["song"], genre=row["genre"], group=row["group"], split=row["split"] or None,
                            version=row["version"], path=row["path"], start=float(row["start"]),
                            end=float(row["end"]), how=row["how"], melody_track=int(row["melody_track"]),
                            melody_channel=int(row["melody_channel"]), melody_name=row["melody_name"])
                for row in csv.DictReader(handle)]
