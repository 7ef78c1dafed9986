"""Exact instrumental and a-cappella versions of MIDI songs (the paper's section 3.2).

`find_melody_track` picks the part carrying the (sung) melody: by track name (vocal, voice, vox, melody,
lead...), otherwise by a heuristic (the most monophonic, longest-sounding, mid-to-high register part that is
neither drums nor bass). `instrumental` drops it, `a_cappella` keeps only it, played by a choir (GM program
52, "Choir Aahs"). `render_versions` renders both, beside the original clip, for a whole collection; read
them back with `genrekit.datasets.songs.read_versions`.
"""

import csv
import logging
import re
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import mido
import numpy as np

from ..atomic import atomic_path
from ..datasets.folder import write_manifest
from ..datasets.songs import VERSIONS, VersionClip, clip_window, read_songs, rendered_clips
from ..exceptions import GenrekitError
from ..parallel import map_unordered
from .cutting import DRUM_CHANNEL, RenderError, midi_events, midi_length, midi_tempo_map, read_midi
from .render import (DEFAULT_SOUNDFONT, PEAK_DBFS, RenderFailure, check_renderer, clip_name, render_song, render_window,
                     write_failures, write_wav)

log = logging.getLogger(__name__)


CHOIR_PROGRAM = 52
"""General MIDI program 53 (0-based 52), "Choir Aahs": the voice the a-cappella version sings with."""
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

    events = midi_events(midi)
    tempo_map = midi_tempo_map(midi, events)
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


def _describe(part, how):
    name = f" {part.name!r}" if part.name else ""
    return f"{how} melody part: track {part.track}{name}, channel {part.channel + 1}"


def _render_versions_song(job, *, out_dir, soundfont, timeout, peak_dbfs):
    """Worker: the original (reused or rendered), instrumental and a-cappella clips of one (song, original
    clip or None). Returns (clips, failures, how, rendered, cached)."""

    song, original = job
    out_dir = Path(out_dir)
    rendered = cached = 0
    try:
        if original is None:
            tracks, failures, rendered, cached = render_song(song, out_dir / "original", mode="middle", clip_seconds=30.0,
                                                             soundfont=soundfont, timeout=timeout, peak_dbfs=peak_dbfs)
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

    soundfont = DEFAULT_SOUNDFONT if soundfont is None else soundfont
    peak_dbfs = PEAK_DBFS if peak_dbfs is None else peak_dbfs
    check_renderer(soundfont)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    songs = read_songs(source_dir, splits=split, limit_per_genre=limit_per_genre)
    originals = rendered_clips(midi_audio)
    jobs = [(song, originals.get((song.genre, song.id))) for song in songs]
    work = partial(_render_versions_song, out_dir=str(out_dir), soundfont=str(soundfont), timeout=timeout,
                   peak_dbfs=peak_dbfs)
    result = RenderedVersions()
    for clips, failures, how, rendered, cached in map_unordered(work, jobs, workers=workers, desc="rendering versions",
                                                                unit="song", progress=progress):
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

    result.sort(key=lambda clip: (clip.genre, clip.song, VERSIONS.index(clip.version)))
    result.failures.sort(key=lambda failure: (failure.path, failure.window))
    songs_by_id = {song.id: song for song in songs}
    for version in VERSIONS:
        write_manifest([songs_by_id[clip.song].track(clip.path) for clip in result if clip.version == version],
                       out_dir / version / "manifest.csv")
    _write_versions(result, out_dir / "versions.csv")
    write_failures(result.failures, out_dir / "failures.csv")
    if progress:
        print(f"{len(result.by_song())} songs with all versions in {out_dir} ({result.rendered} clips rendered, "
              f"{result.cached} reused); melody part named in {result.named}, found by the heuristic in "
              f"{result.heuristic}; {len(result.failures)} song(s) skipped (see {out_dir / 'failures.csv'})")
    return result


def _write_versions(clips, path):
    fields = ["song", "genre", "group", "split", "version", "path", "start", "end", "how", "melody_track",
              "melody_channel", "melody_name"]
    with atomic_path(path) as temp, open(temp, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(fields)
        for clip in clips:
            writer.writerow([getattr(clip, field) if getattr(clip, field) is not None else "" for field in fields])
