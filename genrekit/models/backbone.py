"""Genre models on a registered pretrained network (`genrekit.models.pretrained`), frozen or partly adapted.

backbone-musicnn  registered model: a pretrained network reading musicnn's log-mel patches (`MusicnnFrontEnd`):
                  MSD_musicnn (`network="msd_musicnn"`, frozen or with its upper layers adapted: `fine_tune`)
                  or MSD_vgg (`network="msd_vgg"`, frozen), then dropout and a small MLP head or a linear one
                  (or several, averaged: `heads`, `average_heads`)
"""

import hashlib
import math

import torch
from torch import nn

from ..constants import SAMPLE_RATE
from ..exceptions import ParameterError
from .musicnn import HOP_LENGTH, LEVEL_DBFS, MAX_GAIN_DB, MUSICNN_SR, N_FFT, N_FRAMES, N_MELS, MusicnnFrontEnd
from .pretrained import pretrained_network
from .registry import create_model, register_model

FINE_TUNE = {"head": ("frontend.", "backbone."),
             "midend": ("frontend.", "backbone.input_norm.", "backbone.timbral.", "backbone.temporal."),
             "all": ("frontend.",)}
"""What stays frozen, by `fine_tune`: `head` trains only the MLP head on the penultimate embeddings;
`midend` also adapts the mid-end convolutions and the dense layer to the genres, on frozen front-end
features; `all` adapts the whole network on log-mel patches (only the fixed log-mel front end is frozen).
A head reads the penultimate embeddings or (`layers="all"`, with `head` or `all`) every pooled layer and
the tags."""


class HeadAverage(nn.Module):
    """Several heads on the same features: the log of their mean probabilities (as logits)."""

    def __init__(self, heads):
        super().__init__()
        self.heads = nn.ModuleList(heads)

    def forward(self, x):
        log_probs = torch.stack([head(x).log_softmax(-1) for head in self.heads])
        return torch.logsumexp(log_probs, 0) - math.log(len(self.heads))


