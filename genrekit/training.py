"""Training one model on random windows of training clips, with early stopping and crash-safe resume.

With `augment=True` the training windows are randomly sped up, pitch-shifted, mixed with noise and made louder or
quieter (`genrekit.augment`) before the model's representation is computed from them; validation stays clean.

A clip may have several right answers (a label set, such as AllMusic's `metal|pop|rock`): the loss is minus
the log of the probability the model puts on the set (`set_loss`), which is cross-entropy for one genre.

With `mixup` > 0 each training window is mixed with another of its batch (Zhang et al., 2018), the mixing
weight w drawn from Beta(mixup, mixup), and the loss is w times the first one's plus 1 - w times the other's.

With a `teacher` (a model file) the model is distilled: it learns the teacher's probabilities for fixed
augmented views of the training clips as well as their labels (`genrekit.distillation`).

After every epoch the whole training state goes to `<out>/<model>.state.pt` (atomically), so a run
killed at any moment and started again with the same command continues from its last finished epoch.
Each epoch's randomness is seeded from (seed, epoch), which makes a resumed run the same as an unbroken
one. The finished run writes the best epoch's weights as a self-describing checkpoint `<out>/<model>.pt`
and its curves as `<out>/<model>.curves.png`.
"""

import copy
import logging
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from .audio import audio_info
from .batches import training_data
from .cache import FeatureCache
from .checkpoints import atomic_save, load_checkpoint, read_file, read_model, save_checkpoint
from .combiners import right_mass
from .constants import EPS
from .datasets import class_weights, labels_of
from .digest import clip_ids
from .distillation import Teacher
from .evaluation import classification_metrics
from .exceptions import AudioError, ParameterError
from .feature_params import FeatureParams
from .models import create_model
from .plots import plot_training_curves
from .progress import progress_bar
from .scoring import MIN_SECONDS, clip_log_probs, model_log_probs

log = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    """Everything that decides a training run (a resumed run must have the same)."""

    model: str
    epochs: int = 30
    batch_size: int = 32
    optimizer: str = "adam"
    lr: float = 1e-3
    lr_schedule: str = "constant"
    """constant, or cosine: annealed from `lr` towards 0 over `epochs` (stepped once per epoch)."""
    weight_decay: float = 1e-4
    dropout: float = 0.3
    window_seconds: float = 3.0
    windows_per_clip: int = 4
    balance: str = "weights"
    augment: bool = False
    views: int = 8
    """With `augment`, augmented windows per training clip that a model's frozen part computes once."""
    mixup: float = 0.0
    """Beta(mixup, mixup) draws the weight that mixes pairs of training windows and their targets; 0: no mixup."""
    patience: int = 6
    seed: int = 0
    teacher: str = ""
    """A model file to distil: the targets become `teacher_weight` of its probabilities plus the rest on the
    label, for `views` fixed (with `augment`, augmented) windows per training clip."""
    teacher_weight: float = 0.5
    start_from: str = ""
    """A checkpoint whose weights the model starts from wherever names and shapes agree (e.g. a head trained on
    frozen features, before the whole network is fine-tuned)."""
    model_kwargs: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.optimizer not in ("adam", "sgd"):
            raise ParameterError(f"optimizer must be 'adam' or 'sgd', got {self.optimizer!r}")
        if self.lr_schedule not in ("constant", "cosine"):
            raise ParameterError(f"lr_schedule must be 'constant' or 'cosine', got {self.lr_schedule!r}")
        if self.balance not in ("weights", "sampler", "none"):
            raise ParameterError(f"balance must be 'weights', 'sampler' or 'none', got {self.balance!r}")
        for name in ("epochs", "batch_size", "windows_per_clip", "views", "patience"):
            if getattr(self, name) < 1:
                raise ParameterError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not 0 < self.lr < math.inf:
            raise ParameterError(f"lr must be a positive number, got {self.lr}")
        if not 0 <= self.dropout < 1:
            raise ParameterError(f"dropout must be at least 0 and below 1, got {self.dropout}")
        if not 0 <= self.mixup < math.inf:
            raise ParameterError(f"mixup must be 0 (off) or a positive Beta parameter, got {self.mixup}")
        if not 0 <= self.teacher_weight <= 1:
            raise ParameterError(f"teacher_weight must be between 0 and 1, got {self.teacher_weight}")
        if not MIN_SECONDS <= self.window_seconds < math.inf:  # and no longer than the clips: check_window
            raise ParameterError(f"window_seconds must be at least {MIN_SECONDS:g} s, got {self.window_seconds}")


def start_from(model, path):
    """Copy into `model` the weights of a checkpoint (or a one-member model file, such as a bundled model) at
    `path` whose names and shapes it shares."""
    members = read_model(path).members
    if len(members) != 1:
        raise ParameterError(f"{path}: an ensemble of {len(members)} members; start from one model")
    theirs = members[0].model.state_dict()
    ours = model.state_dict()
    shared = {name: tensor for name, tensor in theirs.items() if name in ours and ours[name].shape == tensor.shape}
    if not set(shared) & {name for name, _ in model.named_parameters()}:
        raise ParameterError(f"{path}: no weights in common with a {model.name} model")
    model.load_state_dict(shared, strict=False)


