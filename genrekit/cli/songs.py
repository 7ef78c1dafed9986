"""The commands people run on their music: predict, tag, serve, show, models."""

import sys
from pathlib import Path

import typer
from rich.table import Table

from ..exceptions import GenrekitError, printable
from .common import (AddressOption, Command, EngineOption, MaxDurationOption, _count, app, console)


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
    from ..outputs import FORMATS, timeline_paths, write_results
    from ..predict import load, songs_in

    if output_format not in FORMATS:
        raise GenrekitError(f"--format must be one of {', '.join(FORMATS)}, got {output_format!r}")
    if windows and timeline:
        raise GenrekitError("--windows and --timeline: a timeline scores every window")
    classifier = load(model, max_windows=windows, max_seconds=max_duration * 60)
    top = min(top, len(classifier.labels))  # --top 50 of 12 genres: all 12
    files, empty = songs_in(files)
    results = [GenrekitError(f"{path}: {empty[path]}") if path in empty else result
               for path, result in zip(files, classifier.predict_many(files, progress=len(files) > 1))]
    failed = [(path, result) for path, result in zip(files, results) if isinstance(result, GenrekitError)]
    good = [result for result in results if not isinstance(result, GenrekitError)]
    if timeline:
        from ..plots import plot_timeline  # matplotlib: only for timelines

        charts = timeline_paths([result.source for result in good], timeline_dir)
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
    write_results(output_format, files, results, top=top, timeline=timeline, model_name=classifier.name)
    for result in good:
        if result.warning:
            print(f"warning: {printable(result.source)}: {result.warning} (scored on what decodes)", file=sys.stderr)
    for path, error in failed:
        print(f"error: {error}", file=sys.stderr)
    if failed:
        raise typer.Exit(1 if good else 2)


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
    from ..exceptions import ParameterError
    from ..engine import check_engine
    from ..library import EXPORT_FORMATS, check_export_target, export_library, restore_tags as restore, tag_library
    from ..predict import load

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

    from ..server import create_app, listen, server_config

    sock = listen(host, port)  # an address in use fails here, before the page is announced
    web_app = create_app(model, max_upload_mb=max_upload_mb, max_minutes=max_duration, max_concurrent=max_concurrent,
                         max_waiting=max_waiting, timeout=timeout, min_upload_kbps=min_upload_kbps,
                         upload_seconds=upload_seconds)
    console.print(f"model {web_app.state.classifier.name}; page at http://{host}:{sock.getsockname()[1]}/ "
                  "(Ctrl-C stops)", highlight=False, markup=False)
    uvicorn.Server(server_config(web_app, host=host, port=port, timeout=timeout)).run(sockets=[sock])


@app.command(cls=Command)
def show(file: Path = typer.Argument(..., help="Audio file to draw."),
         output: Path = typer.Option(None, "--output", "-o", help="PNG to write, or a folder for it (default: FILE's "
                                     "name with .png in the working folder, never beside the input)."),
         offset: float = typer.Option(0.0, help="Start, in seconds."),
         duration: float = typer.Option(30.0, help="Length to draw, in seconds.")):
    """Draw a clip's four representations (waveform, spectrogram, log-mel, chroma) in one PNG.

    Example: genrekit show song.mp3 --offset 60 -o pictures/"""
    from ..audio import load_audio
    from ..features import compute_features
    from ..plots import plot_representations

    output = output or Path(".")
    if output.is_dir() or not output.suffix:  # a folder: `-o pics/` loses its slash on the way here
        if not output.is_dir():
            raise GenrekitError(f"{output}: folder not found (create it, or name a .png file)")
        output = output / f"{file.stem}.png"
    y = load_audio(file, offset=offset, duration=duration)
    plot_representations(compute_features(y), output, title=file.name, offset=offset)
    console.print(f"wrote {printable(str(output))}", highlight=False, markup=False)


@app.command(cls=Command)
def models():
    """List the bundled trained models (their cards) and the architectures `train` trains.

    Example: genrekit models"""
    import json

    from ..models import create_model, list_models, list_networks
    from ..predict import BUNDLED_MODELS

    for bundled, path in BUNDLED_MODELS.items():
        card = path.with_suffix(".json")
        if not card.is_file():
            console.print(f"no bundled {bundled} model ({path}); make it with genrekit train-bundled")
            continue
        _print_card(json.loads(card.read_text()), bundled, path)
        console.print()
    networks = Table(title="Pretrained networks (genrekit.models.pretrained; backbone-musicnn's network=NAME)")
    for column in ("network", "adaptable", "what it is"):
        networks.add_column(column, overflow="fold")
    for network in list_networks():
        networks.add_row(network.name, "yes" if network.adaptable else "frozen only", network.description)
    console.print(networks)
    table = Table(title="Architectures (untrained: genrekit train --architecture NAME --data ... trains one)")
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
