"""The `genrekit` command: thin typer wrappers around the library."""

import logging
import os
import sys
import typing
from collections import Counter
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

from . import __version__
from .constants import DEFAULT_CACHE_DIR
from .exceptions import GenrekitError, printable


TYPE_NAMES = {Path: "PATH", int: "INT", float: "NUMBER", str: "TEXT"}
"""How each kind of value is shown in --help (typer would show `<list[Path]>`, `<float>`)."""
COMMAND_ORDER = ("predict", "tag", "serve", "evaluate", "show", "models", "train", "train-bundled", "ensemble", "embed",
                 "export", "features", "demo", "data", "experiment", "cache")
"""Commands in --help by how often people need them."""


def _readable(params):
    """Flags without a type, other values with a plain one (PATH, INT, NUMBER, TEXT; "..." when repeatable)."""
    for param in params:
        if isinstance(param, TyperOption) and param.is_flag:
            param.metavar = ""
        elif isinstance(param, (TyperOption, TyperArgument)) and param.metavar is None:
            annotation = param.type_descriptor.annotation
            repeated = typing.get_origin(annotation) is list
            name = TYPE_NAMES.get(typing.get_args(annotation)[0] if repeated else annotation)
            if name and isinstance(param, TyperOption):
                param.metavar = name + (" ..." if repeated else "")
            elif name:  # an argument's metavar would replace its name: only its type column changes
                param.display_type_rich = lambda ctx, shown=name + (" ..." if repeated else ""): shown
    return params


def _paragraphs(text):
    """A docstring as --help shows it: each paragraph on one line, the terminal wraps it."""
    return "\n\n".join(" ".join(paragraph.split()) for paragraph in text.split("\n\n")) if text else text


