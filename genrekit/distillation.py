"""Knowledge distillation: a student model learns a teacher model's window probabilities as well as the labels.

Each training clip gets `views` randomly cut (with augmentation, also augmented) windows, made once: the
teacher scores every window and the student's representation of it is kept, both in the embedding store,
so later runs pay for neither again. A window's target is `teacher_weight` times the teacher's
probabilities plus the rest on the clip's label (Hinton et al., 2015, at temperature 1: the teacher's own
calibrated probabilities). The student stays a from-scratch network; only its training targets change.
"""

import numpy as np
import torch

from .augment import Augmentation
from .cache import EmbeddingStore
from .checkpoints import load_scorer
from .digest import file_digest
from .exceptions import ParameterError
from .features import extractor


class Teacher:
    """A model file whose combined probabilities for waveform windows are the student's soft targets."""

    def __init__(self, path):
        self.path, self.scorer = str(path), load_scorer(path)
        if self.scorer.gated:
            raise ParameterError(f"{path}: a gated ensemble cannot teach (its gate needs whole blocks)")
        self.key = f"teacher-{file_digest(path)[:16]}"

    def check(self, labels, window_seconds, params):
        """Refuse a student whose labels, window or features differ from the teacher's."""
        scorer = self.scorer
        if list(labels) != scorer.labels or window_seconds != scorer.window_seconds or params != scorer.params:
            raise ParameterError(f"{self.path}: the teacher has labels {scorer.labels}, {scorer.window_seconds:g} s "
                                 f"windows and {scorer.params}; the student must have the same")

    def log_probs(self, waves):
        """Log-probabilities [shape=(n, n_labels)] of waveform windows (a torch batch)."""
        scorer = self.scorer
        windows = {"waveform": waves.numpy()}
        spectral = [rep for rep in scorer.member_representations if rep != "waveform"]
        if spectral:
            windows.update({rep: x.numpy() for rep, x in extractor(scorer.params)(waves, spectral).items()})
        probs = scorer.combine(scorer.member_log_probs(windows))
        return torch.from_numpy(np.log(np.maximum(probs, 1e-12)).astype(np.float32))


class DistilledClips:
    """Training clips as fixed views: the student's input for each view and the soft target it learns."""

    def __init__(self, inputs, teacher_log_probs, targets, n_labels, teacher_weight):
        self.inputs, self.teacher_log_probs = inputs, teacher_log_probs
        self.targets, self.n_labels, self.teacher_weight = np.asarray(targets), n_labels, teacher_weight

    def __len__(self):
        return len(self.inputs)

    def batch(self, indices, rng):
        """(inputs, target probabilities) of one random view of each clip in `indices`."""
        views = [int(rng.integers(len(self.inputs[i]))) for i in indices]
        x = np.stack([self.inputs[i][v] for i, v in zip(indices, views)]).astype(np.float32)
        teacher = np.exp(np.stack([self.teacher_log_probs[i][v] for i, v in zip(indices, views)]))
        masks = self.targets[indices].astype(np.float32)
        labels = masks / masks.sum(1, keepdims=True)  # a label set: its genres alike
        targets = self.teacher_weight * teacher + (1 - self.teacher_weight) * labels
        return torch.from_numpy(x), torch.from_numpy(targets.astype(np.float32))


def distilled_clips(clips, teacher, representation, window_seconds, *, augment, views, teacher_weight, seed,
                    cache_root, progress=True):
    """`DistilledClips` of waveform `clips`: `views` windows each (augmented with `augment`), scored by
    `teacher` and turned into the student's `representation`, both kept in embedding stores under `cache_root`."""
    augmentation = Augmentation() if augment else Augmentation(probability=0.0)
    params = clips.params
    features = extractor(params)

    def student_input(waves):
        return waves if representation == "waveform" else features(waves, (representation,))[representation]

    def made(embed, key):
        return clips.embedded_views(embed, window_seconds, augmentation, views, seed=seed,
                                    store=EmbeddingStore(cache_root, key), progress=progress).arrays

    inputs = made(student_input, f"views-{representation}-{params.digest()}")
    log_probs = made(teacher.log_probs, teacher.key)
    return DistilledClips(inputs, log_probs, clips.targets, len(teacher.scorer.labels), teacher_weight)
