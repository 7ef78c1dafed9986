"""musicnn's vgg (Pons & Serra, 2019), the MSD_vgg tagger ported to PyTorch: a second frozen backbone for genres.

Vgg   musicnn's log-mel patches [shape=(batch, 187, 96)] -> five 3x3 convolution blocks of 128 filters, each
      max-pooled -> 50 MSD tag probabilities; `layers` gives every block's pooled features beside the tags

It reads the same patches as MSD_musicnn (`musicnn.MusicnnFrontEnd`). The weights (`weights/musicnn/msd_vgg.pt`)
are converted from the TensorFlow checkpoint in the `musicnn` 0.1.0 package (ISC licence, `LICENSE.txt` beside
them) by `scripts/convert_musicnn.py --model MSD_vgg`, which checks the port against TensorFlow.
"""

from pathlib import Path

import torch
from torch import nn

from ..exceptions import GenrekitError
from .musicnn import BN_EPS, N_FRAMES, N_MELS, conv_block
from .pretrained import register_network

VGG_WEIGHTS = Path(__file__).resolve().parents[1] / "weights" / "musicnn" / "msd_vgg.pt"
POOLS = ((4, 1), (2, 2)), ((2, 2), (2, 2)), ((2, 2), (2, 2)), ((2, 2), (2, 2)), ((4, 4), (4, 4))
"""(kernel, stride) of the max pooling after each block, over (time, mel bands), as musicnn's vgg has them."""


class Vgg(nn.Module):
    """The MSD_vgg network: an input batch norm, then five blocks of 3x3 convolution ("same" padding), ReLU,
    batch norm and max pooling; the last block's output (128 x 2 x 1 for a 3 s patch) feeds the 50 tags."""

    def __init__(self, n_tags=50, filters=128, n_frames=N_FRAMES, n_mels=N_MELS):
        super().__init__()
        self.input_norm = nn.BatchNorm2d(1, eps=BN_EPS)
        self.blocks = nn.ModuleList(conv_block(nn.Conv2d(c_in, filters, 3, padding=1),
                                               nn.BatchNorm2d(filters, eps=BN_EPS))
                                    for c_in in (1, filters, filters, filters, filters))
        self.pools = nn.ModuleList(nn.MaxPool2d(kernel, stride) for kernel, stride in POOLS)
        size = [n_frames, n_mels]  # the convolutions keep it; each pooling ("valid") shrinks it
        for kernel, stride in POOLS:
            size = [(n - k) // s + 1 for n, k, s in zip(size, kernel, stride)]
        last = filters * size[0] * size[1]
        self.output = nn.Linear(last, n_tags)
        self.layers_size = 2 * filters * (len(POOLS) - 1) + last + n_tags
        """Width of `layers`: pooled blocks (1024), the last block (256) and tag logits (50)."""

    def pooled(self, patches):
        """Each block's max-pooled output [shape=(batch, 128, time, bands)] of log-mel patches."""
        x, outputs = self.input_norm(patches.unsqueeze(1)), []
        for block, pool in zip(self.blocks, self.pools):
            x = pool(block(x))
            outputs.append(x)
        return outputs

    @staticmethod
    def flat(last):
        """The last block's output in TensorFlow's (time, band, channel) order, as the dense layer reads it."""
        return last.permute(0, 2, 3, 1).flatten(1)

    def embed(self, patches):
        """The last block's output, flattened [shape=(batch, 256)]: the layer before the tags."""
        return self.flat(self.pooled(patches)[-1])

    def layers(self, patches):
        """Max and mean over time and bands of the first four blocks' outputs, the last block's output and the
        tag logits, side by side [shape=(batch, 1330)]."""
        *inner, last = self.pooled(patches)
        features = [torch.stack([x.amax((2, 3)), x.mean((2, 3))], 2).flatten(1) for x in inner]
        flat = self.flat(last)
        return torch.cat([*features, flat, self.output(flat)], 1)

    def forward(self, patches):
        """MSD tag probabilities [shape=(batch, 50)]."""
        return torch.sigmoid(self.output(self.embed(patches)))


@register_network("msd_vgg", weights=VGG_WEIGHTS,
                  description="MSD_vgg (Pons & Serra 2019): VGG-like CNN trained to tag the Million Song Dataset; "
                              "musicnn's log-mel patches; frozen only")
def load_vgg(path=VGG_WEIGHTS):
    """The MSD_vgg port with its converted weights, in eval mode."""
    if not Path(path).is_file():
        raise GenrekitError(f"{path}: MSD_vgg weights not found "
                            "(scripts/convert_musicnn.py --model MSD_vgg writes them)")
    model = Vgg()
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return model.eval()
