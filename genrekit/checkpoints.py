"""Self-describing checkpoints: one file with the weights and all that is needed to use them."""

from dataclasses import asdict

import torch

from .atomic import atomic_path
from .exceptions import GenrekitError
from .features import FeatureParams
from .models import create_model

FORMAT = "genrekit-checkpoint-1"


def atomic_save(obj, path):
    """`torch.save` to a temporary file beside `path`, then rename it into place."""
    with atomic_path(path) as temp:
        torch.save(obj, temp)


def save_checkpoint(path, model, *, labels, params, window_seconds, metrics=None, history=None, training=None):
    """Write a model with its name, config, label list, feature parameters and training record."""
    atomic_save(compact({"format": FORMAT, "model": model.name, "config": model.config, "labels": list(labels),
                         "feature_params": asdict(params), "window_seconds": window_seconds,
                         "state_dict": model.state_dict(), "metrics": metrics or {}, "history": history or [],
                         "training": training or {}}, model), path)


def compact(ckpt, model):
    """The checkpoint dict of `model` without the weights of its frozen pretrained part, if it has one
    (`frozen_prefixes`, e.g. the musicnn backbone): those ship with genrekit, so the checkpoint keeps only
    their digest (`embedding_key()`), which loading checks."""
    prefixes = getattr(model, "frozen_prefixes", None)
    if not prefixes:
        return ckpt
    own = {name: value for name, value in model.state_dict().items() if not name.startswith(prefixes)}
    return {**ckpt, "state_dict": own, "frozen": {"prefixes": list(prefixes), "key": model.embedding_key()}}


def load_checkpoint(path):
    """(model in eval mode, checkpoint dict without the weights) from a file `save_checkpoint` wrote."""
    ckpt = read_file(path)
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise GenrekitError(f"{path}: not a genrekit checkpoint")
    return model_from_checkpoint(ckpt)


def read_file(path):
    """The raw dict of a genrekit checkpoint or ensemble file (weights as tensors)."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise GenrekitError(f"{path}: file not found") from None
    except Exception as error:  # torch raises many kinds for a file that is not a checkpoint
        raise GenrekitError(f"{path}: not a genrekit checkpoint ({type(error).__name__})") from None


def model_from_checkpoint(ckpt):
    """(model in eval mode, the rest of the checkpoint) from a checkpoint dict."""
    ckpt = dict(ckpt)
    model = create_model(ckpt["model"], len(ckpt["labels"]), **ckpt["config"])
    frozen = ckpt.pop("frozen", None)
    if frozen is None:
        model.load_state_dict(ckpt.pop("state_dict"))
    else:  # the frozen part comes from genrekit's own pretrained weights, which must be those it was trained on
        installed = model.embedding_key()
        if installed != frozen["key"]:
            raise GenrekitError(f"{ckpt['model']}: trained on pretrained weights {frozen['key']}, but genrekit has "
                                f"{installed}")
        missing, unexpected = model.load_state_dict(ckpt.pop("state_dict"), strict=False)
        if unexpected or not all(name.startswith(tuple(frozen["prefixes"])) for name in missing):
            raise GenrekitError(f"{ckpt['model']}: checkpoint weights do not fit the model")
    ckpt["feature_params"] = FeatureParams(**ckpt["feature_params"])
    return model.eval(), ckpt
