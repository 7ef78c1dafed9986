"""How an ensemble mixes its members' probabilities; fitted on validation clips only (never on test).

Combiners follow scikit-learn's habits: `fit(probs, y, stats)` learns (state ends in `_`) and returns
self, `predict_proba(probs, stats)` combines. `probs` are the members' clip probabilities
[shape=(n_members, n_clips, n_classes)]; `stats` are per-clip input statistics, used by the gate only.

equal     plain average of member probabilities
weighted  average with weights on the simplex that minimise validation log-loss
stacking  logistic regression over the members' log-probabilities, its strength chosen by cross-validation
gating    a small network that looks at the clip (pooled log-mel and chroma statistics) and weights the
          members per clip: a mixture of experts over frozen members, the paper's "selective activation"
          across the ensemble

The last two are learned models of their own (scikit-learn, torch) and live in `genrekit.stacking`, loaded
only when an ensemble uses them.
"""

import numpy as np

from .constants import EPS
from .exceptions import ParameterError


def softmax(x, axis=-1):
    return np.exp(x - np.logaddexp.reduce(x, axis=axis, keepdims=True))


def right_mass(probs, y):
    """The probability each clip gives its right answers [shape=(n_clips,)]: `y` are label indices
    [shape=(n_clips,)] or label sets as masks [shape=(n_clips, n_classes)] (`genrekit.datasets.label_targets`)."""
    y = np.asarray(y)
    return (probs * y).sum(1) if y.ndim == 2 else probs[np.arange(len(y)), y]


def is_right(predicted, y):
    """Whether each predicted class index is one of the clip's right answers (`y` as in `right_mass`)."""
    y = np.asarray(y)
    return y[np.arange(len(y)), predicted] if y.ndim == 2 else predicted == y


def _nll(probs, y):
    return float(-np.mean(np.log(right_mass(probs, y) + EPS)))


class EqualAverage:
    """The plain mean of member probabilities."""

    def fit(self, probs, y, stats=None):
        self.weights_ = np.full(len(probs), 1.0 / len(probs))
        return self

    def predict_proba(self, probs, stats=None):
        return np.tensordot(self.weights_, probs, axes=1)

    def get_state(self):
        return {"weights": self.weights_.tolist()}

    def set_state(self, state):
        self.weights_ = np.asarray(state["weights"])
        return self


class WeightedAverage(EqualAverage):
    """A weighted mean of member probabilities; weights (softmax-parametrised) minimise the log-loss."""

    def fit(self, probs, y, stats=None):
        from scipy.optimize import minimize  # only fitting needs scipy

        def loss(theta):
            return _nll(np.tensordot(softmax(theta), probs, axes=1), y)

        result = minimize(loss, np.zeros(len(probs)), method="L-BFGS-B")
        self.weights_ = softmax(result.x)
        return self


def temper(probs, temperature):
    """Probabilities [shape=(..., n_classes)] with their log-odds divided by `temperature`, renormalised."""
    if temperature == 1.0:
        return probs
    return softmax(np.log(probs + EPS) / temperature, axis=-1)


def fit_temperature(probs, y):
    """The temperature (temperature scaling, Guo et al. 2017) that minimises the log-loss of combined clip
    probabilities [shape=(n_clips, n_classes)] on labels `y` (validation clips; indices or label-set masks)."""
    from scipy.optimize import minimize_scalar  # only fitting needs scipy

    log_odds = np.log(np.asarray(probs, np.float64) + EPS)

    def log_loss(log_t):  # smooth in the temperature (`temper` takes a shortcut at exactly 1)
        return _nll(softmax(log_odds / np.exp(log_t)), y)

    return float(np.exp(minimize_scalar(log_loss, bounds=(-3.0, 3.0), method="bounded").x))


COMBINER_KINDS = ("equal", "weighted", "stacking", "gating")


def make_combiner(kind, seed=0):
    """A fresh combiner by name (see `COMBINER_KINDS`)."""
    if kind not in COMBINER_KINDS:
        raise ParameterError(f"unknown ensemble kind {kind!r}; known: {', '.join(COMBINER_KINDS)}")
    if kind in ("equal", "weighted"):
        return EqualAverage() if kind == "equal" else WeightedAverage()
    from .stacking import GatedEnsemble, Stacking  # scikit-learn and torch, loaded only for these two

    return Stacking(seed=seed) if kind == "stacking" else GatedEnsemble(seed=seed)


GATE_REPRESENTATIONS = ("logmel", "chroma")
GATE_BANDS = 32


def gate_frames(features):
    """Frames the gate looks at: log-mel pooled to 32 bands over 12 chroma bins. [shape=(44, frames)]"""
    logmel = features["logmel"]
    return np.concatenate([logmel.reshape(GATE_BANDS, -1, logmel.shape[-1]).mean(1), features["chroma"]])


def gate_statistics_of_frames(frames):
    """Mean and deviation over time of `gate_frames`. [shape=(88,)]"""
    return np.concatenate([frames.mean(1), frames.std(1)]).astype(np.float32)