class Command(TyperCommand):
    """Usage lines as `FILES...` (typer shows `{files}...`), plain types, paragraphs that wrap."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.help = _paragraphs(self.help)

    def collect_usage_pieces(self, ctx):
        arguments = [param for param in self.get_params(ctx) if isinstance(param, TyperArgument)]
        return [self.options_metavar, *(param.name.upper() + ("..." if param.nargs != 1 else "")
                                        for param in arguments)]

    def get_params(self, ctx):
        return _readable(super().get_params(ctx))


class Group(TyperGroup):
    """Plain types; commands in the order of `COMMAND_ORDER`."""

    def get_params(self, ctx):
        return _readable(super().get_params(ctx))

    def list_commands(self, ctx):
        names = super().list_commands(ctx)
        return sorted(names, key=lambda name: COMMAND_ORDER.index(name) if name in COMMAND_ORDER else len(names))


app = typer.Typer(help="Predict the genre of music from audio.", no_args_is_help=True, add_completion=False, cls=Group)
data_app = typer.Typer(help="Datasets: summaries and rendering.", no_args_is_help=True, cls=Group)
app.add_typer(data_app, name="data")
experiment_app = typer.Typer(help="The paper's experiments: song variants, instrumental / a-cappella.",
                             no_args_is_help=True, cls=Group)
app.add_typer(experiment_app, name="experiment")
cache_app = typer.Typer(help="The feature cache: its size, and clearing it.", no_args_is_help=True, cls=Group)
app.add_typer(cache_app, name="cache")
console = Console(soft_wrap=True, markup=False)  # file names may hold [brackets]: never markup

def _show_version(value):
    if value:
        print(f"genrekit {__version__}")
        raise typer.Exit()


@app.callback()
def _options(version: bool = typer.Option(False, "--version", callback=_show_version, is_eager=True,
                                          help="Print genrekit's version and exit."),
             quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars and no notes on stderr: "
                                        "only results, warnings and errors.")):
    """Predict the genre of music from audio."""
    if quiet:
        os.environ["GENREKIT_QUIET"] = "1"  # worker processes inherit it
        logging.getLogger("genrekit").setLevel(logging.WARNING)


CacheDirOption = typer.Option(DEFAULT_CACHE_DIR, help="Feature cache folder (env GENREKIT_CACHE).")
DatasetArg = typer.Argument(..., help="Dataset as PATH or KIND:PATH (kinds: gtzan, ccmusic, folder, csv).")


MAX_SONG_MINUTES = 360.0
MaxDurationOption = typer.Option(MAX_SONG_MINUTES, min=0.01, max=100_000, help="Longest song accepted, in "
                                 "minutes (longer: refused from its header, before decoding); raise it for longer "
                                 "recordings.")


def _summary_table(tracks, title):
    from .datasets import SPLITS, class_weights, labels_of

    labels = labels_of(tracks)
    weights = class_weights(tracks, labels)
    table = Table(title=title)
    for column in ["label", *SPLITS, "total", "class weight"]:
        table.add_column(column, justify="left" if column == "label" else "right")
    for label, weight in zip(labels, weights):  # a clip with a label set counts under each of its genres
        counts = [sum(label in t.label_set and t.split == split for t in tracks) for split in SPLITS]
        table.add_row(label, *map(str, counts), str(sum(counts)), f"{weight:.2f}")
    sets = [sum(len(t.label_set) > 1 and t.split == split for t in tracks) for split in SPLITS]
    if any(sets):
        table.add_row("(label sets)", *map(str, sets), str(sum(sets)), "", style="italic")
    totals = [sum(t.split == split for t in tracks) for split in SPLITS]
    table.add_row("all", *map(str, totals), str(len(tracks)), "", style="bold")
    groups = len({t.group for t in tracks})
    return table, f"{_count(len(tracks), 'clip')} in {_count(groups, 'group')} (no group in two splits)"


def _count(n, word):
    """`n` and `word`, plural unless `n` is 1."""
    return f"{n} {word}{'' if n == 1 else 's'}"


@app.command(cls=Command)
def show(file: Path = typer.Argument(..., help="Audio file to draw."),
         output: Path = typer.Option(None, "--output", "-o", help="PNG to write, or a folder for it (default: FILE's "
                                     "name with .png in the working folder, never beside the input)."),
         offset: float = typer.Option(0.0, help="Start, in seconds."),
         duration: float = typer.Option(30.0, help="Length to draw, in seconds.")):
    """Draw a clip's four representations (waveform, spectrogram, log-mel, chroma) in one PNG.

    Example: genrekit show song.mp3 --offset 60 -o pictures/"""
    from .audio import load_audio
    from .features import compute_features
    from .plots import plot_representations

    output = output or Path(".")
    if output.is_dir() or not output.suffix:  # a folder: `-o pics/` loses its slash on the way here
        if not output.is_dir():
            raise GenrekitError(f"{output}: folder not found (create it, or name a .png file)")
        output = output / f"{file.stem}.png"
    y = load_audio(file, offset=offset, duration=duration)
    plot_representations(compute_features(y), output, title=file.name, offset=offset)
    console.print(f"wrote {printable(str(output))}", highlight=False, markup=False)


EngineOption = typer.Option("local", help="local (this machine's processes) or ray (a Ray cluster; Ray comes "
                            "with genrekit's ray extra).")
AddressOption = typer.Option(None, help="With --engine ray: the cluster, auto (the one `ray start` runs here) or "
                             "HOST:PORT (default: RAY_ADDRESS, else the one `ray start` runs here, else a Ray "
                             "instance of this command's own).")


@app.command(cls=Command)
def features(dataset: str = DatasetArg,
             cache_dir: Path = CacheDirOption,
             workers: int = typer.Option(0, min=0, help="Worker processes (0: one per core).")):
    """Compute and cache the four representations of every clip of a dataset.

    Example: genrekit features gtzan:../shared/data/gtzan-mini"""
    from .cache import FeatureCache, fill_cache
    from .datasets import load_dataset

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


def _load_data(specs, seed=0):
    """One dataset, or several merged under the taxonomy."""
    from .datasets import load_dataset, merge

    datasets = [load_dataset(spec, seed=seed) for spec in specs]
    return datasets[0] if len(datasets) == 1 else merge(*datasets)


@app.command(cls=Command)
def models():
    """List the bundled trained models (their cards) and the architectures `train` trains.

    Example: genrekit models"""
    import json

    from .models import create_model, list_models
    from .predict import BUNDLED_MODELS

    for bundled, path in BUNDLED_MODELS.items():
        card = path.with_suffix(".json")
        if not card.is_file():
            console.print(f"no bundled {bundled} model ({path}); make it with genrekit train-bundled")
            continue
        _print_card(json.loads(card.read_text()), bundled, path)
        console.print()
    table = Table(title="Architectures (untrained: genrekit train --model NAME --data ... trains one)")
    for column in ("name", "representation", "parameters (10 genres)"):
        table.add_column(column)
    for name in list_models():
        model = create_model(name, 10)
        table.add_row(name, model.representation, f"{sum(p.numel() for p in model.parameters()):,}")
    console.print(table)


def _print_card(info, bundled, path):
    """A bundled model's card as lines people read: what it is, what it learned from, how it scores held out."""
    console.print(f"[bold]Bundled model {bundled!r}[/bold] ({path.name}, version {info.get('version', '?')}): "
                  f"{info['kind']}", markup=True, highlight=False)
    console.print(f"  genres ({len(info['labels'])}): {', '.join(info['labels'])}", highlight=False)
    if "recipe" in info:
        console.print(f"  recipe: {info['recipe']}", highlight=False, markup=False)
    data = info["training_data"]
    if isinstance(data, dict):
        for part, sources in data.items():
            for source, counts in sources.items():
                single = ", ".join(f"{label} {n}" for label, n in counts.items() if "|" not in label)
                sets = sum(n for label, n in counts.items() if "|" in label)
                console.print(f"  trained on ({part}) {source}: {sum(counts.values())} clips: {single}"
                              + (f"; {sets} with a set of genres" if sets else ""), highlight=False, markup=False)
    else:
        console.print(f"  trained on: {data}", highlight=False, markup=False)
    for name, result in info["held_out"].items():
        genres = ", ".join(f"{g} {a:.2f}" for g, a in result["per_label_accuracy"].items() if a is not None)
        console.print(f"  held out, {name}: accuracy {result['accuracy']:.3f} on {result['n']} clips; per genre: "
                      f"{genres}", highlight=False, markup=False)
    if "calibration" in info:
        c = info["calibration"]
        console.print(f"  calibration: ECE {c['ece_before']:.3f} raw, {c['ece_after']:.3f} with temperature "
                      f"{c['temperature']:.2f}", highlight=False)
    if "speed" in info:
        console.print(f"  speed: {info['speed']['ms_per_30s_torch']} ms per 30 s clip with torch "
                      f"({info['speed']['x_realtime_torch']}x realtime, {info['speed']['cpu_threads']} threads, "
                      f"load {info['speed']['load_average']})", highlight=False)


