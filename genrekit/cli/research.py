"""The commands of models and data: evaluate, train, train-bundled, ensemble, embed, export, features."""

import sys
from pathlib import Path

import typer

from ..exceptions import GenrekitError
from .common import (AddressOption, CacheDirOption, Command, DatasetArg, EngineOption, _cache_line, _load_data,
                     app, console)


@app.command(cls=Command)
def evaluate(model: str = typer.Argument(..., help="Checkpoint, ensemble or .onnx file, or a bundled model "
                                                   "(default, fast)."),
             data: list[str] = typer.Option(..., help="Dataset(s), PATH or KIND:PATH."),
             split: str = typer.Option(None, help="train, valid, test or all (default: test, or all for data "
                                                  "without splits of their own, such as a folder)."),
             out: Path = typer.Option(Path("reports"), help="Report folder."),
             known_labels_only: bool = typer.Option(False, "--known-labels-only", help="Score only clips whose "
                                                    "label the model has (and say how many were left out).")):
    """Score a model on a dataset: accuracy, macro-F1, per-genre accuracy, confusion.

    Clips are scored as `predict` scores songs. Writes JSON, markdown and PNG reports, and warns when clips of
    the data are among those the model learned from.

    Example: genrekit evaluate default --data gtzan:../shared/data/gtzan-mini --split test"""
    from ..datasets import SPLITS, restrict_labels, select
    from ..evaluation import clip_log_probs, classification_metrics, overlap_warning, write_report
    from ..predict import BUNDLED_MODELS, load

    if split not in (None, "all", *SPLITS):
        raise GenrekitError(f"--split must be one of {', '.join(SPLITS)} or all, got {split!r}")
    classifier = load(model)
    tracks = _load_data(data)
    if split is None:
        split = "all" if all(t.split_drawn for t in tracks) else "test"
        if split == "all":
            console.print(f"{', '.join(data)} has no splits of its own: scoring all of it", highlight=False,
                          markup=False)
    tracks = tracks if split == "all" else select(tracks, split)
    if known_labels_only:
        unknown = sorted({g for t in tracks for g in t.label_set} - set(classifier.labels))
        known = restrict_labels(tracks, classifier.labels)  # a label set keeps the genres the model has
        left_out, tracks = len(tracks) - len(known), known
        if unknown:
            console.print(f"left out {left_out} clip(s) with labels the model lacks: {', '.join(unknown)}",
                          highlight=False, markup=False)
    if not tracks:
        raise GenrekitError(f"{', '.join(data)}: no clips {'the model knows ' if known_labels_only else ''}"
                            f"in the {split!r} split")
    overlap = overlap_warning(BUNDLED_MODELS[model] if model in BUNDLED_MODELS and not Path(model).exists()
                              else Path(model), tracks)
    if overlap:
        print(f"warning: {overlap}", file=sys.stderr)
    log_probs, targets = clip_log_probs(classifier.scorer, tracks)
    metrics = classification_metrics(targets, log_probs.argmax(1), classifier.labels)
    metrics["overlap"] = overlap
    stem, names = Path(model).stem, ", ".join(Path(spec.partition(":")[2] or spec).name for spec in data)
    report = write_report(metrics, out, f"{stem}.{split}", f"{stem} on {names} ({split})")
    console.print(report.read_text(), highlight=False, markup=False)
    console.print(f"wrote {report} and its .json and .png files", highlight=False, markup=False)


