"""The `genrekit` command: thin typer wrappers around the library."""

import logging
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from .cache import DEFAULT_CACHE_DIR, FeatureCache, fill_cache
from .exceptions import GenrekitError

app = typer.Typer(help="Predict the genre of music from audio.", no_args_is_help=True, add_completion=False)
data_app = typer.Typer(help="Datasets: summaries and rendering.", no_args_is_help=True)
app.add_typer(data_app, name="data")
console = Console(soft_wrap=True)

DatasetArg = typer.Argument(..., help="Dataset as PATH or KIND:PATH (kinds: gtzan, ccmusic, folder, csv).")


def _summary_table(tracks, title):
    from .datasets import SPLITS, class_weights, labels_of

    labels = labels_of(tracks)
    weights = class_weights(tracks, labels)
    table = Table(title=title)
    for column in ["label", *SPLITS, "total", "class weight"]:
        table.add_column(column, justify="left" if column == "label" else "right")
    for label, weight in zip(labels, weights):
        counts = [sum(t.label == label and t.split == split for t in tracks) for split in SPLITS]
        table.add_row(label, *map(str, counts), str(sum(counts)), f"{weight:.2f}")
    totals = [sum(t.split == split for t in tracks) for split in SPLITS]
    table.add_row("all", *map(str, totals), str(len(tracks)), "", style="bold")
    groups = len({t.group for t in tracks})
    return table, f"{len(tracks)} clips in {groups} groups (no group in two splits)"


@app.command()
def show(file: Path = typer.Argument(..., help="Audio file to draw."),
         output: Path = typer.Option(None, "--output", "-o", help="PNG to write (default: FILE.png beside it)."),
         offset: float = typer.Option(0.0, help="Start, in seconds."),
         duration: float = typer.Option(30.0, help="Length to draw, in seconds.")):
    """Draw the four representations of a clip (waveform, spectrogram, log-mel, chroma) in one PNG."""
    from .audio import load_audio
    from .features import compute_features
    from .plots import plot_representations

    y = load_audio(file, offset=offset, duration=duration)
    output = output or file.with_suffix(".png")
    plot_representations(compute_features(y), output, title=file.name)
    console.print(f"wrote {output}")


@app.command()
def features(dataset: str = DatasetArg,
             cache_dir: Path = typer.Option(DEFAULT_CACHE_DIR, help="Feature cache folder (env GENREKIT_CACHE)."),
             workers: int = typer.Option(0, help="Worker processes (0: one per core).")):
    """Compute and cache the four representations of every clip of a dataset."""
    from .datasets import load_dataset

    tracks = load_dataset(dataset)
    status = fill_cache(tracks, FeatureCache(cache_dir), workers=workers or None)
    failed = {key: state for key, state in status.items() if state.startswith("failed")}
    computed = sum(state == "computed" for state in status.values())
    console.print(f"{computed} computed, {len(status) - computed - len(failed)} already cached, "
                  f"{len(failed)} failed; cache: {cache_dir}")
    for key, state in failed.items():
        console.print(f"[red]{key}: {state}[/red]", highlight=False, markup=True)
    if failed:
        raise typer.Exit(1)


@data_app.command("summary")
def data_summary(dataset: str = DatasetArg):
    """Clips per label and split, groups, and the class weights that balance training."""
    from .datasets import load_dataset

    table, line = _summary_table(load_dataset(dataset), dataset)
    console.print(table)
    console.print(line)


@app.command()
def demo(output: Path = typer.Option(Path("out/demo"), help="Folder for the example clip and its pictures."),
         dataset: str = typer.Option(None, help="Dataset to summarise (default: ../shared/data/gtzan-mini if present).")):
    """Synthesise the built-in example clip, draw its four representations and summarise a dataset."""
    from .audio import load_audio
    from .examples import write_example_clip
    from .features import compute_features
    from .plots import plot_representations

    output.mkdir(parents=True, exist_ok=True)
    clip = write_example_clip(output / "example.wav")
    feats = compute_features(load_audio(clip))
    picture = plot_representations(feats, output / "example.png", title="genrekit example clip")
    table = Table(title=f"Representations of {clip}")
    for column in ("representation", "shape", "min", "max"):
        table.add_column(column)
    for name, value in feats.items():
        table.add_row(name, str(value.shape), f"{value.min():.2f}", f"{value.max():.2f}")
    console.print(table)
    console.print(f"pictures: {picture}")
    default = Path(__file__).resolve().parents[2] / "shared" / "data" / "gtzan-mini"
    dataset = dataset or (str(default) if default.is_dir() else None)
    if dataset:
        data_summary(dataset)
    else:
        console.print("no dataset found to summarise (pass --dataset PATH)")


def main():
    """Entry point: run the app, turning genrekit's errors into one line and exit code 2."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    try:
        app()
    except GenrekitError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
