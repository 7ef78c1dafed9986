"""real-extra: real recordings with genre SETS and an artist-disjoint train/valid split (the 4Q emotion set's
AllMusic previews and Emotify's Magnatune pieces, laid out by `shared/data/real-extra/build.py`).

Only the files its `tracks.csv` lists are read (the snapshots it is built from hold more, kept back for
evaluation). A clip's label is its set of genres joined by `|` (`Track.label_set`): AllMusic's Pop/Rock is
`metal|pop|rock`; an empty set (Latin, folk, ...: no genre of the taxonomy) is kept as an empty label, which
`merge` drops and which `genrekit.evaluation` never counts as right. One group per artist.
"""

import logging
from pathlib import Path

from ..exceptions import DatasetError
from .track import SET_SEPARATOR, Track, csv_reader, read_track_table

COLUMNS = ("path", "genres", "split", "artist", "source")

log = logging.getLogger(__name__)


def is_real_extra(root):
    """Whether `root` holds a real-extra `tracks.csv` (genre sets per listed file)."""
    table = Path(root) / "tracks.csv"
    return table.is_file() and set(COLUMNS) <= set(csv_reader(table).fieldnames or [])


def load_real_extra(root):
    """The files real-extra's `tracks.csv` lists (label sets, artist groups, its split); listed files missing
    on disk are logged and skipped."""
    root = Path(root)
    table = root / "tracks.csv"
    if not table.is_file():
        raise DatasetError(f"{root}: real-extra tracks.csv not found (build it with shared/data/real-extra/build.py)")
    tracks, missing = [], 0
    for line, row, split in read_track_table(table, COLUMNS):
        path = root / row["path"]
        if not path.is_file():
            missing += 1
            continue
        genres = sorted(filter(None, (g.strip() for g in row["genres"].split(SET_SEPARATOR))))
        artist = row["artist"].strip() or row["path"]
        tracks.append(Track(path=str(path), label=SET_SEPARATOR.join(genres), group=f"real-extra:{artist.lower()}",
                            source=f"real-extra:{row['source']}", split=split))
    if missing:
        log.warning("%s: %d listed file(s) missing on disk, skipped", root, missing)
    if not tracks:
        raise DatasetError(f"{root}: none of the files tracks.csv lists is there (build it first)")
    return tracks
