"""Ensembles of trained models, fitted on validation clips only (never on test).

The members' clip probabilities come from `genrekit.evaluation` (the path `predict` takes), and a
combiner from `genrekit.combiners` mixes them; `Ensemble.save` writes one file with the members embedded,
which predicts like a single model.
"""

import numpy as np

from .checkpoints import members_scorer, save_ensemble
from .combiners import EPS, EqualAverage, make_combiner
from .evaluation import member_clip_log_probs
from .exceptions import ParameterError


class Ensemble:
    """Members (`genrekit.checkpoints.Member`) and a combiner of kind `kind` (see `genrekit.combiners`)."""

    def __init__(self, members, kind="weighted", seed=0):
        self.members, self.kind = list(members), kind
        self.combiner = make_combiner(kind, seed)
        self.labels = members_scorer(self.members).labels

    @property
    def scorer(self):
        """The ensemble as a `genrekit.scoring.Scorer` (torch)."""
        return members_scorer(self.members, self.kind, self.combiner)

    def member_probs(self, tracks, *, progress=True):
        """(member probabilities [shape=(n_members, n_clips, n_classes)], label indices, gate statistics or
        None) of the tracks that load."""
        log_probs, targets, stats, _ = member_clip_log_probs(members_scorer(self.members, self.kind, self.combiner),
                                                              tracks, progress=progress)
        return np.exp(log_probs), targets, stats

    def fit(self, valid_tracks, *, progress=True):
        """Fit the combiner on validation tracks (the members stay as they are)."""
        if any(track.split not in (None, "valid") for track in valid_tracks):
            raise ParameterError("ensembles are fitted on validation tracks only")
        probs, targets, stats = self.member_probs(valid_tracks, progress=progress)
        self.combiner.fit(probs, targets, stats)
        return self

    def prune(self, min_weight=1e-3):
        """Drop the members an averaging ensemble gives (almost) no weight, renormalising the rest."""
        if not isinstance(self.combiner, EqualAverage):
            raise ParameterError(f"only averaging ensembles can be pruned, not {self.kind!r}")
        keep = self.combiner.weights_ >= min_weight
        self.members = [member for member, kept in zip(self.members, keep) if kept]
        self.combiner.weights_ = self.combiner.weights_[keep] / self.combiner.weights_[keep].sum()
        return self

    def clip_log_probs(self, tracks, *, progress=True):
        """(combined log-probabilities [shape=(n_clips, n_classes)], label indices)."""
        probs, targets, stats = self.member_probs(tracks, progress=progress)
        return np.log(self.combiner.predict_proba(probs, stats) + EPS), targets

    def save(self, path):
        return save_ensemble(path, self.members, self.kind, self.combiner)
