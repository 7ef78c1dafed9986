"""CCMusic `music_genre`: about 1,700 songs of 270-300 s with a three-level genre label, from a local parquet copy.

Schema, from the Hugging Face repository `ccmusic-database/music_genre`: its dataset card (README.md,
`dataset_info`, commit 5422cbf) and its loading script `music_genre.py` (commit 002697b). The raw ("default")
subset has the columns `audio` (Audio, the song), `mel` (Image) and three labels, each a ClassLabel stored as an
int 0..n-1 in the order of `LEVELS` below:

- `fst_level_label`: Classic, Non_classic
- `sec_level_label`: 9 classes (Symphony ... Rock)
- `thr_level_label`: 16 classes; classical songs repeat their second-level label here

The hub serves this subset only through the script (zips of audio) and its `eval` subset as arrow files of
spectrogram images without audio, so a local copy is a parquet export of the raw subset, e.g.
`load_dataset("ccmusic-database/music_genre", name="default")[split].to_parquet(...)`: any `*.parquet` under
`root`, the split named by a folder or file-name prefix (`train/0000.parquet`, `validation-00000-of-00001.parquet`).
Label names come from the files' own ClassLabel features when present, else from `LEVELS`.

Songs are stored as bytes; each is written once to `extract_dir` (default: `ccmusic-audio/` in `root`) as
`<sha256 prefix><original extension>` so that `Track.path` is a real file, and reused on later runs.
"""

import hashlib
import logging
import re
from pathlib import Path

from ..atomic import atomic_path
from ..audio import audio_info
from ..constants import AUDIO_EXTENSIONS
from ..exceptions import AudioError, DatasetError, ParameterError
from .splits import check_disjoint, split_by_group
from .track import Track, snippets

LEVELS = {
    "fst": ("Classic", "Non_classic"),
    "sec": ("Symphony", "Opera", "Solo", "Chamber", "Pop", "Dance_and_house", "Indie", "Soul_or_RnB", "Rock"),
    "thr": ("Symphony", "Opera", "Solo", "Chamber", "Pop_vocal_ballad", "Adult_contemporary", "Teen_pop",
            "Contemporary_dance_pop", "Dance_pop", "Classic_indie_pop", "Chamber_cabaret_and_art_pop",
            "Soul_or_RnB", "Adult_alternative_rock", "Uplifting_anthemic_rock", "Soft_rock", "Acoustic_pop"),
}
SPLIT_NAMES = {"train": "train", "validation": "valid", "valid": "valid", "test": "test"}
SPLIT_ORDER = ("test", "valid", "train", None)
"""Splits are read in this order; a song found again later (same bytes) is dropped, so evaluation sets stay whole."""

_SPLIT_PART = re.compile(r"^(train|validation|valid|test)(?![a-z])", re.IGNORECASE)

log = logging.getLogger(__name__)


def _split_of(path, base):
    """The split of a parquet file, from the first folder or file name that starts with a split name."""
    for part in path.relative_to(base).parts:
        match = _SPLIT_PART.match(part)
        if match:
            return SPLIT_NAMES[match.group(1).lower()]
    return None


def _rows(path, level):
    """(audio cell, label name) for each row of one parquet file, the audio left undecoded."""
    import datasets
    import pyarrow as pa
    import pyarrow.parquet as pq

    column = f"{level}_level_label"
    try:
        present = pq.read_schema(path).names
    except (OSError, pa.ArrowException) as error:
        raise DatasetError(f"{path}: not a readable parquet file ({error})") from None
    missing = [name for name in ("audio", column) if name not in present]
    if missing:
        raise DatasetError(f"{path}: no column(s) {missing} (need the raw `default` subset of CCMusic music_genre)")
    rows = datasets.load_dataset("parquet", data_files=[str(path)], split="train", streaming=True,
                                 columns=["audio", column])
    feature = rows.features[column]
    names = feature.names if isinstance(feature, datasets.ClassLabel) else LEVELS[level]
    for row in rows.cast_column("audio", datasets.Audio(decode=False)):
        label = row[column]
        if not isinstance(label, str):
            if not 0 <= label < len(names):
                raise DatasetError(f"{path}: {column} {label} is outside 0..{len(names) - 1}")
            label = names[label]
        yield row["audio"], label


def _extract(data, digest, name, extract_dir):
    """Path of `extract_dir/<digest><ext>` holding `data`, written atomically unless already there."""
    suffix = Path(name or "").suffix.lower()
    path = extract_dir / (digest + (suffix if suffix in AUDIO_EXTENSIONS else ""))
    if not path.exists():
        with atomic_path(path) as temp:
            temp.write_bytes(data)
    return path


def load_ccmusic(root, *, level="sec", snippet_seconds=30.0, extract_dir=None, seed=0):
    """CCMusic songs cut into `snippet_seconds` snippets labelled at `level` ("fst", "sec" or "thr").

    All snippets of a song share the group `ccmusic:<hash>`. The copy's train/validation/test splits are kept
    (validation -> "valid"); without them songs are split by `split_by_group`. Unreadable songs are logged and
    skipped.
    """
    if level not in LEVELS:
        raise ParameterError(f"level must be one of {tuple(LEVELS)}, got {level!r}")
    if not snippet_seconds > 0:
        raise ParameterError(f"snippet_seconds must be > 0, got {snippet_seconds}")
    root = Path(root)
    if not root.exists():
        raise DatasetError(f"{root}: CCMusic copy not found")
    base = root if root.is_dir() else root.parent
    files = sorted(base.rglob("*.parquet")) if root.is_dir() else [root]
    if not files:
        raise DatasetError(f"{root}: no *.parquet files")
    extract_dir = Path(extract_dir) if extract_dir else base / "ccmusic-audio"
    extract_dir.mkdir(parents=True, exist_ok=True)
    tracks, seen = [], {}
    for split, path in sorted(((_split_of(file, base), file) for file in files),
                              key=lambda item: SPLIT_ORDER.index(item[0])):
        for audio, label in _rows(path, level):
            name, data = audio.get("path"), audio.get("bytes")
            if not data:
                log.warning("%s: song %r skipped (no audio bytes)", path, name)
                continue
            digest = hashlib.sha256(data).hexdigest()[:32]
            group = f"ccmusic:{digest}"
            if group in seen:
                log.warning("%s: song %r skipped (same audio already in split %s)", path, name, seen[group])
                continue
            seen[group] = split
            song = _extract(data, digest, name, extract_dir)
            try:
                duration = audio_info(song).duration
            except AudioError as error:
                log.warning("%s (song %r of %s): skipped (%s)", song, name, path, error.reason)
                continue
            tracks += snippets(Track(path=str(song), label=label, group=group, source="ccmusic", split=split),
                               duration, length=snippet_seconds)
    if not tracks:
        raise DatasetError(f"{root}: no readable songs")
    tracks = split_by_group(tracks, seed=seed)
    check_disjoint(tracks)
    return tracks
