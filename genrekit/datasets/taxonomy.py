"""Merging datasets under one label set, described by a small YAML taxonomy."""

import logging
from collections import Counter
from pathlib import Path

import yaml

from ..exceptions import DatasetError
from .gtzan import unify_track_groups
from .splits import check_disjoint
from .track import SET_SEPARATOR

DEFAULT_TAXONOMY = Path(__file__).resolve().parent.parent / "taxonomy.yaml"

log = logging.getLogger(__name__)


def load_taxonomy(path=DEFAULT_TAXONOMY):
    """Source label (lower case) -> merged label, from YAML `merged: [source, ...]`."""
    try:
        spec = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as error:
        raise DatasetError(f"{path}: cannot read taxonomy ({error})") from None
    if not isinstance(spec, dict) or not all(isinstance(v, list) for v in spec.values()):
        raise DatasetError(f"{path}: taxonomy must map each merged label to a list of source labels")
    mapping = {}
    for merged, sources in spec.items():
        for source in [merged, *sources]:
            previous = mapping.setdefault(str(source).lower(), str(merged))
            if previous != merged:
                raise DatasetError(f"{path}: {source!r} maps to both {previous!r} and {merged!r}")
    return mapping


def merge(*datasets, taxonomy=DEFAULT_TAXONOMY):
    """One list of tracks with labels mapped through the taxonomy; unmapped labels are dropped and logged (a
    label set keeps its members that map, and is dropped when none does).

    Groups stay those of their source (they already carry its name; files of one GTZAN track join one
    group), and the result is checked for groups in two splits.
    """
    mapping = load_taxonomy(taxonomy) if not isinstance(taxonomy, dict) else taxonomy
    merged, dropped = [], Counter()
    for tracks in datasets:
        for track in tracks:
            genres = sorted({mapping[genre.lower()] for genre in track.label_set if genre.lower() in mapping})
            if not genres:
                dropped[f"{track.source}:{track.label or '(no genre)'}"] += 1
            else:
                merged.append(track.replace(label=SET_SEPARATOR.join(genres)))
    for name, count in sorted(dropped.items()):
        log.warning("dropped %d track(s) labelled %s: not in the taxonomy", count, name)
    merged = unify_track_groups(merged)
    check_disjoint(merged)
    return merged