@app.command(cls=Command)
def train(architecture: str = typer.Option(..., help="Architecture to train (see `genrekit models`)."),
          data: list[str] = typer.Option(..., help="Dataset(s), PATH or KIND:PATH; several are merged."),
          out: Path = typer.Option(Path("runs"), help="Folder for the checkpoint, curves and resume state."),
          epochs: int = typer.Option(30, help="Most passes over the train split (early stopping may end sooner)."),
          batch_size: int = typer.Option(32, help="Windows per optimisation step."),
          optimizer: str = typer.Option("adam", help="adam or sgd."),
          lr: float = typer.Option(1e-3, help="Learning rate (the start of the schedule)."),
          lr_schedule: str = typer.Option("constant", help="constant, or cosine (annealed to 0 over the epochs)."),
          dropout: float = typer.Option(0.3, help="Dropout probability before the classifier layer."),
          window_seconds: float = typer.Option(3.0, help="Length of the windows the model sees, in seconds "
                                               "(prediction cuts songs into the same windows)."),
          windows_per_clip: int = typer.Option(4, help="Random windows drawn per training clip and epoch."),
          balance: str = typer.Option("weights", help="Class imbalance: weights (loss), sampler, or none."),
          se: bool = typer.Option(False, help="Squeeze-and-excitation channel gating in a CNN."),
          augment: bool = typer.Option(False, help="Randomly speed up/slow down (0.8-1.25x), pitch-shift (+-2 "
                                       "semitones) and add noise to training windows."),
          mixup: float = typer.Option(0.0, min=0, help="Mix pairs of training windows and their targets, at a "
                                      "Beta(mixup, mixup) weight (0.2-0.4 is usual; 0: off)."),
          patience: int = typer.Option(6, help="Epochs without validation gain before stopping."),
          seed: int = typer.Option(0, help="Random seed (weights, windows, and splits of datasets without one)."),
          cache_dir: Path = CacheDirOption,
          workers: int = typer.Option(0, min=0, help="Feature worker processes (0: one per core)."),
          features: Path = typer.Option(None, help="Window features `genrekit embed` wrote of these data, "
                                        "read instead of computed (models with a frozen part, no --augment)."),
          teacher: str = typer.Option(None, help="Distil this model file or bundled model (default, fast): the "
                                      "targets mix its probabilities for --views fixed windows per clip with the labels."),
          teacher_weight: float = typer.Option(0.5, help="Share of the teacher's probabilities in the targets."),
          views: int = typer.Option(8, min=1, help="With --teacher, fixed (with --augment, augmented) windows per "
                                    "training clip that the teacher scores once."),
          start_from: str = typer.Option(None, help="Start from the weights this checkpoint or bundled model "
                                         "shares with the model (e.g. a trained head before fine-tuning all).")):
    """Train one architecture on a dataset (early-stopped on its valid split; re-run to resume).

    Example: genrekit train --architecture cnn-logmel --data ../shared/data/gtzan-mini --epochs 10 --out runs"""
    from ..cache import FeatureCache
    from ..checkpoints import load_checkpoint
    from ..datasets import labels_of, select
    from ..predict import BUNDLED_MODELS
    from ..training import TrainConfig, train as train_model

    config = TrainConfig(model=architecture, epochs=epochs, batch_size=batch_size, optimizer=optimizer, lr=lr,
                         lr_schedule=lr_schedule,
                         dropout=dropout, window_seconds=window_seconds, windows_per_clip=windows_per_clip,
                         balance=balance, augment=augment, mixup=mixup, patience=patience, seed=seed, views=views,
                         teacher=str(BUNDLED_MODELS.get(teacher, teacher)) if teacher else "",
                         teacher_weight=teacher_weight,
                         start_from=str(BUNDLED_MODELS.get(start_from, start_from)) if start_from else "",
                         model_kwargs={"se": True} if se else {})
    tracks = _load_data(data, seed)
    train_tracks, valid_tracks = select(tracks, "train"), select(tracks, "valid")
    if not train_tracks or not valid_tracks:
        raise GenrekitError(f"{', '.join(data)}: need clips in both the train and valid splits")
    path = train_model(config, train_tracks, valid_tracks, out, labels=labels_of(tracks),
                       cache=FeatureCache(cache_dir), workers=workers or None, features=features)
    metrics = load_checkpoint(path)[1]["metrics"]
    console.print(f"wrote {path}: validation accuracy {metrics['valid_accuracy']:.3f} "
                  f"(epoch {metrics['best_epoch']} of {metrics['epochs_run']}, {metrics['train_minutes']:.1f} min)")
    console.print(_cache_line(cache_dir), highlight=False, markup=False)


@app.command("train-bundled", cls=Command)
def train_bundled(out: Path = typer.Option(..., help="Folder for the model (default.pt), its card (default.json) "
                                           "and the resumable runs."),
                  gtzan: list[Path] = typer.Option([], help="GTZAN folder(s) (gtzan-mini, gtzan-extra; repeat)."),
                  real_extra: list[Path] = typer.Option([], help="real-extra folder(s) build.py laid out (repeat)."),
                  renderings: list[Path] = typer.Option([], help="Manifest(s) of rendered MIDI songs (genrekit data "
                                                         "render-midi); their train split joins the training data."),
                  refit: bool = typer.Option(True, help="Ship the head fitted again on train + valid (the card "
                                             "keeps the figures of the one fitted on train only)."),
                  cache_dir: Path = CacheDirOption):
    """Make the bundled default model from real recordings: its weights and card.

    The recipe of `genrekit.bundled`; window features are cached, so a second run only refits.

    Example: genrekit train-bundled --gtzan ../shared/data/gtzan-mini --gtzan ../shared/data/gtzan-extra
    --real-extra ~/genrekit-data/real-extra --out bundled/"""
    import json

    from ..bundled import train_bundled as make
    from ..cache import FeatureCache

    card = make(out, gtzan=gtzan, real_extra=real_extra, renderings=renderings, refit=refit,
                cache=FeatureCache(cache_dir))
    for name, figures in card["held_out"].items():
        console.print(f"{name}: accuracy {figures['accuracy']:.3f} on {figures['n']} clips", highlight=False)
    console.print(json.dumps(card["calibration"]), highlight=False, markup=False)
    console.print(f"wrote {out / 'default.pt'} and {out / 'default.json'}", highlight=False, markup=False)


