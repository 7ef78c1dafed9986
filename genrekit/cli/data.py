"""The commands of datasets, the paper's experiments, the cache and the demo."""

from pathlib import Path

import typer
from rich.table import Table

from ..exceptions import GenrekitError
from .common import (MAX_SONG_MINUTES, CacheDirOption, Command, DatasetArg, _load_data, _size, _summary_table, app,
                     cache_app, console, data_app, experiment_app)
from .songs import predict

DEMO_DATASET = Path(__file__).resolve().parents[3] / "shared" / "data" / "gtzan-mini"
"""What `genrekit demo` summarises by default: gtzan-mini in the `shared` folder beside the repository."""


@data_app.command("summary", cls=Command)
def data_summary(dataset: str = DatasetArg):
    """Clips per genre and split, groups, and the class weights that balance training.

    Example: genrekit data summary ../shared/data/gtzan-mini"""
    table, line = _summary_table(_load_data([dataset]), dataset)
    console.print(table)
    console.print(line)


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
    from ..midi.render import render_midi_corpus

    splits = [name.strip() for value in split or [] for name in value.split(",") if name.strip()] or None
    corpus = render_midi_corpus(source, out, mode=mode, clip_seconds=clip_seconds, workers=workers or None,
                                timeout=timeout, splits=splits, limit_per_genre=limit_per_genre)
    table, line = _summary_table(corpus, str(out))
    console.print(table)
    console.print(f"{line}; {corpus.rendered} rendered, {corpus.cached} reused, {len(corpus.failures)} failed "
                  f"(see {out / 'failures.csv'})", highlight=False, markup=False)


def _experiment_report(result, out, name, title):
    from ..experiments import write_experiment

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
    from ..datasets import select
    from ..experiments import evaluate_variants
    from ..predict import load
    from ..variants import check_variants

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
    from ..experiments import evaluate_versions
    from ..predict import load
    from ..midi.versions import render_versions

    classifier = load(model)
    versions = render_versions(midi_source, out / "versions", midi_audio=midi_audio, split=split,
                               workers=workers or None, timeout=timeout, limit_per_genre=limit_per_genre)
    result = evaluate_versions(classifier, versions, separation=separation)
    result.update(data=str(midi_source), split=split)
    result["render_failures"] = [{"path": f.path, "window": f.window, "reason": f.reason} for f in versions.failures]
    _experiment_report(result, out, "instrumental-acappella", f"Instrumental and a-cappella ({split} split)")


@cache_app.command("info", cls=Command)
def cache_info(cache_dir: Path = CacheDirOption):
    """What the cache folder holds: features, embeddings, ONNX exports.

    A feature set takes about 5.7 MB per 30 s clip.

    Example: genrekit cache info"""
    from ..cache import cache_parts

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

    from ..cache import cache_parts

    parts = cache_parts(cache_dir)
    total = sum(size for _, size in parts.values())
    if parts and not yes:
        typer.confirm(f"delete {_size(total)} in {len(parts)} folder(s) of {cache_dir}?", abort=True)
    for folder in parts:
        shutil.rmtree(folder)
    console.print(f"freed {_size(total)} in {cache_dir}", highlight=False, markup=False)


@app.command(cls=Command)
def demo(output: Path = typer.Option(Path("out/demo"), help="Folder for the example songs and pictures."),
         dataset: str = typer.Option(None, help="Dataset to summarise (default: ../shared/data/gtzan-mini if present).")):
    """Make example songs, draw one, predict their genres and summarise a dataset.

    Example: genrekit demo --output out/demo"""
    from ..audio import load_audio
    from ..examples import write_example_songs
    from ..features import compute_features
    from ..plots import plot_representations

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
    from ..predict import DEFAULT_MODEL

    if DEFAULT_MODEL.is_file():
        predict(songs, model=None, top=3, output_format="table", timeline=True, timeline_dir=output / "timelines",
                windows=None, max_duration=MAX_SONG_MINUTES)
    else:
        console.print(f"no bundled model at {DEFAULT_MODEL}: make it with genrekit train-bundled")
    dataset = dataset or (str(DEMO_DATASET) if DEMO_DATASET.is_dir() else None)
    if dataset:
        data_summary(dataset)
    else:
        console.print("no dataset found to summarise (pass --dataset PATH)")
