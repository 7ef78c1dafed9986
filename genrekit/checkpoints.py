"""The one place model files are read and written: checkpoints, ensembles, and ONNX exports.

checkpoint  one trained model: weights, name, config, labels, feature parameters, training record
ensemble    member checkpoints and the state of the combiner fitted over them
.onnx       the members' networks as one graph; labels, parameters and combiner in its metadata
            (written by `genrekit.export`)

`load_scorer` turns any of them into a `genrekit.scoring.Scorer`.
"""

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .atomic import atomic_path
from .combiners import make_combiner
from .exceptions import GenrekitError, ParameterError
from .feature_params import FeatureParams
from .scoring import OnnxScorer, TorchScorer

FORMAT = "genrekit-checkpoint-1"
ENSEMBLE_FORMAT = "genrekit-ensemble-1"
ONNX_METADATA_KEY = "genrekit"


def atomic_save(obj, path):
    """`torch.save` to a temporary file beside `path`, then rename it into place."""
    import torch  # checkpoints are torch files; an .onnx export is read without torch

    with atomic_path(path) as temp:
        torch.save(obj, temp)


def save_checkpoint(path, model, *, labels, params, window_seconds, metrics=None, history=None, training=None,
                    seen=None):
    """Write a model with its name, config, label list, feature parameters and training record; `seen`: the
    clips it learned from ({"trained": clip ids, "tuned": clip ids}, see `seen_clips`)."""
    atomic_save(compact({"format": FORMAT, "model": model.name, "config": model.config, "labels": list(labels),
                         "feature_params": asdict(params), "window_seconds": window_seconds,
                         "state_dict": model.state_dict(), "metrics": metrics or {}, "history": history or [],
                         "training": training or {}, "seen": seen or {}}, model), path)


def compact(ckpt, model):
    """The checkpoint dict of `model` without the weights of its frozen pretrained part, if it has one
    (`frozen_prefixes`, e.g. the musicnn backbone): those ship with genrekit, so the checkpoint keeps only
    their digest (`embedding_key()`), which loading checks."""
    prefixes = getattr(model, "frozen_prefixes", None)
    if not prefixes or "frozen" in ckpt:
        return ckpt
    own = {name: value for name, value in model.state_dict().items() if not name.startswith(prefixes)}
    return {**ckpt, "state_dict": own, "frozen": {"prefixes": list(prefixes), "key": model.embedding_key()}}


CHECKPOINT_KEYS = ("model", "config", "labels", "feature_params", "window_seconds", "state_dict")
ENSEMBLE_KEYS = ("kind", "labels", "members", "combiner")


def read_file(path, what="genrekit checkpoint"):
    """The raw contents of a file `torch.save` wrote (a checkpoint, an ensemble, a training state), read
    without running pickled code: tensors and plain Python values only."""
    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise GenrekitError(f"{path}: file not found") from None
    except Exception as error:  # torch raises many kinds for a file that is not a checkpoint
        raise GenrekitError(f"{path}: not a {what} ({type(error).__name__})") from None


def _check_keys(path, data, keys):
    """Refuse a genrekit file that lacks some of the `keys` its format needs (damaged, or not genrekit's)."""
    missing = [key for key in keys if key not in data]
    if missing:
        raise GenrekitError(f"{path}: damaged genrekit file (no {', '.join(missing)})")


def model_from_checkpoint(ckpt):
    """(model in eval mode, the rest of the checkpoint) from a checkpoint dict."""
    from .models import create_model  # the networks (torch)

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


def load_checkpoint(path):
    """(model in eval mode, checkpoint dict without the weights) from a file `save_checkpoint` wrote."""
    ckpt = read_file(path)
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise GenrekitError(f"{path}: not a genrekit checkpoint")
    _check_keys(path, ckpt, CHECKPOINT_KEYS)
    return model_from_checkpoint(ckpt)


@dataclass
class Member:
    """One trained model of an ensemble: its network, its checkpoint (to save it again) and what that says."""

    model: "torch.nn.Module"
    checkpoint: dict
    info: dict

    @classmethod
    def from_checkpoint(cls, ckpt):
        model, info = model_from_checkpoint(ckpt)
        return cls(model, compact(ckpt, model), info)

    @property
    def name(self):
        return self.info["model"]

    @property
    def labels(self):
        return self.info["labels"]


def load_members(paths):
    """Members from checkpoint files (an ensemble cannot be a member)."""
    members = []
    for path in paths:
        data = read_file(path)
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ParameterError(f"{path}: not a model checkpoint (an ensemble cannot be a member)")
        _check_keys(path, data, CHECKPOINT_KEYS)
        members.append(Member.from_checkpoint(data))
    return members


def members_scorer(members, kind=None, combiner=None, temperature=1.0):
    """A `TorchScorer` over members that share labels, feature parameters and window length."""
    if not members:
        raise ParameterError("an ensemble needs at least one member")
    first = members[0]
    for member in members:
        if member.labels != first.labels:
            raise ParameterError(f"member {member.name} has labels {member.labels}, expected {first.labels}")
        if (member.info["feature_params"], member.info["window_seconds"]) != (first.info["feature_params"],
                                                                              first.info["window_seconds"]):
            raise ParameterError(f"member {member.name} differs from {first.name} in feature parameters or window length")
    return TorchScorer([m.model for m in members], labels=first.labels,
                       members=[(m.name, m.model.representation) for m in members],
                       params=first.info["feature_params"], window_seconds=first.info["window_seconds"], kind=kind,
                       combiner=combiner, temperature=temperature)


