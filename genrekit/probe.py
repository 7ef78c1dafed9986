"""A linear genre head fitted on whole clips: a probe of a frozen network's window features, with label sets.

A clip is the mean of its windows' features (standardised per feature over the training windows), and a
multinomial logistic regression with an L2 penalty learns from those means by the set loss (minus the log
of the probability on the clip's label set; `genrekit.training.set_loss`), every clip weighted by its
genres' balanced class weights. Augmented views of a clip (speed, pitch, noise, gain) give it a second mean.

Because the head is linear, scoring a clip as `genrekit.scoring` does (the mean of its windows'
log-probabilities, renormalised) gives exactly the probabilities the regression fitted on the clip's mean:
the mean of the windows' logits is the logits of the mean. So the fitted weights, with the standardisation
folded in, become the linear head of a `backbone-musicnn` model (`hidden=0`) that predicts window by window.
"""

import numpy as np
import torch

from .training import set_loss


def clip_means(embedded):
    """Each clip's mean window features [shape=(n_clips, n_features)] of `EmbeddedClips`."""
    return np.stack([np.asarray(clip, np.float64).mean(0) for clip in embedded.arrays])


def standardisation(embedded):
    """(mean, deviation) of every feature over all windows of `EmbeddedClips`."""
    windows = np.concatenate([np.asarray(clip, np.float64) for clip in embedded.arrays])
    return windows.mean(0), windows.std(0) + 1e-3


def fit_probe(features, masks, class_weights, l2, max_iter=500):
    """(weights [shape=(n_features, n_labels)], biases) of a logistic regression on standardised `features` by
    the set loss on `masks` (label sets), weighted by `class_weights`, plus `l2` times the squared weights."""
    x = torch.as_tensor(features, dtype=torch.float64)
    masks = torch.as_tensor(masks, dtype=torch.float64)
    weights = torch.as_tensor(class_weights, dtype=torch.float64)
    w = torch.zeros(x.shape[1], masks.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros(masks.shape[1], dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([w, b], max_iter=max_iter, line_search_fn="strong_wolfe", tolerance_grad=1e-7)

    def closure():
        optimizer.zero_grad()
        loss = set_loss(x @ w + b, masks, weights) + l2 * w.square().sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return w.detach().numpy(), b.detach().numpy()


def fold_standardisation(w, b, mean, std):
    """The (weight [shape=(n_labels, n_features)], bias) of a `torch.nn.Linear` on raw features that gives what
    (`w`, `b`) give on features standardised by (`mean`, `std`)."""
    scaled = w / std[:, None]
    return scaled.T, b - mean @ scaled


def set_linear_head(model, w, b, mean, std):
    """Put a probe (fitted on standardised features) into the linear head of `model` (`hidden=0`)."""
    weight, bias = fold_standardisation(w, b, mean, std)
    linear = model.head[-1]
    with torch.no_grad():
        linear.weight.copy_(torch.as_tensor(weight, dtype=linear.weight.dtype))
        linear.bias.copy_(torch.as_tensor(bias, dtype=linear.bias.dtype))
    return model