def _optimizer(config, model):
    parameters = [p for p in model.parameters() if p.requires_grad]
    if config.optimizer == "sgd":
        return torch.optim.SGD(parameters, lr=config.lr, momentum=0.9, weight_decay=config.weight_decay, nesterov=True)
    return torch.optim.AdamW(parameters, lr=config.lr, weight_decay=config.weight_decay)


def _epoch_order(config, clips, rng):
    """Clip indices for one epoch: each clip `windows_per_clip` times, or drawn class-balanced."""
    n = len(clips) * config.windows_per_clip
    if config.balance == "sampler":
        shares = clips.targets / clips.targets.sum(1, keepdims=True)  # a label set counts 1/size per genre
        weights = shares @ (1.0 / np.maximum(shares.sum(0), 1e-12))
        return rng.choice(len(clips), size=n, p=weights / weights.sum())
    return rng.permutation(n) % len(clips)


def set_loss(logits, masks, class_weights=None):
    """Minus the log of the probability on each window's label set (`masks`, [shape=(n, n_classes)], 0/1), the
    mean weighted by the mean class weight of each set (for one genre: `torch.nn.CrossEntropyLoss(weight=)`)."""
    masks = masks.to(logits.dtype)
    log_probs = logits.log_softmax(-1)
    losses = -torch.logsumexp(log_probs.masked_fill(masks == 0, -torch.inf), -1)
    if class_weights is None:
        return losses.mean()
    weights = (masks * class_weights).sum(-1) / masks.sum(-1)
    return (weights * losses).sum() / weights.sum()


def soft_cross_entropy(logits, targets, class_weights=None):
    """Cross-entropy with target probabilities (a teacher's), weighted as `torch.nn.CrossEntropyLoss` does."""
    return torch.nn.functional.cross_entropy(logits, targets, weight=class_weights)


def mixed(x, alpha, rng):
    """Mixup: (`x` (a batch) mixed with itself in a random order at a Beta(alpha, alpha) weight w, w, that
    order): the loss is w times the one on the batch's targets plus 1 - w times the one on the reordered."""
    weight = float(rng.beta(alpha, alpha))
    order = torch.from_numpy(rng.permutation(len(x)))
    return weight * x + (1 - weight) * x[order], weight, order


