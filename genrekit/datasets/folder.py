"""Generic datasets: a folder of `<genre>/<files>`, or a CSV manifest `path,label[,group,split,start,end]`."""

import csv
import errno
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path

from ..atomic import atomic_path
from ..constants import AUDIO_EXTENSIONS
from ..exceptions import DatasetError
from .splits import check_disjoint, split_by_group
from .track import Track, read_track_table


PARTIAL_COPY = re.compile(r"\..+\.[a-z0-9_]{8}\.tagging\.[^.]+")
"""Names of the copies `genrekit.library.write_genre_tag` tags before they replace the original
(`.NAME.xxxxxxxx.tagging.EXT`); one still there was left by a killed run."""


@dataclass
class FolderScan:
    """What is under a folder: its audio files and what could not be looked at."""

    files: list = field(default_factory=list)
    """audio files (regular files, or links to them, with an audio extension), sorted"""
    partial_copies: list = field(default_factory=list)
    """leftover tagging copies (`PARTIAL_COPY`), never counted as audio files"""
    skipped: list = field(default_factory=list)
    """(path, reason) of dangling links, symlink loops and unreadable folders, sorted"""


def scan_folder(root):
    """Walk `root` recursively (links to folders are not followed) and sort what is there (`FolderScan`)."""
    scan = FolderScan()
    for folder, _, names in os.walk(root, onerror=lambda error: scan.skipped.append(
            (Path(error.filename), f"unreadable folder ({error.strerror})"))):
        for name in names:
            path = Path(folder, name)
            if PARTIAL_COPY.fullmatch(name):
                scan.partial_copies.append(path)
                continue
            try:
                mode = os.stat(path).st_mode
            except OSError as error:
                reason = ("symlink loop" if error.errno == errno.ELOOP else
                          "dangling symlink" if os.path.islink(path) else f"cannot read ({error.strerror})")
                scan.skipped.append((path, reason))
                continue
            if stat.S_ISREG(mode) and path.suffix.lower() in AUDIO_EXTENSIONS:
                scan.files.append(path)
    scan.files.sort()
    scan.skipped.sort()
    return scan


def audio_files(root):
    """Every audio file under `root` (recursively), sorted; see `scan_folder`."""
    return scan_folder(root).files


def load_folder(root, *, seed=0):
    """One track per audio file under `root/<label>/`, each its own group, split by `split_by_group`."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: folder not found")
    tracks = [Track(path=str(path), label=path.relative_to(root).parts[0],
                    group=f"{root.name}:{path.relative_to(root).with_suffix('')}", source=f"folder:{root.name}")
              for path in audio_files(root) if len(path.relative_to(root).parts) > 1]
    if not tracks:
        raise DatasetError(f"{root}: no audio files in <label>/ sub-folders")
    return split_by_group(tracks, seed=seed)


def _optional_float(row, name, manifest, line):
    value = (row.get(name) or "").strip()
    try:
        return float(value) if value else None
    except ValueError:
        raise DatasetError(f"{manifest}:{line}: {name} {value!r} is not a number") from None


def load_manifest(manifest, *, seed=0):
    """Tracks from a CSV with columns path,label and optionally group,split,start,end.

    Relative paths are read from the manifest's folder. A missing group makes each file its own group;
    tracks without a split are given one by `split_by_group`.
    """
    manifest = Path(manifest)
    if not manifest.is_file():
        raise DatasetError(f"{manifest}: manifest not found")
    tracks = []
    for line, row, split in read_track_table(manifest, ("path", "label")):
        path = Path(row["path"])
        path = path if path.is_absolute() else manifest.parent / path
        tracks.append(Track(path=str(path), label=row["label"].strip(),
                            group=(row.get("group") or "").strip() or f"{manifest.stem}:{row['path']}",
                            source=(row.get("source") or "").strip() or f"csv:{manifest.stem}", split=split,
                            start=_optional_float(row, "start", manifest, line),
                            end=_optional_float(row, "end", manifest, line)))
    if not tracks:
        raise DatasetError(f"{manifest}: no rows")
    check_disjoint(tracks)
    return split_by_group(tracks, seed=seed)


def write_manifest(tracks, manifest):
    """Write tracks to a CSV manifest (paths relative to its folder where possible), atomically."""
    manifest = Path(manifest)
    with atomic_path(manifest) as temp, open(temp, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "label", "group", "split", "source", "start", "end"])
        for t in tracks:
            path = Path(t.path)
            try:
                path = path.relative_to(manifest.parent)
            except ValueError:
                pass
            writer.writerow([path, t.label, t.group, t.split or "", t.source,
                             "" if t.start is None else t.start, "" if t.end is None else t.end])
