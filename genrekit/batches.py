"""What training reads, whatever the data are: one batch interface (`TrainingData`) over audio windows (augmented
or not), a frozen network's outputs (computed once per window and cached, or read from `embed`'s shards) and a
teacher's targets (distillation)."""

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from .augment import Augmentation
from .cache import EmbeddingStore
from .clips import ClipSet
from .distillation import distilled_clips
from .embedding import embedded_clips
from .exceptions import ParameterError
from .scoring import window_length


class TrainablePart(torch.nn.Module):
    """The part of a model with a frozen `embed` that trains (`trainable`), applied to what `embed` gave."""

    def __init__(self, model):
        super().__init__()
        self.model, self.n_classes = model, model.n_classes

    def forward(self, frozen):
        return self.model.trainable(frozen)


@dataclass
class TrainingData:
    """The clips an epoch draws from (`train`: their `targets`, label masks or soft targets) and the held-out
    ones (`valid`), the network that trains on them (`net`: the model, or the part after its frozen part), and
    `batch(indices, rng) -> (inputs, targets)` of training clips."""

    train: object
    valid: object
    net: torch.nn.Module
    batch: Callable


def training_data(config, model, train_tracks, valid_tracks, labels, cache, params, *, teacher=None, features=None,
                  workers=None, progress=True):
    """The `TrainingData` of `model` (fresh, `config`'s) on the tracks: from a `teacher`'s targets, from window
    `features` `genrekit.embedding.embed_corpus` wrote, or from the audio (a frozen part's outputs computed once;
    with `config.augment`, augmented windows)."""
    representation = model.representation
    # augmented windows are cut from the waveform and turned into the model's representation afterwards
    train_representation = "waveform" if config.augment else representation
    seconds = config.window_seconds
    frozen = getattr(model, "frozen_prefixes", None)
    if teacher is not None and (frozen or features is not None):
        raise ParameterError("a teacher trains a model from scratch: no frozen part, no window features")
    if teacher is not None:
        teacher.check(labels, seconds, params)
        waveforms = ClipSet.from_tracks(train_tracks, "waveform", labels, cache, window_seconds=seconds,
                                        workers=workers, progress=progress)
        train_clips = distilled_clips(waveforms, teacher, representation, seconds, augment=config.augment,
                                      views=config.views, teacher_weight=config.teacher_weight, seed=config.seed,
                                      cache_root=cache.root, progress=progress)
        valid_clips = ClipSet.from_tracks(valid_tracks, representation, labels, cache, window_seconds=seconds,
                                          workers=workers, progress=progress)
    elif features is not None:
        if not frozen or config.augment:
            raise ParameterError("window features train only the part after a frozen one, without augment")
        train_clips, valid_clips = (embedded_clips(features, tracks, labels, model, seconds, params)
                                    for tracks in (train_tracks, valid_tracks))
    else:
        train_clips = ClipSet.from_tracks(train_tracks, train_representation, labels, cache, window_seconds=seconds,
                                          workers=workers, progress=progress)
        valid_clips = ClipSet.from_tracks(valid_tracks, representation, labels, cache, window_seconds=seconds,
                                          workers=workers, progress=progress)
        if frozen:  # a frozen part: computed once per window, then only the rest trains
            store = EmbeddingStore(cache.root, model.embedding_key())
            valid_clips = valid_clips.embedded(model.embed, seconds, store=store, progress=progress)
            train_clips = (train_clips.embedded_views(model.embed, seconds, Augmentation(), config.views,
                                                      seed=config.seed, store=store, progress=progress)
                           if config.augment else train_clips.embedded(model.embed, seconds, store=store,
                                                                       progress=progress))
    length = window_length(representation, seconds, params)
    net = model

    def labelled(x, indices):
        return x, torch.from_numpy(train_clips.targets[indices])

    if teacher is not None:
        make_batch = train_clips.batch
    elif frozen:  # train only what follows the frozen part, on its outputs
        net = TrainablePart(model)

        def make_batch(indices, rng):
            return labelled(torch.from_numpy(np.stack([train_clips.random_window(i, rng) for i in indices])), indices)
    elif config.augment:
        samples = window_length("waveform", config.window_seconds, params)
        augmentation = Augmentation()

        def make_batch(indices, rng):
            return labelled(augmentation.batch(train_clips, indices, samples, representation, params, rng), indices)
    else:
        def make_batch(indices, rng):
            return labelled(torch.from_numpy(np.stack([train_clips.random_window(i, length, rng) for i in indices])),
                            indices)
    return TrainingData(train_clips, valid_clips, net, make_batch)
