"""What every command shares: the typer app and its groups, help that reads well, common options, the console."""

import logging
import os
import typing
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

from .. import __version__
from ..constants import DEFAULT_CACHE_DIR


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


EngineOption = typer.Option("local", help="local (this machine's processes) or ray (a Ray cluster; Ray comes "
                            "with genrekit's ray extra).")


AddressOption = typer.Option(None, help="With --engine ray: the cluster, auto (the one `ray start` runs here) or "
                             "HOST:PORT (default: RAY_ADDRESS, else the one `ray start` runs here, else a Ray "
                             "instance of this command's own).")


def _summary_table(tracks, title):
    from ..datasets import SPLITS, class_weights, labels_of

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


def _load_data(specs, seed=0):
    """One dataset, or several merged under the taxonomy."""
    from ..datasets import load_dataset, merge

    datasets = [load_dataset(spec, seed=seed) for spec in specs]
    return datasets[0] if len(datasets) == 1 else merge(*datasets)


def _size(n):
    """Bytes for people: 5.4 MB, 8.1 GB."""
    return f"{n / 1e6:.1f} MB" if n < 1e9 else f"{n / 1e9:.1f} GB"


def _cache_line(cache_dir):
    from ..cache import cache_parts

    total = sum(size for _, size in cache_parts(cache_dir).values())
    return f"cache: {cache_dir}, {_size(total)} (genrekit cache info / clear)"
