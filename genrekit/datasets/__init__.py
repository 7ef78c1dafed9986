"""Labelled datasets as lists of `Track`s with leak-free splits."""

from pathlib import Path

from ..exceptions import DatasetError
from .ccmusic import load_ccmusic
from .folder import audio_files, load_folder, load_manifest, write_manifest
from .gtzan import is_listed, load_gtzan
from .realextra import is_real_extra, load_real_extra
from .splits import check_disjoint, select, split_by_group
from .taxonomy import load_taxonomy, merge
from .track import (SPLITS, Track, class_counts, class_weights, label_masks, label_targets, labels_of,
                    restrict_labels, snippets)

KINDS = ("gtzan", "real-extra", "folder", "csv", "ccmusic")


def detect_kind(path):
    """Guess a dataset's kind from what is on disk."""
    path = Path(path)
    if path.is_file() and path.suffix.lower() == ".csv":
        return "csv"
    if (path / "manifest.csv").is_file():
        return "csv"
    if is_real_extra(path):
        return "real-extra"
    if any((path / name).is_dir() for name in ("genres", "genres_original")) or any(path.glob("*/blues.000??.*")) \
            or is_listed(path):
        return "gtzan"
    if path.suffix.lower() == ".parquet" or (path.is_dir() and any(path.rglob("*.parquet"))):
        return "ccmusic"
    return "folder"


def load_dataset(spec, *, seed=0):
    """Tracks of one dataset given as `PATH` or `KIND:PATH` (kinds: gtzan, real-extra, folder, csv, ccmusic)."""
    kind, _, rest = str(spec).partition(":")
    if rest and kind not in KINDS and kind.replace("-", "_").isidentifier() and not Path(spec).exists():
        raise DatasetError(f"{spec}: unknown kind {kind!r} (known: {', '.join(KINDS)})")
    if not rest or kind not in KINDS:
        kind, rest = None, str(spec)
    path = Path(rest).expanduser()
    if not path.exists():
        raise DatasetError(f"{path}: dataset not found")
    kind = kind or detect_kind(path)
    if kind == "gtzan":
        return load_gtzan(path, seed=seed)
    if kind == "real-extra":
        return load_real_extra(path)
    if kind == "ccmusic":
        return load_ccmusic(path, seed=seed)
    if kind == "csv":
        return load_manifest(path / "manifest.csv" if path.is_dir() else path, seed=seed)
    return load_folder(path, seed=seed)