SEEN_KINDS = ("trained", "tuned")
"""How a model saw a clip: it learned its weights from it, or chose something on it (early stopping, settings,
an ensemble's combiner, the temperature)."""


def seen_clips(path):
    """{"trained": set of clip ids, "tuned": set of clip ids} (`genrekit.digest.clip_id`) a checkpoint or ensemble
    (and its members) learned from, or None for a file that does not record them (an `.onnx` export, an old
    checkpoint)."""
    if Path(path).suffix == ".onnx":
        return None
    data = read_file(path)
    parts = [data, *data.get("members", [])] if isinstance(data, dict) else []
    if not any("seen" in part for part in parts):
        return None
    return {kind: {clip for part in parts for clip in part.get("seen", {}).get(kind, [])} for kind in SEEN_KINDS}


@dataclass
class TrainedModel:
    """A trained model as one object, whatever made it: one network (a checkpoint: one member, no combiner), or
    several combined as an ensemble was fitted to (`genrekit.ensemble.Ensemble`, which is one), the bundled
    models with their `card`. `scorer` runs it on windows (`genrekit.scoring`); `save` writes it as one file,
    which `read_model` (or `genrekit.load`, for songs) reads back."""

    members: list
    kind: str | None = None
    combiner: object = None
    temperature: float = 1.0
    card: dict = field(default_factory=dict)
    tuned_on: list = field(default_factory=list)
    """clip ids (`genrekit.digest.clip_ids`) the combiner and temperature were fitted on"""

    @property
    def labels(self):
        return self.members[0].labels

    @property
    def scorer(self):
        """The model as a `genrekit.scoring.Scorer` (torch)."""
        return members_scorer(self.members, self.kind, self.combiner, self.temperature)

    def save(self, path, card=None):
        """Write the members, the fitted combiner, its temperature, `card` (name, version, training data,
        held-out figures) and the clips it was tuned on as one file; returns the path."""
        if self.combiner is None:
            raise ParameterError("only a model with a fitted combiner is saved as one file (an ensemble)")
        atomic_save({"format": ENSEMBLE_FORMAT, "kind": self.kind, "labels": self.labels,
                     "members": [m.checkpoint for m in self.members], "combiner": self.combiner.get_state(),
                     "temperature": float(self.temperature), "card": card if card is not None else self.card,
                     "seen": {"tuned": list(self.tuned_on)}}, path)
        return path


def read_model(path):
    """The `TrainedModel` of a checkpoint or an ensemble file."""
    data = read_file(path)
    kind = data.get("format") if isinstance(data, dict) else None
    if kind == FORMAT:
        _check_keys(path, data, CHECKPOINT_KEYS)
        return TrainedModel([Member.from_checkpoint(data)])
    if kind == ENSEMBLE_FORMAT:
        _check_keys(path, data, ENSEMBLE_KEYS)
        for member in data["members"]:
            _check_keys(path, member, CHECKPOINT_KEYS)
        return TrainedModel([Member.from_checkpoint(ckpt) for ckpt in data["members"]], data["kind"],
                            make_combiner(data["kind"]).set_state(data["combiner"]), data.get("temperature", 1.0),
                            data.get("card", {}), data.get("seen", {}).get("tuned", []))
    raise GenrekitError(f"{path}: not a genrekit checkpoint or ensemble")


def load_scorer(path, *, threads=None):
    """The `Scorer` of a checkpoint or ensemble (torch) or of an `.onnx` export (onnxruntime, `threads`
    intra-op threads, default onnxruntime's)."""
    if Path(path).suffix == ".onnx":
        return load_onnx(path, threads=threads)
    return read_model(path).scorer


def load_onnx(path, *, threads=None):
    """An `OnnxScorer` for a file `genrekit.export.export_onnx` wrote."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    # idle intra-op threads would spin after each run and take the cores from what runs between runs (the
    # decoder, torch's STFT for spectrogram members): 1.5-2x on `fast`'s 30 s clip, no change for `default`
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        meta = json.loads(session.get_modelmeta().custom_metadata_map[ONNX_METADATA_KEY])
    except Exception as error:  # onnxruntime raises its own exception types for missing or broken files
        raise GenrekitError(f"{path}: not a genrekit ONNX export ({type(error).__name__})") from None
    combiner = make_combiner(meta["kind"]).set_state(meta["combiner"]) if meta["kind"] else None
    return OnnxScorer(session, labels=meta["labels"],
                      members=[(m["name"], m["representation"]) for m in meta["members"]],
                      params=FeatureParams(**meta["feature_params"]), window_seconds=meta["window_seconds"],
                      kind=meta["kind"], combiner=combiner, temperature=meta.get("temperature", 1.0))