def _train_epoch(model, clips, config, optimizer, loss_fn, make_batch, rng):
    model.train()
    order = _epoch_order(config, clips, rng)
    total, seen = 0.0, 0
    for start in range(0, len(order), config.batch_size):
        batch = order[start:start + config.batch_size]
        if len(batch) < 2:  # batch norm needs two items
            continue
        x, y = make_batch(batch, rng)
        if config.mixup:
            x, weight, order = mixed(x, config.mixup, rng)
            logits = model(x)
            loss = weight * loss_fn(logits, y) + (1 - weight) * loss_fn(logits, y[order])
        else:
            loss = loss_fn(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optimizer.step()
        total += loss.item() * len(batch)
        seen += len(batch)
    return total / max(seen, 1)


def validate(model, clips, window_seconds, labels):
    """Clip-level metrics plus the mean negative log-likelihood on `clips`, scored as `genrekit.scoring` does."""
    model.eval()
    log_probs = np.stack([clip_log_probs(model_log_probs(model, clips.windows(i, window_seconds)))
                          for i in range(len(clips))]) if len(clips) else np.zeros((0, len(labels)), np.float32)
    metrics = classification_metrics(clips.targets, log_probs.argmax(1), labels)
    metrics["loss"] = float(-np.log(right_mass(np.exp(log_probs), clips.targets) + EPS).mean())
    return metrics


def check_window(window_seconds, tracks):
    """Refuse a window longer than every one of `tracks` (each would only be looped to fill it); reads
    file headers until one is long enough."""
    longest = 0.0
    for track in tracks:
        try:
            seconds = track.duration or audio_info(track.path).duration
        except AudioError:  # left to the feature step, which lists failures
            continue
        if seconds >= window_seconds:
            return
        longest = max(longest, seconds)
    raise ParameterError(f"the {window_seconds:g} s window is longer than every training clip (the longest is "
                         f"{longest:.1f} s): choose a shorter window")


def _same_record(saved, record):
    """Whether a saved training record is `record`; settings added to TrainConfig later count as their
    defaults in records written before them."""
    if not saved:
        return False
    defaults = asdict(TrainConfig(model=record["config"]["model"]))
    return {**saved, "config": {**defaults, **saved["config"]}} == record


def train(config, train_tracks, valid_tracks, out_dir, *, labels=None, cache=None, params=FeatureParams(),
          workers=None, features=None, progress=True):
    """Train `config.model` and return the path of its checkpoint (resuming or skipping finished work).

    The weights of the epoch best on `valid_tracks` are kept (early stopping after `config.patience` epochs
    without a better one); with no `valid_tracks` (a refit on everything) all `config.epochs` run and the last
    epoch's weights are kept.

    `features`: window features of the tracks that `genrekit.embedding.embed_corpus` wrote, read instead of
    decoding the tracks and passing them through a model's frozen part (without `augment`).
    """
    out_dir = Path(out_dir)
    checkpoint_path = out_dir / f"{config.model}.pt"
    state_path = out_dir / f"{config.model}.state.pt"
    labels = list(labels or labels_of(train_tracks))
    cache = cache or FeatureCache()
    teacher = Teacher(config.teacher) if config.teacher else None
    record = {"config": asdict(config), "labels": labels, "feature_params": asdict(params),
              **({"teacher": teacher.key} if teacher else {})}
    if checkpoint_path.is_file() and _same_record(load_checkpoint(checkpoint_path)[1]["training"].get("record"), record):
        log.warning("%s: already trained with this configuration; delete it to train again", checkpoint_path)
        return checkpoint_path

    check_window(config.window_seconds, train_tracks)
    torch.manual_seed(config.seed)
    model = create_model(config.model, len(labels), dropout=config.dropout, **config.model_kwargs)
    if config.start_from:
        start_from(model, config.start_from)
    data = training_data(config, model, train_tracks, valid_tracks, labels, cache, params, teacher=teacher,
                         features=features, workers=workers, progress=progress)
    train_clips, valid_clips, net, seconds = data.train, data.valid, data.net, config.window_seconds
    weights = torch.from_numpy(class_weights(train_tracks, labels)) if config.balance == "weights" else None
    loss = soft_cross_entropy if teacher is not None else set_loss

    def loss_fn(logits, targets):
        return loss(logits, targets, weights)
    optimizer = _optimizer(config, net)
    scheduler = (torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs)
                 if config.lr_schedule == "cosine" else None)

    state = {"record": record, "epoch": 0, "history": [], "best": None, "best_state": None, "bad_epochs": 0,
             "seconds": 0.0}
    if state_path.is_file():
        saved = read_file(state_path, "genrekit training state (delete it to start again)")
        if _same_record(saved.get("record") if isinstance(saved, dict) else None, record):
            model.load_state_dict(saved.pop("model"))
            optimizer.load_state_dict(saved.pop("optimizer"))
            if scheduler:
                scheduler.load_state_dict(saved.pop("scheduler"))
            state = saved
            log.warning("%s: resuming after epoch %d", state_path, state["epoch"])

    bar = progress_bar(total=config.epochs, initial=state["epoch"], desc=config.model, unit="epoch", enabled=progress)
    while state["epoch"] < config.epochs and state["bad_epochs"] < config.patience:
        epoch = state["epoch"] + 1
        began = time.perf_counter()
        torch.manual_seed(config.seed * 100003 + epoch)
        rng = np.random.default_rng([config.seed, epoch])
        train_loss = _train_epoch(net, train_clips, config, optimizer, loss_fn, data.batch, rng)
        entry = {"epoch": epoch, "train_loss": train_loss}
        if len(valid_clips):
            valid = validate(net, valid_clips, seconds, labels)
            entry.update(valid_loss=valid["loss"], valid_accuracy=valid["accuracy"], valid_macro_f1=valid["macro_f1"])
            score = (valid["accuracy"], -valid["loss"])
        else:  # nothing held out: every epoch is the best so far, the last one is kept
            score = (epoch,)
        state["seconds"] += time.perf_counter() - began
        state["history"].append(entry)
        if state["best"] is None or score > tuple(state["best"]):
            state.update(best=score, best_state=copy.deepcopy(model.state_dict()), bad_epochs=0, best_epoch=epoch)
        else:
            state["bad_epochs"] += 1
        state["epoch"] = epoch
        if scheduler:
            scheduler.step()
        atomic_save({**state, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                     **({"scheduler": scheduler.state_dict()} if scheduler else {})}, state_path)
        bar.set_postfix(loss=f"{train_loss:.3f}", **({"val_acc": f"{entry['valid_accuracy']:.3f}"} if len(valid_clips) else {}))
        bar.update()
    bar.close()

    model.load_state_dict(state["best_state"])
    best = state["history"][state["best_epoch"] - 1]
    metrics = {"valid_accuracy": best.get("valid_accuracy"), "valid_macro_f1": best.get("valid_macro_f1"),
               "best_epoch": state["best_epoch"], "epochs_run": state["epoch"], "train_minutes": state["seconds"] / 60,
               "train_clips": len(train_clips), "valid_clips": len(valid_clips),
               "parameters": sum(p.numel() for p in model.parameters())}
    save_checkpoint(checkpoint_path, model, labels=labels, params=params, window_seconds=config.window_seconds,
                    metrics=metrics, history=state["history"], training={"record": record},
                    seen={"trained": clip_ids(train_tracks), "tuned": clip_ids(valid_tracks)})
    plot_training_curves(state["history"], out_dir / f"{config.model}.curves.png", title=config.model)
    state_path.unlink(missing_ok=True)
    return checkpoint_path