class MusicnnClassifier(nn.Module):
    """Genre logits of 22050 Hz windows from a musicnn-family network (`network`): its frozen part (`embed`),
    its adapted part and a one-hidden-layer MLP head with dropout, or a linear one (`hidden=0`) (`trainable`;
    `heads` > 1: that many, their probabilities averaged, see `average_heads`). The network sees 3 s of each
    window (its patch): the first 3 s of longer windows, shorter ones repeated. Batch norms keep the network's
    statistics. With `level` (the default) every window is brought to one loudness first
    (`musicnn.normalize_level`): part of the model, so every path that runs it (predict, tag, the server, Ray,
    training, ONNX) does the same."""

    def __init__(self, n_classes, *, hidden=64, dropout=0.3, fine_tune="head", layers="penultimate", heads=1,
                 network="msd_musicnn", level=True):
        super().__init__()
        pretrained = pretrained_network(network)
        if fine_tune not in FINE_TUNE:
            raise ParameterError(f"fine_tune must be one of {', '.join(FINE_TUNE)}, got {fine_tune!r}")
        if not pretrained.adaptable and fine_tune != "head":
            raise ParameterError(f"{network} is frozen only: fine_tune must be head, got {fine_tune!r}")
        if layers not in ("penultimate", "all") or (layers == "all" and fine_tune == "midend"):
            raise ParameterError(f"layers must be penultimate or (with fine_tune 'head' or 'all') all, got {layers!r}")
        self.representation, self.n_classes, self.fine_tune, self.layers = "waveform", n_classes, fine_tune, layers
        self.network = network
        self.frozen_prefixes = FINE_TUNE[fine_tune]
        """State-dict entries loaded from the bundled network weights, which checkpoints leave out."""
        self.frontend = MusicnnFrontEnd(level=level)
        self.level = level
        self.backbone = pretrained.load().requires_grad_(False)
        for name, parameter in self.named_parameters():
            parameter.requires_grad_(not name.startswith(self.frozen_prefixes))
        if heads < 1 or (heads > 1 and fine_tune != "head"):
            raise ParameterError(f"heads must be 1, or more on a frozen network (fine_tune 'head'), got {heads}")
        width = self.backbone.layers_size if layers == "all" else self.backbone.output.in_features  # penultimate

        def head():
            if not hidden:  # linear: a probe (`genrekit.probe`)
                return nn.Sequential(nn.Dropout(dropout), nn.Linear(width, n_classes))
            return nn.Sequential(nn.Dropout(dropout), nn.Linear(width, hidden), nn.ReLU(),
                                 nn.Dropout(dropout), nn.Linear(hidden, n_classes))

        self.head = head() if heads == 1 else HeadAverage([head() for _ in range(heads)])

    def train(self, mode=True):
        """Only the head follows `mode`: musicnn stays in eval mode, so its batch norms never change."""
        super().train(mode)
        self.frontend.eval()
        self.backbone.eval()
        return self

    def embed(self, x):
        """The frozen part's output for windows (training computes it once per window and trains `trainable`
        on it): for `head`, penultimate embeddings [shape=(batch, 200)] or all layers (`layers="all"`,
        [shape=(batch, 1756)]); front-end features for `midend`; log-mel patches for `all`."""
        with torch.no_grad():
            patches = self.frontend(x)
            if self.fine_tune == "all":
                return patches
            if self.fine_tune == "midend":
                return self.backbone.front(patches)
            return self.features(patches)

    def features(self, patches):
        """What the head reads: penultimate embeddings, or all layers (`layers="all"`)."""
        return self.backbone.layers(patches) if self.layers == "all" else self.backbone.embed(patches)

    def trainable(self, frozen):
        """Genre logits from the frozen part's output."""
        if self.fine_tune == "all":
            return self.head(self.features(frozen))
        return self.head(frozen if self.fine_tune == "head" else self.backbone.back(frozen))

    def embedding_key(self):
        """A name for what `embed` computes: a digest of the frozen part's settings and weights (the key of
        its `EmbeddingStore`)."""
        digest = hashlib.sha1(f"musicnn {SAMPLE_RATE} {MUSICNN_SR} {N_FFT} {HOP_LENGTH} {N_MELS} {N_FRAMES}".encode())
        if self.network != "msd_musicnn":
            digest.update(self.network.encode())
        if self.fine_tune != "head":
            digest.update(self.fine_tune.encode())
        if self.layers != "penultimate":
            digest.update(self.layers.encode())
        if self.level:
            digest.update(f"level {LEVEL_DBFS} {MAX_GAIN_DB}".encode())
        for prefix, module in (("frontend.", self.frontend), ("backbone.", self.backbone)):
            for name, tensor in module.state_dict().items():
                if (prefix + name).startswith(self.frozen_prefixes):
                    digest.update(name.encode())
                    digest.update(tensor.detach().cpu().numpy().tobytes())
        return f"musicnn-{digest.hexdigest()[:16]}"

    def forward(self, x):
        return self.trainable(self.embed(x))


@register_model("backbone-musicnn")
def backbone_musicnn(n_classes, **kwargs):
    return MusicnnClassifier(n_classes, **kwargs)


def average_heads(models):
    """One model averaging the probabilities of the heads of `models`, `backbone-musicnn` models that differ
    only in their heads (e.g. training seeds): one pass of musicnn instead of one per model."""
    configs = [{**model.config, "heads": model.config.get("heads", 1)} for model in models]
    if any(model.name != "backbone-musicnn" for model in models) or any(c != configs[0] for c in configs) \
            or configs[0]["heads"] != 1 or len({model.n_classes for model in models}) != 1:
        raise ParameterError("average_heads takes backbone-musicnn models of one configuration with one head each")
    averaged = create_model("backbone-musicnn", models[0].n_classes, **{**configs[0], "heads": len(models)})
    for target, model in zip(averaged.head.heads, models):
        target.load_state_dict(model.head.state_dict())
    return averaged.eval()
