"""Group-aware train/valid/test splitting: no group ever lands in two splits."""

import warnings

import numpy as np

from ..exceptions import DatasetError, ParameterError
from .track import SPLITS


def _take_fold(labels, groups, fraction, seed):
    """Indices of one stratified, group-disjoint fold holding about `fraction` of the items."""
    largest_class = max(np.unique(labels, return_counts=True)[1])
    n_splits = min(max(2, int(round(1.0 / fraction))), len(set(groups)), largest_class)
    if n_splits < 2:
        return np.array([], dtype=int)
    from sklearn.model_selection import StratifiedGroupKFold  # scikit-learn takes 1 s to import: only to split

    folds = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    with warnings.catch_warnings():  # small classes: stratified only as far as they allow
        warnings.filterwarnings("ignore", message="The least populated class", category=UserWarning)
        _, held_out = next(folds.split(np.zeros(len(labels)), labels, groups))
    return held_out


def split_by_group(tracks, *, valid=0.15, test=0.15, seed=0):
    """Give every track without a split one of train/valid/test, stratified by label, disjoint by group.

    Tracks that already carry a split keep it. Returns a new list in the same order.
    """
    if not (0 <= valid < 1 and 0 <= test < 1 and valid + test < 1):
        raise ParameterError(f"valid and test fractions must be in [0, 1) with sum < 1, got {valid}, {test}")
    todo = [i for i, track in enumerate(tracks) if track.split is None]
    given = {track.group for track in tracks if track.split is not None}
    clash = given & {tracks[i].group for i in todo}
    if clash:
        raise DatasetError(f"groups both with and without a given split: {sorted(clash)[:5]}")
    assigned = {i: "train" for i in todo}
    remaining = list(todo)
    for name, fraction in (("test", test), ("valid", valid / (1 - test) if test < 1 else 0)):
        if fraction <= 0 or len(remaining) < 2:
            continue
        labels = [tracks[i].label for i in remaining]
        groups = [tracks[i].group for i in remaining]
        held = set(_take_fold(labels, groups, fraction, seed).tolist())
        for position in held:
            assigned[remaining[position]] = name
        remaining = [index for position, index in enumerate(remaining) if position not in held]
    result = [track if i not in assigned else track.replace(split=assigned[i], split_drawn=True) for i, track in enumerate(tracks)]
    check_disjoint(result)
    return result


def check_disjoint(tracks):
    """Raise `DatasetError` if any group has tracks in more than one split."""
    seen = {}
    for track in tracks:
        if track.split is None:
            continue
        first = seen.setdefault(track.group, track.split)
        if first != track.split:
            raise DatasetError(f"group {track.group!r} is in both {first!r} and {track.split!r} (leakage)")


def select(tracks, split):
    """The tracks of one split."""
    if split not in SPLITS:
        raise ParameterError(f"split must be one of {SPLITS}, got {split!r}")
    return [track for track in tracks if track.split == split]
