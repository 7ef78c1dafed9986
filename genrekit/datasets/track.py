"""The one record every dataset loader returns."""

import csv
import io
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ..exceptions import DatasetError

SPLITS = ("train", "valid", "test")


SET_SEPARATOR = "|"
"""Joins the genres of a label set: a clip labelled `metal|pop|rock` is rightly called any of the three."""


@dataclass(frozen=True)
class Track:
    """A labelled piece of audio: a whole file, or the span [start, end) seconds of it.

    `label` is one genre or a set of them joined by `|` (`label_set`); `group` ties together everything
    that must stay in one split (all snippets of a song, all songs of an artist where known); `source`
    names the dataset it came from.
    """

    path: str
    label: str
    group: str
    source: str
    split: str | None = None
    start: float | None = None
    end: float | None = None
    split_drawn: bool = False
    """the split was drawn at random (`split_by_group`), not given by the dataset"""

    @property
    def key(self):
        """A name unique to this piece of audio (path plus span)."""
        return self.path if self.start is None else f"{self.path}@{self.start:g}-{self.end:g}"

    @property
    def duration(self):
        """Length of the span in seconds, or None for a whole file."""
        return None if self.start is None else self.end - self.start

    @property
    def label_set(self):
        """The genres the clip may rightly be called (one for most datasets)."""
        return tuple(self.label.split(SET_SEPARATOR)) if self.label else ()

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
    """'Balanced' class weights (n_samples / (n_classes * count)) in the order of `labels`; a clip with a label
    set counts 1/size towards each of its genres."""
    labels = labels_of(tracks) if labels is None else list(labels)
    counts = label_masks(tracks, labels).astype(np.float64)
    counts = (counts / np.maximum(counts.sum(1, keepdims=True), 1)).sum(0)
    present = counts > 0
    weights = np.zeros(len(labels))
    weights[present] = len(tracks) / (present.sum() * counts[present])
    return weights.astype(np.float32)


def label_masks(tracks, labels):
    """Which of `labels` each track may rightly be called [shape=(n_tracks, n_labels)], bool; a genre not in
    `labels` is a DatasetError."""
    index = {label: i for i, label in enumerate(labels)}
    unknown = {genre for track in tracks for genre in track.label_set} - set(index)
    if unknown:
        raise DatasetError(f"labels {sorted(unknown)} are not in the model's label set {list(labels)}")
    masks = np.zeros((len(tracks), len(labels)), dtype=bool)
    for row, track in enumerate(tracks):
        masks[row, [index[genre] for genre in track.label_set]] = True
    return masks


def label_targets(tracks, labels):
    """The right answers of `tracks`: label indices [shape=(n,)] when every track has one genre, else
    `label_masks` [shape=(n, n_labels)] (what `genrekit.evaluation` and the combiners score against)."""
    masks = label_masks(tracks, labels)
    return masks.argmax(1) if (masks.sum(1) == 1).all() else masks


def restrict_labels(tracks, labels):
    """The tracks with their label sets cut to `labels` (a set keeps the genres among them), the clips left
    without any dropped."""
    kept = [track.replace(label=SET_SEPARATOR.join(g for g in track.label_set if g in labels)) for track in tracks]
    return [track for track in kept if track.label]


def labels_of(tracks):
    """The sorted genres of some tracks (members of label sets included)."""
    return sorted({genre for track in tracks for genre in track.label_set})


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
