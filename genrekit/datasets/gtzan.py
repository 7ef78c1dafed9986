"""GTZAN: 1000 clips of 30 s in 10 genres, with the fault-filtered, artist-conditional split.

Both common layouts are read: `genres/<g>/<g>.NNNNN.au` (the original tarball) and Kaggle's
`genres_original/<g>/<g>.NNNNN.wav`, or the genre folders directly under the root. Files are matched to the
split lists by track id (`blues.00012`) whatever their extension.

The fault-filtered split (Kereliuk, Sturm & Larsen 2015) comes as `train_filtered.txt`,
`valid_filtered.txt` and `test_filtered.txt`, from the public repository `coreyker/dnn-mgr`
(`gtzan/` folder). Put them in a `splits/` folder beside the dataset, or point `GENREKIT_GTZAN_SPLITS` or
`splits_dir=` at them. Tracks in none of the lists are the faulty ones (repetitions, distortions,
mislabels) and are dropped. Artists come from a `tracks.csv` (columns `track_id`, `artist`, as in
Sturm's index) beside the dataset or at `GENREKIT_GTZAN_ARTISTS`.

A folder whose `tracks.csv` lists the files itself (columns `path`, `genre`, `track_id`, `split`, as in
`gtzan-extra`: excerpts of GTZAN clips) is read from that table. Merged with other GTZAN folders
(`genrekit.datasets.merge`), the files of one `track_id` form one group (`unify_track_groups`).
"""

import logging
import os
import re
from pathlib import Path

from ..audio import audio_info
from ..constants import AUDIO_EXTENSIONS
from ..exceptions import AudioError, DatasetError
from .splits import split_by_group
from .track import SPLITS, Track, csv_reader, read_track_table

GENRES = ("blues", "classical", "country", "disco", "hiphop", "jazz", "metal", "pop", "reggae", "rock")
KNOWN_CORRUPT = frozenset({"jazz.00054"})
SPLIT_FILES = {split: f"{split}_filtered.txt" for split in SPLITS}
_TRACK_ID = re.compile(r"^(%s)\.(\d{5})$" % "|".join(GENRES))

log = logging.getLogger(__name__)


def _genre_root(root):
    for name in ("genres_original", "genres"):
        if (root / name).is_dir():
            return root / name
    return root


