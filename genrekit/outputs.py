"""What `genrekit predict` writes: its results as a table, JSON or CSV on stdout, and where each file's timeline
picture goes. A new format is one function and its entry in `FORMATS`."""

import csv
import json
import os
import sys
from collections import Counter
from pathlib import Path

from rich.console import Console
from rich.table import Table

from .exceptions import GenrekitError, printable


def write_json(files, results, *, top, timeline, model_name, stream):
    """One object per file: `Prediction.to_dict`, or {"source", "error"} for a file that failed."""
    rows = [{"source": str(path), "error": str(result)} if isinstance(result, GenrekitError)
            else result.to_dict(top=top, timeline=timeline) for path, result in zip(files, results)]
    stream.write(json.dumps(rows, indent=2) + "\n")


def write_csv(files, results, *, top, timeline, model_name, stream):
    """One row per file: path, genre, its probability, the top genres as `genre:p`, error, warning."""
    writer = csv.writer(stream)
    writer.writerow(["path", "genre", "probability", *[f"top{k + 1}" for k in range(top)], "error", "warning"])
    for path, result in zip(files, results):
        if isinstance(result, GenrekitError):
            writer.writerow([printable(str(path)), "", "", *[""] * top, str(result), ""])
        else:
            ranked = result.top(top)
            writer.writerow([printable(str(path)), result.genre, f"{ranked[0][1]:.4f}",
                             *[f"{g}:{p:.4f}" for g, p in ranked] + [""] * (top - len(ranked)), "",
                             result.warning or ""])


def write_table(files, results, *, top, timeline, model_name, stream):
    """A table of the files that were predicted (failures go to stderr); on a terminal long names fold, piped
    or redirected every file is one line with its whole name."""
    good = [result for result in results if not isinstance(result, GenrekitError)]
    if not good:
        return
    table = Table(title=f"Genres ({model_name})")
    table.add_column("file", overflow="fold")
    for column in ("genre", "probability", f"top {top}", "length"):
        table.add_column(column)
    for result in good:
        ranked = result.top(top)
        table.add_row(printable(Path(result.source).name), ranked[0][0], f"{ranked[0][1]:.0%}",
                      ", ".join(f"{g} {p:.0%}" for g, p in ranked), f"{result.duration:.0f} s")
    console = Console(file=stream, soft_wrap=True, markup=False)
    if not console.is_terminal:
        console.width = 10_000
    console.print(table)


FORMATS = {"table": write_table, "json": write_json, "csv": write_csv}
"""`predict --format` NAME -> the function that writes it."""


def write_results(output_format, files, results, *, top, timeline=False, model_name="", stream=None):
    """Write `results` (a `Prediction` or the `GenrekitError` of each of `files`) in `output_format`."""
    if output_format not in FORMATS:
        raise GenrekitError(f"--format must be one of {', '.join(FORMATS)}, got {output_format!r}")
    FORMATS[output_format](files, results, top=top, timeline=timeline, model_name=model_name,
                           stream=stream or sys.stdout)


def timeline_paths(sources, folder):
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
        paths.append(Path(folder) / f"{name}{'' if shared[name] == 1 else f'.{seen[name]}'}.timeline.png")
    return paths
