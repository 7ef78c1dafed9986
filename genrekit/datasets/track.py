"""The one record every dataset loader returns."""

import csv
import io
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ..exceptions import DatasetError

SPLITS = ("train", "valid", "test")


@dataclass(frozen=True)
class Track:
    """A labelled piece of audio: a whole file, or the span [start, end) seconds of it.

    `group` ties together everything that must stay in one split (all snippets of a song, all songs of
    an artist where known); `source` names the dataset it came from.
    """

    path: str
    label: str
    group: str
    source: str
    split: str | None = None
    start: float | None = None
    end: float | None = None

    @property
    def key(self):
        """A name unique to this piece of audio (path plus span)."""
        return self.path if self.start is None else f"{self.path}@{self.start:g}-{self.end:g}"

    @property
    def duration(self):
        """Length of the span in seconds, or None for a whole file."""
        return None if self.start is None else self.end - self.start

    def replace(self, **changes):
        return replace(self, **changes)


def snippets(track, total_seconds, *, length=30.0, hop=None, min_length=None):
    """Cut a track of `total_seconds` into spans of `length` s every `hop` s (all in the track's group).

    A last, shorter span is kept when it is at least `min_length` (default: half of `length`) long.
    """
    hop = length if hop is None else hop
    min_length = length / 2 if min_length is None else min_length
    base = track.start or 0.0
    spans = []
    for offset in np.arange(0.0, max(total_seconds, 0.0), hop):
        end = min(offset + length, total_seconds)
        if end - offset >= min_length or (not spans and end > offset):
            spans.append(track.replace(start=round(base + float(offset), 3), end=round(base + float(end), 3)))
        if end >= total_seconds:
            break
    return spans


def class_counts(tracks):
    """Number of tracks per label, most common first."""
    return Counter(track.label for track in tracks).most_common()


def class_weights(tracks, labels=None):
    """'Balanced' class weights (n_samples / (n_classes * count)) in the order of `labels`."""
    from sklearn.utils.class_weight import compute_class_weight

    y = np.array([track.label for track in tracks])
    labels = sorted(set(y)) if labels is None else list(labels)
    present = [label for label in labels if label in set(y)]
    weights = dict(zip(present, compute_class_weight("balanced", classes=np.array(present), y=y)))
    return np.array([weights.get(label, 0.0) for label in labels], dtype=np.float32)


def labels_of(tracks):
    """The sorted label set of some tracks."""
    return sorted({track.label for track in tracks})


def csv_reader(table):
    """A `csv.DictReader` over a UTF-8 CSV file (a byte-order mark allowed); `DatasetError` for other text."""
    data = Path(table).read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[:error.start].count(b"\n") + 1
        raise DatasetError(f"{table}:{line}: not UTF-8 text (save the table as UTF-8)") from None
    return csv.DictReader(io.StringIO(text, newline=""))


def read_track_table(table, required):
    """Rows of a CSV table of tracks as (line number, row, split or None), after checking that it has the
    `required` columns and that every split is one of SPLITS."""
    reader = csv_reader(table)
    missing = set(required) - set(reader.fieldnames or [])
    if missing:
        raise DatasetError(f"{table}: missing column(s) {sorted(missing)}")
    for line, row in enumerate(reader, start=2):
        split = (row.get("split") or "").strip() or None
        if split is not None and split not in SPLITS:
            raise DatasetError(f"{table}:{line}: split {split!r} is not one of {SPLITS}")
        yield line, row, split