@app.command(cls=Command)
def train(model: str = typer.Option(..., help="Model name (see `genrekit models`)."),
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

    Example: genrekit train --model cnn-logmel --data ../shared/data/gtzan-mini --epochs 10 --out runs"""
    from .cache import FeatureCache
    from .checkpoints import load_checkpoint
    from .datasets import labels_of, select
    from .predict import BUNDLED_MODELS
    from .training import TrainConfig, train as train_model

    config = TrainConfig(model=model, epochs=epochs, batch_size=batch_size, optimizer=optimizer, lr=lr,
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

    from .bundled import train_bundled as make
    from .cache import FeatureCache

    card = make(out, gtzan=gtzan, real_extra=real_extra, renderings=renderings, refit=refit,
                cache=FeatureCache(cache_dir))
    for name, figures in card["held_out"].items():
        console.print(f"{name}: accuracy {figures['accuracy']:.3f} on {figures['n']} clips", highlight=False)
    console.print(json.dumps(card["calibration"]), highlight=False, markup=False)
    console.print(f"wrote {out / 'default.pt'} and {out / 'default.json'}", highlight=False, markup=False)


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
    from .datasets import SPLITS, select
    from .evaluation import clip_log_probs, classification_metrics, write_report
    from .predict import load

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
        known = [t.replace(label="|".join(g for g in t.label_set if g in classifier.labels)) for t in tracks]
        left_out = sum(not t.label for t in known)
        tracks = [t for t in known if t.label]  # a label set keeps the genres the model has
        if unknown:
            console.print(f"left out {left_out} clip(s) with labels the model lacks: {', '.join(unknown)}",
                          highlight=False, markup=False)
    if not tracks:
        raise GenrekitError(f"{', '.join(data)}: no clips {'the model knows ' if known_labels_only else ''}"
                            f"in the {split!r} split")
    overlap = _overlap_warning(model, tracks)
    if overlap:
        print(f"warning: {overlap}", file=sys.stderr)
    log_probs, targets = clip_log_probs(classifier.scorer, tracks)
    metrics = classification_metrics(targets, log_probs.argmax(1), classifier.labels)
    metrics["overlap"] = overlap
    stem, names = Path(model).stem, ", ".join(Path(spec.partition(":")[2] or spec).name for spec in data)
    report = write_report(metrics, out, f"{stem}.{split}", f"{stem} on {names} ({split})")
    console.print(report.read_text(), highlight=False, markup=False)
    console.print(f"wrote {report} and its .json and .png files", highlight=False, markup=False)


def _overlap_warning(model, tracks):
    """What to say when some of `tracks` were among the clips `model` learned from (or None)."""
    from .checkpoints import seen_clips
    from .digest import clip_id
    from .predict import BUNDLED_MODELS

    path = BUNDLED_MODELS[model] if model in BUNDLED_MODELS and not Path(model).exists() else Path(model)
    seen = seen_clips(path)
    if seen is None:
        return f"{path.name} does not record the clips it learned from: not checked for overlap with these data"
    ids = [clip_id(track) for track in tracks]
    trained = sum(i in seen["trained"] for i in ids)
    tuned = sum(i in seen["tuned"] and i not in seen["trained"] for i in ids)
    if not trained and not tuned:
        return None
    return (f"{trained} of these {len(ids)} clips were in the model's training data and {tuned} more in the data "
            "it was tuned on (early stopping, settings, calibration): these figures are not held out")


def _timeline_paths(sources, folder):
    """A chart per source in `folder`, `NAME.timeline.png`, the name cut to fit a file name's 255 bytes; a
    name several sources share gets its folder's name before it (`a-song.mp3`, `b-song.mp3`), and one still
    shared a counter (`song.mp3.2`)."""
    names = [Path(source).name for source in sources]
    shared = Counter(names)
    names = [name if shared[name] == 1 else f"{Path(source).resolve().parent.name}-{name}"
             for source, name in zip(sources, names)]
    names = [os.fsdecode(os.fsencode(name)[:200]) for name in names]
    shared, seen = Counter(names), Counter()
    paths = []
    for name in names:
        seen[name] += 1
        paths.append(folder / f"{name}{'' if shared[name] == 1 else f'.{seen[name]}'}.timeline.png")
    return paths


def _songs(paths):
    """Each path as given, a folder replaced by the audio files under it (sorted, found as `tag` finds them),
    and {folder: why} for the folders that give none: they stay in the list, to be reported."""
    songs, empty = [], {}
    for path in paths:
        scan = _scan(path) if _is_folder(path) else None
        songs.extend(scan.files if scan and scan.files else [path])
        if scan and not scan.files:
            unread = len(scan.skipped)
            empty[path] = (scan.skipped[0][1] if unread == 1 and scan.skipped[0][0] == path else
                           "folder without audio files" + (f" ({unread} entries could not be read)" if unread else ""))
    return songs, empty


def _scan(folder):
    from .datasets.folder import scan_folder  # genrekit.datasets loads scikit-learn: only when a folder is given

    return scan_folder(folder)


def _is_folder(path):
    try:
        return path.is_dir()
    except OSError:  # e.g. inside a folder that may not be searched: predicting it says so
        return False


@app.command(cls=Command)
def predict(files: list[Path] = typer.Argument(..., readable=False,  # checked per file: one cannot stop the batch
                                              help="Audio files of any length and format (wav, flac, mp3, ogg, "
                                                   "m4a, wma, ...: what libsndfile or FFmpeg reads), or folders "
                                                   "of them (searched as `tag` searches)."),
            model: Path = typer.Option(None, help="Checkpoint, ensemble or .onnx file "
                                                  "(default: the bundled model; 'fast': the faster bundled one)."),
            top: int = typer.Option(3, min=1, help="How many genres to show per file."),
            output_format: str = typer.Option("table", "--format", help="table, json or csv."),
            timeline: bool = typer.Option(False, help="Also give genre probabilities per window (JSON) and a PNG."),
            timeline_dir: Path = typer.Option(Path("timelines"), help="Folder for the timeline PNGs."),
            windows: int = typer.Option(None, min=1, help="Score only this many windows per song, spread evenly "
                                        "over it (faster on long songs; not with --timeline). Default: every "
                                        "window."),
            max_duration: float = MaxDurationOption):
    """Predict the genre of songs: files, or folders of them.

    A file that fails gets one line and the others go on (exit code 1; 2 when none could be predicted).

    Example: genrekit predict song.mp3 ~/Music/album --format json"""
    import csv as csv_module
    import json

    from .predict import load

    if output_format not in ("table", "json", "csv"):
        raise GenrekitError(f"--format must be table, json or csv, got {output_format!r}")
    if windows and timeline:
        raise GenrekitError("--windows and --timeline: a timeline scores every window")
    classifier = load(model, max_windows=windows, max_seconds=max_duration * 60)
    top = min(top, len(classifier.labels))  # --top 50 of 12 genres: all 12
    files, empty = _songs(files)
    results = [GenrekitError(f"{path}: {empty[path]}") if path in empty else result
               for path, result in zip(files, classifier.predict_many(files, progress=len(files) > 1))]
    failed = [(path, result) for path, result in zip(files, results) if isinstance(result, GenrekitError)]
    good = [result for result in results if not isinstance(result, GenrekitError)]
    if timeline:
        from .plots import plot_timeline  # matplotlib: only for timelines

        charts = _timeline_paths([result.source for result in good], timeline_dir)
        written = []
        for result, chart in zip(good, charts):
            try:
                plot_timeline(result, chart)
                written.append((result, chart))
            except OSError as error:  # the prediction stands; its picture is reported
                failed.append((result.source, GenrekitError(f"{chart}: timeline not written ({error.strerror})")))
        renamed = [f"{result.source} -> {chart.name}" for result, chart in written
                   if chart.name != f"{Path(result.source).name}.timeline.png"]
        if written:
            print(f"timelines: {_count(len(written), 'PNG')} in {timeline_dir}/"
                  + "".join(f"\n  {line}" for line in renamed), file=sys.stderr)
    if output_format == "json":
        rows = [{"source": str(path), "error": str(result)} if isinstance(result, GenrekitError)
                else result.to_dict(top=top, timeline=timeline) for path, result in zip(files, results)]
        print(json.dumps(rows, indent=2))
    elif output_format == "csv":
        writer = csv_module.writer(sys.stdout)
        writer.writerow(["path", "genre", "probability", *[f"top{k + 1}" for k in range(top)], "error", "warning"])
        for path, result in zip(files, results):
            if isinstance(result, GenrekitError):
                writer.writerow([printable(str(path)), "", "", *[""] * top, str(result), ""])
            else:
                ranked = result.top(top)
                writer.writerow([printable(str(path)), result.genre, f"{ranked[0][1]:.4f}",
                                 *[f"{g}:{p:.4f}" for g, p in ranked] + [""] * (top - len(ranked)), "",
                                 result.warning or ""])
    elif good:
        table = Table(title=f"Genres ({classifier.name})")
        table.add_column("file", overflow="fold")
        for column in ("genre", "probability", f"top {top}", "length"):
            table.add_column(column)
        for result in good:
            ranked = result.top(top)
            table.add_row(printable(Path(result.source).name), ranked[0][0], f"{ranked[0][1]:.0%}",
                          ", ".join(f"{g} {p:.0%}" for g, p in ranked), f"{result.duration:.0f} s")
        # piped or redirected: one line per file, whole names (on a terminal, long names fold)
        (console if console.is_terminal else Console(soft_wrap=True, width=10_000, markup=False)).print(table)
    for result in good:
        if result.warning:
            print(f"warning: {printable(result.source)}: {result.warning} (scored on what decodes)", file=sys.stderr)
    for path, error in failed:
        print(f"error: {error}", file=sys.stderr)
    if failed:
        raise typer.Exit(1 if good else 2)


@app.command(cls=Command)
def export(model: Path = typer.Argument(..., help="Checkpoint or ensemble file."),
           onnx: Path = typer.Option(..., "--onnx", help="ONNX file to write.")):
    """Export a model or ensemble to ONNX, for onnxruntime.

    The networks go into the graph; features and the combination run outside it (genrekit.export).

    Example: genrekit export runs/ensemble.pt --onnx model.onnx (then: genrekit predict song.mp3 --model
    model.onnx)"""
    from .export import export_onnx

    console.print(f"wrote {export_onnx(model, onnx)}")


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
    from .checkpoints import load_members
    from .datasets import select
    from .ensemble import Ensemble

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
def tag(directory: Path = typer.Argument(..., help="Music folder, scanned recursively for audio files."),
        db: Path = typer.Option(..., help="SQLite file of results (created; a re-run continues where it stopped)."),
        model: Path = typer.Option(None, help="Checkpoint, ensemble or .onnx file "
                                              "(default: the bundled model; 'fast': the faster bundled one)."),
        workers: int = typer.Option(0, min=0, help="Worker processes, or Ray tasks at once (0: one per core, or "
                                    "per CPU of the Ray cluster)."),
        engine: str = EngineOption,
        address: str = AddressOption,
        export: str = typer.Option(None, help="Also export the table: csv or json."),
        output: Path = typer.Option(None, help="File for --export (default: the database's name with .csv/.json); "
                                    "never the database, an audio file or a file that is not an earlier export."),
        write_tags: bool = typer.Option(False, "--write-tags", help="Write the genre into each file's tags (as "
                                        "Rock, Hip-Hop, R&B, ...); a file that has a genre keeps it."),
        force_tags: bool = typer.Option(False, "--force-tags", help="With --write-tags, replace genres files have "
                                        "(the table keeps what each had: 'written, was: ...')."),
        dry_run: bool = typer.Option(False, "--dry-run", help="With --write-tags, say what would be written; write "
                                     "no tag."),
        genre_name: list[str] = typer.Option([], help="How a genre is written into tags, LABEL=NAME (repeat), e.g. "
                                             "rnb_soul=Soul; default: Rock, Hip-Hop, R&B/Soul, ..."),
        restore_tags: bool = typer.Option(False, "--restore-tags", help="Put back the genres --force-tags replaced "
                                          "under DIRECTORY (as the table recorded them), and do nothing else."),
        retry_failed: bool = typer.Option(False, "--retry-failed", help="Try unchanged files that failed before again."),
        min_confidence: float = typer.Option(0.0, help="Give a file a genre (in the table and its tags) only when "
                                             "the top genre is at least this likely (0-1); the rest are "
                                             "'uncertain', with their top 3 in exports."),
        windows: int = typer.Option(None, min=1, help="Score only this many windows per song, spread evenly over "
                                    "it (much faster on long songs; a change re-tags the library). Default: "
                                    "every window."),
        max_duration: float = MaxDurationOption):
    """Tag a music library: the genre of every audio file under DIRECTORY, kept in a SQLite table.

    Re-runs only classify what changed; --write-tags also writes genres into the files (keeping the user's).

    Example: genrekit tag ~/Music --db ~/music-genres.sqlite --write-tags --dry-run"""
    from .exceptions import ParameterError
    from .engine import check_engine
    from .library import EXPORT_FORMATS, check_export_target, export_library, restore_tags as restore, tag_library
    from .predict import load

    if restore_tags:
        for path, what in restore(directory, db):
            console.print(f"{printable(path)}: {what}", highlight=False, markup=False)
        return
    names = dict(item.split("=", 1) for item in genre_name if "=" in item)
    if len(names) < len(genre_name):
        raise ParameterError(f"--genre-name takes LABEL=NAME, got {', '.join(i for i in genre_name if '=' not in i)}")
    check_engine(engine, address)
    if export is None and output is not None:
        export = output.suffix.lstrip(".").lower()
    if export is not None:
        export = export.lower()
        if export not in EXPORT_FORMATS:
            raise ParameterError(f"--export must be one of {', '.join(EXPORT_FORMATS)}, got {export!r}")
        output = output or db.with_suffix(f".{export}")
        check_export_target(output, export, db)  # before the work, not after it
    summary = tag_library(directory, db, load(model, max_windows=windows, max_seconds=max_duration * 60),
                          workers=workers or None, engine=engine, address=address,
                          write_tags=write_tags, retry_failed=retry_failed, min_confidence=min_confidence,
                          force_tags=force_tags, dry_run=dry_run, genre_names=names)
    if summary.total == 0 and not summary.not_scanned:  # as predict: nothing to do is an error, not a success
        raise GenrekitError(f"{printable(str(directory))}: folder without audio files")
    console.print(summary.line(), highlight=False, markup=False)
    for path, reason in summary.failures + summary.not_scanned:
        console.print(f"{printable(path)}: {reason}", style="red", highlight=False, markup=False)
    for path, warning in summary.warnings:
        console.print(f"{printable(path)}: {warning} (scored on what decodes)", style="yellow", highlight=False,
                      markup=False)
    if write_tags:
        planned = summary.tags_written if dry_run else 0  # listed below with the files left alone
        console.print(f"genre tags {'that would be ' if dry_run else ''}written: {summary.tags_written}, not "
                      f"written: {len(summary.tag_problems) - planned}", highlight=False, markup=False)
        for path, reason in summary.tag_problems:
            console.print(f"{printable(path)}: tag {reason}", style="yellow", highlight=False, markup=False)
    if export is not None:
        rows = export_library(db, output, export)
        console.print(f"wrote {printable(output)} ({rows} rows)", highlight=False, markup=False)
    if not summary.ok:
        raise typer.Exit(1)


@app.command(cls=Command)
def embed(dataset: str = DatasetArg,
          out: Path = typer.Option(..., help="New folder of Parquet shards (e.g. corpus.parquet), outside the "
                                   "dataset."),
          model: str = typer.Option("backbone-musicnn", help="Registered model whose frozen part embeds."),
          window_seconds: float = typer.Option(3.0, help="Window length, as `genrekit train --window-seconds`."),
          workers: int = typer.Option(0, min=0, help="Worker processes, or Ray tasks at once (0: one per core, or per CPU "
                                      "of the Ray cluster)."),
          engine: str = EngineOption,
          address: str = AddressOption):
    """Cache a dataset's window features through a frozen network, for `train --features`.

    Writes Parquet shards that `genrekit train --features` reads instead of computing them.

    Example: genrekit embed ../shared/data/gtzan-mini --out gtzan.parquet"""
    from .datasets import load_dataset
    from .embedding import embed_corpus
    from .engine import check_engine

    check_engine(engine, address)
    summary = embed_corpus(load_dataset(dataset), out, model=model, window_seconds=window_seconds,
                           workers=workers or None, engine=engine, address=address)
    console.print(f"wrote {out}: {summary.windows} windows of {summary.tracks} clips in {summary.shards} shards, "
                  f"{len(summary.failures)} failed", highlight=False, markup=False)
    for key, reason in summary.failures:
        console.print(f"{key}: {reason}", style="red", highlight=False, markup=False)
    if summary.failures:
        raise typer.Exit(1)


@app.command(cls=Command)
def serve(model: Path = typer.Option(None, help="Checkpoint, ensemble or .onnx file "
                                                "(default: the bundled model; 'fast': the faster bundled one)."),
          host: str = typer.Option("127.0.0.1", help="Address to listen on (0.0.0.0: every interface)."),
          port: int = typer.Option(8000, min=0, max=65535, help="Port to listen on (0: any free one)."),
          max_upload_mb: float = typer.Option(200.0, min=0, max=2**20, help="Largest upload accepted, in MB "
                                              "(larger: HTTP 413)."),
          max_duration: float = typer.Option(20.0, min=0, max=10_000, help="Longest audio accepted, in minutes "
                                             "(longer: HTTP 413, before decoding more than that)."),
          max_concurrent: int = typer.Option(2, min=1, help="Predictions run at once."),
          max_waiting: int = typer.Option(4, min=0, help="Further requests admitted to wait (more: HTTP 503, Retry-After)."),
          timeout: float = typer.Option(30.0, min=0, max=86_400, help="Seconds a client may take for its request headers, or pause "
                                        "its upload (then disconnected, or HTTP 408)."),
          min_upload_kbps: float = typer.Option(16.0, min=0.001, help="Slowest upload kept after its first --timeout "
                                                "seconds, in kB/s on average (slower: HTTP 408)."),
          upload_seconds: float = typer.Option(900.0, min=1, help="Longest an upload may take (then HTTP 408).")):
    """Serve the web page and the HTTP API for genre prediction.

    The page is at /, the API at /api/predict, /api/health and /api/labels.

    Example: genrekit serve --port 8000"""
    import uvicorn

    from .server import create_app, listen, server_config

    sock = listen(host, port)  # an address in use fails here, before the page is announced
    web_app = create_app(model, max_upload_mb=max_upload_mb, max_minutes=max_duration, max_concurrent=max_concurrent,
                         max_waiting=max_waiting, timeout=timeout, min_upload_kbps=min_upload_kbps,
                         upload_seconds=upload_seconds)
    console.print(f"model {web_app.state.classifier.name}; page at http://{host}:{sock.getsockname()[1]}/ "
                  "(Ctrl-C stops)", highlight=False, markup=False)
    uvicorn.Server(server_config(web_app, host=host, port=port, timeout=timeout)).run(sockets=[sock])


def _size(n):
    """Bytes for people: 5.4 MB, 8.1 GB."""
    return f"{n / 1e6:.1f} MB" if n < 1e9 else f"{n / 1e9:.1f} GB"


def _cache_line(cache_dir):
    from .cache import cache_parts

    total = sum(size for _, size in cache_parts(cache_dir).values())
    return f"cache: {cache_dir}, {_size(total)} (genrekit cache info / clear)"


@cache_app.command("info", cls=Command)
def cache_info(cache_dir: Path = CacheDirOption):
    """What the cache folder holds: features, embeddings, ONNX exports.

    A feature set takes about 5.7 MB per 30 s clip.

    Example: genrekit cache info"""
    from .cache import cache_parts

    parts = cache_parts(cache_dir)
    table = Table(title=f"Cache {cache_dir}")
    for column in ("folder", "kind", "files", "size"):
        table.add_column(column, justify="left" if column in ("folder", "kind") else "right")
    for folder, (files, size) in parts.items():
        kind = folder.name if folder.name in ("embeddings", "onnx") else "features"
        table.add_row(folder.name, kind, str(files), _size(size))
    table.add_row("all", "", str(sum(f for f, _ in parts.values())), _size(sum(s for _, s in parts.values())),
                  style="bold")
    console.print(table)


@cache_app.command("clear", cls=Command)
def cache_clear(cache_dir: Path = CacheDirOption,
                yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask first.")):
    """Delete the cached features, embeddings and ONNX exports (remade when needed).

    Other folders in it stay.

    Example: genrekit cache clear"""
    import shutil

    from .cache import cache_parts

    parts = cache_parts(cache_dir)
    total = sum(size for _, size in parts.values())
    if parts and not yes:
        typer.confirm(f"delete {_size(total)} in {len(parts)} folder(s) of {cache_dir}?", abort=True)
    for folder in parts:
        shutil.rmtree(folder)
    console.print(f"freed {_size(total)} in {cache_dir}", highlight=False, markup=False)


@data_app.command("render-midi", cls=Command)
def render_midi(source: Path = typer.Argument(..., help="Folder with songs.csv and <genre>/<id>.mid files."),
                out: Path = typer.Argument(..., help="Folder for the WAV clips and manifest.csv."),
                mode: str = typer.Option("middle", help="middle: one excerpt per song; all: every 30 s snippet."),
                clip_seconds: float = typer.Option(30.0, help="Length of each clip."),
                workers: int = typer.Option(0, min=0, help="Rendering processes (0: one per core)."),
                timeout: float = typer.Option(60.0, help="Seconds one FluidSynth run may take."),
                split: list[str] = typer.Option(None, help="Only songs of these splits of songs.csv (train, valid, "
                                                "test; repeat, or comma-separated)."),
                limit_per_genre: int = typer.Option(None, help="At most this many songs per split and genre, in "
                                                    "songs.csv order.")):
    """Render a MIDI genre collection to 22050 Hz mono clips with FluidSynth.

    Rendered clips are cached; failures are listed in OUT/failures.csv.

    Example: genrekit data render-midi ../shared/data/midi-genres clips/ --split test"""
    from .midi.render import render_midi_corpus

    splits = [name.strip() for value in split or [] for name in value.split(",") if name.strip()] or None
    corpus = render_midi_corpus(source, out, mode=mode, clip_seconds=clip_seconds, workers=workers or None,
                                timeout=timeout, splits=splits, limit_per_genre=limit_per_genre)
    table, line = _summary_table(corpus, str(out))
    console.print(table)
    console.print(f"{line}; {corpus.rendered} rendered, {corpus.cached} reused, {len(corpus.failures)} failed "
                  f"(see {out / 'failures.csv'})", highlight=False, markup=False)


@data_app.command("summary", cls=Command)
def data_summary(dataset: str = DatasetArg):
    """Clips per genre and split, groups, and the class weights that balance training.

    Example: genrekit data summary ../shared/data/gtzan-mini"""
    table, line = _summary_table(_load_data([dataset]), dataset)
    console.print(table)
    console.print(line)


# ------------------------------------------------------------------------------ experiment (paper, section 3)

def _experiment_report(result, out, name, title):
    from .experiments import write_experiment

    json_path, markdown, picture = write_experiment(result, out, name, title)
    console.print(markdown.read_text(), highlight=False, markup=False)
    console.print(f"wrote {markdown}, {json_path} and {picture}", highlight=False, markup=False)
    if result["failures"]:
        console.print(f"{result['n_failed']} clip(s) skipped (listed in {json_path})", style="yellow",
                      highlight=False, markup=False)
        raise typer.Exit(1)


@experiment_app.command("variants", cls=Command)
def experiment_variants(
        model: Path = typer.Option(None, help="Checkpoint, ensemble or .onnx file "
                                              "(default: the bundled model; 'fast': the faster bundled one)."),
        data: list[str] = typer.Option(..., help="Dataset(s), PATH or KIND:PATH; several are merged."),
        variants: list[str] = typer.Option(None, help="Variants to run (repeat, or comma-separated; default: "
                                                      "speed, stretch, pitch, noise, low-pass and MP3 ones)."),
        split: str = typer.Option("test", help="Split to evaluate on."),
        out: Path = typer.Option(Path("out/experiments"), help="Folder for variants.{md,json,png}.")):
    """Accuracy per genre under song variants: sped up, stretched, pitch-shifted, noisy, low-passed, MP3.

    Each variant's drop from the original clips (paper 3.1, Figure 1).

    Example: genrekit experiment variants --data gtzan:../shared/data/gtzan-mini --split valid"""
    from .datasets import select
    from .experiments import evaluate_variants
    from .predict import load
    from .variants import check_variants

    names = check_variants([name.strip() for value in variants or [] for name in value.split(",") if name.strip()]) \
        or None
    tracks = select(_load_data(data), split)
    if not tracks:
        raise GenrekitError(f"{', '.join(data)}: no clips in the {split!r} split")
    result = evaluate_variants(load(model), tracks, names)
    result.update(data=", ".join(data), split=split)
    _experiment_report(result, out, "variants", f"Song variants ({split} split)")


@experiment_app.command("instrumental-acappella", cls=Command)
def experiment_instrumental_acappella(
        model: Path = typer.Option(None, help="Checkpoint, ensemble or .onnx file "
                                              "(default: the bundled model; 'fast': the faster bundled one)."),
        midi_source: Path = typer.Option(..., help="MIDI collection: songs.csv and <genre>/<id>.mid files."),
        midi_audio: Path = typer.Option(None, help="Its rendered clips (`genrekit data render-midi`, mode middle): "
                                                   "originals reused from there; missing ones are rendered."),
        out: Path = typer.Option(Path("out/experiments"), help="Folder for the report; clips go to OUT/versions/."),
        split: str = typer.Option("test", help="Split of songs.csv to use."),
        separation: bool = typer.Option(True, help="Also evaluate background / foreground separated from the "
                                                   "original audio (approximate)."),
        limit_per_genre: int = typer.Option(None, help="At most this many songs per genre."),
        workers: int = typer.Option(0, min=0, help="Rendering processes (0: one per core)."),
        timeout: float = typer.Option(60.0, help="Seconds one FluidSynth run may take.")):
    """Accuracy per genre on instrumental and a-cappella versions of MIDI songs.

    Exact renders of the MIDI tracks, and background / foreground separated from the audio (approximate; paper
    3.2).

    Example: genrekit experiment instrumental-acappella --midi-source ../shared/data/midi-genres
    --limit-per-genre 5"""
    from .experiments import evaluate_versions
    from .predict import load
    from .midi.versions import render_versions

    classifier = load(model)
    versions = render_versions(midi_source, out / "versions", midi_audio=midi_audio, split=split,
                               workers=workers or None, timeout=timeout, limit_per_genre=limit_per_genre)
    result = evaluate_versions(classifier, versions, separation=separation)
    result.update(data=str(midi_source), split=split)
    result["render_failures"] = [{"path": f.path, "window": f.window, "reason": f.reason} for f in versions.failures]
    _experiment_report(result, out, "instrumental-acappella", f"Instrumental and a-cappella ({split} split)")


@app.command(cls=Command)
def demo(output: Path = typer.Option(Path("out/demo"), help="Folder for the example songs and pictures."),
         dataset: str = typer.Option(None, help="Dataset to summarise (default: ../shared/data/gtzan-mini if present).")):
    """Make example songs, draw one, predict their genres and summarise a dataset.

    Example: genrekit demo --output out/demo"""
    from .audio import load_audio
    from .examples import write_example_songs
    from .features import compute_features
    from .plots import plot_representations

    songs = write_example_songs(output)
    shown = songs[-1]
    feats = compute_features(load_audio(shown))
    picture = plot_representations(feats, output / f"{shown.stem}.png", title=shown.name)
    table = Table(title=f"Representations of {shown.name}")
    for column in ("representation", "shape", "min", "max"):
        table.add_column(column)
    for name, value in feats.items():
        table.add_row(name, str(value.shape), f"{value.min():.2f}", f"{value.max():.2f}")
    console.print(table)
    console.print(f"pictures: {picture}")
    from .predict import DEFAULT_MODEL

    if DEFAULT_MODEL.is_file():
        predict(songs, model=None, top=3, output_format="table", timeline=True, timeline_dir=output / "timelines",
                windows=None, max_duration=MAX_SONG_MINUTES)
    else:
        console.print(f"no bundled model at {DEFAULT_MODEL}: make it with genrekit train-bundled")
    default = Path(__file__).resolve().parents[2] / "shared" / "data" / "gtzan-mini"
    dataset = dataset or (str(default) if default.is_dir() else None)
    if dataset:
        data_summary(dataset)
    else:
        console.print("no dataset found to summarise (pass --dataset PATH)")


def main():
    """Entry point: run the app, turning genrekit's errors, and files that cannot be written or read, into one
    line and exit code 2."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    logging.getLogger("genrekit").setLevel(logging.INFO)  # genrekit's notes (a first-use export); --quiet: none
    try:
        app()
    except GenrekitError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    except OSError as error:  # e.g. an output in a folder that may not be written, or a full disk
        where = f"{os.fsdecode(error.filename)}: " if error.filename is not None else ""
        print(f"error: {where}{(error.strerror or str(error)).lower()}", file=sys.stderr)
        sys.exit(2)