def find_clips(root):
    """Map track id (`blues.00000`) to its file for every GTZAN-named audio file under `root`."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: GTZAN folder not found")
    clips = {}
    for genre in GENRES:
        for path in sorted((_genre_root(root) / genre).glob(f"{genre}.*.*")):
            track_id = path.name.rsplit(".", 1)[0]
            if _TRACK_ID.match(track_id) and path.suffix.lower() in AUDIO_EXTENSIONS:
                clips[track_id] = path
    if not clips:
        raise DatasetError(f"{root}: no GTZAN clips (<genre>/<genre>.NNNNN.au|wav) found")
    return clips


def _find_beside(root, explicit, env_var, candidates):
    """First existing path among an explicit one, an environment variable, and places beside `root`."""
    for place in [explicit, os.environ.get(env_var)]:
        if place:
            if not Path(place).exists():
                raise DatasetError(f"{place}: not found (given by {'option' if place == explicit else env_var})")
            return Path(place)
    for place in candidates:
        if place.exists():
            return place
    return None


def read_split_lists(splits_dir):
    """Track id -> split from the three `*_filtered.txt` lists in `splits_dir`."""
    split_of = {}
    for split, name in SPLIT_FILES.items():
        path = Path(splits_dir) / name
        if not path.is_file():
            raise DatasetError(f"{path}: split list missing (need {', '.join(SPLIT_FILES.values())})")
        for line in path.read_text().split():
            split_of[Path(line).name.rsplit(".", 1)[0]] = split
    return split_of


def read_artists(path):
    """Track id -> artist from a CSV with `track_id` and `artist` columns (empty artists skipped)."""
    return {row["track_id"]: row["artist"] for row in csv_reader(path) if row.get("artist")}


def _readable(path):
    """Whether the audio header of `path` reads; a file that does not is logged as skipped."""
    try:
        audio_info(path)
    except AudioError as error:
        log.warning("%s: skipped (%s)", path, error.reason)
        return False
    return True


def is_listed(root):
    """Whether `root` holds a `tracks.csv` that lists its files with their split (the gtzan-extra layout)."""
    table = Path(root) / "tracks.csv"
    if not table.is_file():
        return False
    return {"path", "genre", "track_id", "split"} <= set(csv_reader(table).fieldnames or [])


def load_listed(root, *, check_audio=True):
    """The files a gtzan-extra style `tracks.csv` lists, split as it says, one group per `track_id`."""
    root = Path(root)
    tracks = []
    for line, row, split in read_track_table(root / "tracks.csv", ("path", "genre", "track_id", "split")):
        path, track_id = root / row["path"], row["track_id"]
        if not _TRACK_ID.match(track_id) or row["genre"] != track_id.split(".")[0]:
            raise DatasetError(f"{root / 'tracks.csv'}:{line}: {track_id!r} is not a GTZAN track id of {row['genre']!r}")
        if check_audio and not _readable(path):
            continue
        tracks.append(Track(path=str(path), label=row["genre"], group=f"gtzan:{track_id}", source="gtzan",
                            split=split))
    if not tracks:
        raise DatasetError(f"{root}: tracks.csv lists no readable GTZAN files")
    return tracks


def track_id_of(track):
    """The GTZAN track id (`blues.00012`) of a GTZAN track's file."""
    return Path(track.path).name.rsplit(".", 1)[0]


def unify_track_groups(tracks):
    """GTZAN tracks of one `track_id` in one group: the artist's where any file of it has one, else the
    track's. Other tracks are returned unchanged."""
    group_of = {}
    for track in tracks:
        if track.source == "gtzan" and track.group.startswith("gtzan:artist:"):
            group_of[track_id_of(track)] = track.group
    return [track.replace(group=group_of.get(track_id_of(track), f"gtzan:{track_id_of(track)}"))
            if track.source == "gtzan" else track for track in tracks]


def load_gtzan(root, *, splits_dir=None, artists_csv=None, check_audio=True, seed=0):
    """GTZAN clips as `Track`s, split by the fault-filtered lists when found, else by artist groups (or as
    a gtzan-extra style `tracks.csv` lists them, see `load_listed`).

    Known-corrupt clips (jazz.00054) and, with `check_audio`, clips whose header cannot be read are
    logged and skipped.
    """
    root = Path(root)
    if is_listed(root):
        return load_listed(root, check_audio=check_audio)
    clips = find_clips(root)
    splits_dir = _find_beside(root, splits_dir, "GENREKIT_GTZAN_SPLITS",
                              [root / "splits", root.parent / "splits"])
    artists_csv = _find_beside(root, artists_csv, "GENREKIT_GTZAN_ARTISTS",
                               [root / "tracks.csv", root.parent / "tracks.csv"])
    split_of = read_split_lists(splits_dir) if splits_dir else None
    artist_of = read_artists(artists_csv) if artists_csv else {}
    tracks = []
    for track_id, path in sorted(clips.items()):
        if track_id in KNOWN_CORRUPT:
            log.warning("%s: skipped, known to be corrupt in common GTZAN copies", path)
            continue
        if split_of is not None and track_id not in split_of:
            continue
        if check_audio and not _readable(path):
            continue
        artist = artist_of.get(track_id)
        tracks.append(Track(path=str(path), label=track_id.split(".")[0],
                            group=f"gtzan:artist:{artist}" if artist else f"gtzan:{track_id}",
                            source="gtzan", split=split_of.get(track_id) if split_of else None))
    return tracks if split_of is not None else split_by_group(tracks, seed=seed)
