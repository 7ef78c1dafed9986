"""Pretrained networks by name, as timm registers its pretrained configurations: each registration says what the
network is, what it learned from, where its weights are and whether it may be adapted (fine-tuned).
`backbone-musicnn` runs any of them (`network=NAME`); a new one is a module with the network and its loader,
decorated with `register_network`, imported by `genrekit.models`."""

from dataclasses import dataclass
from typing import Callable

from ..exceptions import ParameterError


@dataclass(frozen=True)
class PretrainedNetwork:
    """A registered pretrained network; `load()` gives it in eval mode, with `embed`, `layers_size` and
    `output` (its tag layer) as `genrekit.models.backbone.MusicnnClassifier` uses them."""

    name: str
    load: Callable
    description: str
    weights: str
    adaptable: bool
    """whether its mid-end and dense layers may be fine-tuned (`fine_tune="midend"` or `"all"`)"""


_NETWORKS = {}


def register_network(name, *, description, weights, adaptable=False):
    """Decorator registering a loader `fn() -> nn.Module` of a pretrained network under `name`."""

    def decorate(load):
        if name in _NETWORKS:
            raise ParameterError(f"pretrained network {name!r} registered twice")
        _NETWORKS[name] = PretrainedNetwork(name, load, description, str(weights), adaptable)
        return load

    return decorate


def list_networks():
    """The registered pretrained networks, by name."""
    return [_NETWORKS[name] for name in sorted(_NETWORKS)]


def pretrained_network(name):
    """The registered pretrained network `name` (`PretrainedNetwork`)."""
    if name not in _NETWORKS:
        raise ParameterError(f"network must be one of {', '.join(sorted(_NETWORKS))}, got {name!r}")
    return _NETWORKS[name]