@app.command(cls=Command)
def ensemble(members: list[Path] = typer.Option(..., help="Member checkpoints (repeat the option)."),
             data: list[str] = typer.Option(..., help="Dataset(s), PATH or KIND:PATH."),
             kind: str = typer.Option("weighted", help="equal, weighted, stacking or gating."),
             out: Path = typer.Option(Path("runs/ensemble.pt"), help="Ensemble file to write."),
             calibrate: bool = typer.Option(False, help="Also fit a temperature on the valid split, so the "
                                            "probabilities match how often the model is right.")):
    """Fit an ensemble of trained models on the valid split, saved as one file.

    Example: genrekit ensemble --members runs/cnn-logmel.pt --members runs/rnn-logmel.pt --data
    ../shared/data/gtzan-mini --out runs/ensemble.pt"""
    from ..checkpoints import load_members
    from ..datasets import select
    from ..ensemble import Ensemble

    found = Ensemble(load_members(members), kind)
    found.fit(select(_load_data(data), "valid"), calibrate=calibrate)
    found.save(out)
    weights = getattr(found.combiner, "weights_", None)
    if weights is not None:
        for member, weight in zip(found.members, weights):
            console.print(f"  {member.name}: weight {weight:.3f}")
    calibrated = f", temperature {found.temperature:.2f}" if calibrate else ""
    console.print(f"wrote {out} ({kind} ensemble of {len(found.members)} members, fitted on the valid split"
                  f"{calibrated})")


@app.command(cls=Command)
def embed(dataset: str = DatasetArg,
          out: Path = typer.Option(..., help="New folder of Parquet shards (e.g. corpus.parquet), outside the "
                                   "dataset."),
          architecture: str = typer.Option("backbone-musicnn", help="Architecture whose frozen pretrained part "
                                           "embeds."),
          window_seconds: float = typer.Option(3.0, help="Window length, as `genrekit train --window-seconds`."),
          workers: int = typer.Option(0, min=0, help="Worker processes, or Ray tasks at once (0: one per core, or per CPU "
                                      "of the Ray cluster)."),
          engine: str = EngineOption,
          address: str = AddressOption):
    """Cache a dataset's window features through a frozen network, for `train --features`.

    Writes Parquet shards that `genrekit train --features` reads instead of computing them.

    Example: genrekit embed ../shared/data/gtzan-mini --out gtzan.parquet"""
    from ..datasets import load_dataset
    from ..embedding import embed_corpus
    from ..engine import check_engine

    check_engine(engine, address)
    summary = embed_corpus(load_dataset(dataset), out, model=architecture, window_seconds=window_seconds,
                           workers=workers or None, engine=engine, address=address)
    console.print(f"wrote {out}: {summary.windows} windows of {summary.tracks} clips in {summary.shards} shards, "
                  f"{len(summary.failures)} failed", highlight=False, markup=False)
    for key, reason in summary.failures:
        console.print(f"{key}: {reason}", style="red", highlight=False, markup=False)
    if summary.failures:
        raise typer.Exit(1)


@app.command(cls=Command)
def export(model: Path = typer.Argument(..., help="Checkpoint or ensemble file."),
           onnx: Path = typer.Option(..., "--onnx", help="ONNX file to write.")):
    """Export a model or ensemble to ONNX, for onnxruntime.

    The networks go into the graph; features and the combination run outside it (genrekit.export).

    Example: genrekit export runs/ensemble.pt --onnx model.onnx (then: genrekit predict song.mp3 --model
    model.onnx)"""
    from ..export import export_onnx

    console.print(f"wrote {export_onnx(model, onnx)}")


@app.command(cls=Command)
def features(dataset: str = DatasetArg,
             cache_dir: Path = CacheDirOption,
             workers: int = typer.Option(0, min=0, help="Worker processes (0: one per core).")):
    """Compute and cache the four representations of every clip of a dataset.

    Example: genrekit features gtzan:../shared/data/gtzan-mini"""
    from ..cache import FeatureCache, fill_cache
    from ..datasets import load_dataset

    tracks = load_dataset(dataset)
    status = fill_cache(tracks, FeatureCache(cache_dir), workers=workers or None)
    failed = {key: state for key, state in status.items() if state.startswith("failed")}
    computed = sum(state == "computed" for state in status.values())
    console.print(f"{computed} computed, {len(status) - computed - len(failed)} already cached, "
                  f"{len(failed)} failed; {_cache_line(cache_dir)}", highlight=False, markup=False)
    for key, state in failed.items():
        console.print(f"{key}: {state}", style="red", highlight=False)
    if failed:
        raise typer.Exit(1)
