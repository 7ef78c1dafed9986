"""Ensembles of trained models, fitted on validation clips only (never on test).

The members' clip probabilities come from `genrekit.evaluation` (the path `predict` takes), and a
combiner from `genrekit.combiners` mixes them; `Ensemble.save` writes one file with the members embedded,
which predicts like a single model.
"""

import numpy as np

from .checkpoints import TrainedModel, members_scorer
from .combiners import EqualAverage, fit_temperature, make_combiner
from .digest import clip_ids
from .evaluation import member_clip_log_probs
from .exceptions import ParameterError


class Ensemble(TrainedModel):
    """A `TrainedModel` of members (`genrekit.checkpoints.Member`) and a combiner of kind `kind` (see
    `genrekit.combiners`) that is fitted here, on validation clips."""

    def __init__(self, members, kind="weighted", seed=0):
        members = list(members)
        members_scorer(members)  # the members must share labels, feature parameters and window length
        super().__init__(members, kind, make_combiner(kind, seed))

    def member_probs(self, tracks, *, progress=True):
        """(member probabilities [shape=(n_members, n_clips, n_classes)], label indices, gate statistics or
        None) of the tracks that load."""
        log_probs, targets, stats, _ = member_clip_log_probs(self.scorer, tracks, progress=progress)
        return np.exp(log_probs), targets, stats

    def fit(self, valid_tracks, *, calibrate=False, progress=True):
        """Fit the combiner on validation tracks (the members stay as they are), and with `calibrate` the
        temperature of the combined probabilities."""
        if any(track.split not in (None, "valid") for track in valid_tracks):
            raise ParameterError("ensembles are fitted on validation tracks only")
        probs, targets, stats = self.member_probs(valid_tracks, progress=progress)
        self.fit_member_probs(probs, targets, stats, calibrate=calibrate)
        self.tuned_on = clip_ids(valid_tracks)
        return self

    def fit_member_probs(self, probs, targets, stats=None, *, calibrate=False):
        """`fit` on member clip probabilities already computed (`member_probs` of validation tracks)."""
        self.combiner.fit(probs, targets, stats)
        self.temperature = fit_temperature(self.combiner.predict_proba(probs, stats), targets) if calibrate else 1.0
        return self

    def prune(self, min_weight=1e-3):
        """Drop the members an averaging ensemble gives (almost) no weight, renormalising the rest."""
        if not isinstance(self.combiner, EqualAverage):
            raise ParameterError(f"only averaging ensembles can be pruned, not {self.kind!r}")
        keep = self.combiner.weights_ >= min_weight
        self.members = [member for member, kept in zip(self.members, keep) if kept]
        self.combiner.weights_ = self.combiner.weights_[keep] / self.combiner.weights_[keep].sum()
        return self
