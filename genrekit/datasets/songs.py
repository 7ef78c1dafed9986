"""MIDI song collections (`songs.csv` + `<genre>/<id>.mid`) and what `genrekit.midi` rendered from them.

`read_songs` reads a collection; `rendered_clips` finds the clips of a rendered corpus folder, `clip_window`
reads the song window out of a clip's name, `read_versions` reads the `versions.csv` of rendered
instrumental / a-cappella versions.
"""

import csv
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from ..exceptions import DatasetError, ParameterError
from .track import SPLITS, Track, read_track_table

SOURCE = "midi"
VERSIONS = ("original", "instrumental", "a-cappella")
_WINDOW = re.compile(r"_(\d+(?:\.\d+)?)-(\d+(?:\.\d+)?)\.wav$")


@dataclass(frozen=True)
class Song:
    """A row of songs.csv."""

    path: str  # absolute path of the .mid
    rel: str  # as in songs.csv
    split: str | None
    genre: str
    group: str
    duration: float | None

    @property
    def id(self):
        return Path(self.rel).stem

    def track(self, path):
        """The `Track` of a clip rendered from this song (label = genre, source "midi")."""
        return Track(path=str(path), label=self.genre, group=self.group, source=SOURCE, split=self.split)


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
        songs.append(Song(path=str(source_dir / rel), rel=rel, split=split, genre=genre,
                          group=(row.get("group") or "").strip() or f"midi:{rel}",
                          duration=float(duration) if duration else None))
    return songs


def clip_window(path):
    """The song window [start, end) seconds encoded in a rendered clip's name (`<id>_<start>-<end>.wav`)."""
    found = _WINDOW.search(Path(path).name)
    if not found:
        raise ParameterError(f"{path}: not a rendered clip name (<id>_<start>-<end>.wav)")
    return float(found.group(1)), float(found.group(2))


def rendered_clips(folder):
    """{(genre, song id): path} of the clips in a rendered corpus folder (its manifest, else its WAVs)."""
    found = {}
    if folder is None or not Path(folder).is_dir():
        return found
    root = Path(folder)
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


def read_versions(out_dir):
    """The `VersionClip`s listed in `out_dir/versions.csv` (as `genrekit.midi.versions.render_versions` wrote
    them)."""

    path = Path(out_dir) / "versions.csv"
    if not path.is_file():
        raise DatasetError(f"{path}: not found (render the versions first)")
    with open(path, newline="") as handle:
        return [VersionClip(song=row["song"], genre=row["genre"], group=row["group"], split=row["split"] or None,
                            version=row["version"], path=row["path"], start=float(row["start"]),
                            end=float(row["end"]), how=row["how"], melody_track=int(row["melody_track"]),
                            melody_channel=int(row["melody_channel"]), melody_name=row["melody_name"])
                for row in csv.DictReader(handle)]
