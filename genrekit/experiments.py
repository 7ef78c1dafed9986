"""The paper's experiments (section 3): how a trained model or ensemble holds up on versions of songs.

* `evaluate_variants`: the clips of a split as they are ("original") and under each audio variant of
  `genrekit.variants.VARIANTS` (sped up, time-stretched, pitch-shifted, noisy, low-passed, MP3);
* `evaluate_versions`: songs of a MIDI collection as original, instrumental and a-cappella renders (exact,
  `genrekit.midi.versions.render_versions`), plus background / foreground split from the original audio
  (`genrekit.variants.separate`, approximate).

Every clip is loaded once, every condition of it is predicted with `Classifier.predict(y, sr=...)`, and
the clip counts only if all its conditions went through (a clip that fails anywhere is reported and
left out of every condition), so the conditions compare clip for clip. Results: accuracy and macro-F1 per
condition, per-genre accuracy, and the drop from the original (original minus condition: positive is
worse), written as JSON, markdown and a grouped bar chart (per genre, one bar per condition: the
paper's Figure 1) by `write_experiment`.
"""

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .atomic import write_text
from .audio import load_audio
from .constants import SAMPLE_RATE
from .datasets.taxonomy import load_taxonomy
from .datasets.songs import VERSIONS
from .evaluation import classification_metrics, write_json
from .exceptions import GenrekitError, ParameterError
from .plots import plt, save_figure
from .progress import progress_bar
from .variants import DEFAULT_VARIANTS, VARIANTS, apply_variant, check_variants, separate

log = logging.getLogger(__name__)

ORIGINAL = "original"
BACKGROUND = "background (approx.)"
FOREGROUND = "foreground (approx.)"
MAX_LISTED_FAILURES = 20


@dataclass
class ExperimentClip:
    """One clip to evaluate: `signals()` yields (condition, samples at the runner's sr) for each condition,
    the original first; `tags` are extra facts to break results down by (e.g. how the melody was found)."""

    key: str
    label: str
    signals: object
    tags: dict = field(default_factory=dict)


def _label_index(labels):
    """label -> index in the model's labels, through the taxonomy for labels the model does not use."""

    index = {label: i for i, label in enumerate(labels)}
    try:
        taxonomy = load_taxonomy()
    except Exception:  # a broken taxonomy only loses the mapping
        taxonomy = {}

    def lookup(label):
        if label in index:
            return index[label]
        return index.get(taxonomy.get(str(label).lower(), None))

    return lookup


def run_conditions(classifier, clips, conditions, *, sr=SAMPLE_RATE, progress=True, desc="experiment",
                   approximate=(), descriptions=None):
    """Predict every condition of every clip; the metrics per condition and the drops from the first one.

    Parameters
    ----------
    classifier
        A `genrekit.predict.Classifier` (`genrekit.predict.load(...)`).
    clips
        `ExperimentClip`s; a clip whose label the model does not know (directly or through the taxonomy),
        or any of whose conditions fails to load, transform or predict, is reported in `failures` and
        left out of every condition.
    conditions
        Names in the order `signals()` yields them; the first is the reference.

    Returns
    -------
    dict
        JSON-ready: `conditions`, `labels`, `n_clips`, `results` (per condition: accuracy, macro_f1,
        per_label_accuracy, support, confusion, drop_accuracy, drop_macro_f1, per_label_drop),
        `predictions` (per clip: label and predicted genre per condition), `failures`, `approximate`,
        `descriptions`.
    """


    conditions = list(conditions)
    if not conditions:
        raise ParameterError("need at least one condition")
    labels = list(classifier.labels)
    lookup = _label_index(labels)
    targets, predicted, rows, failures, tags = [], {name: [] for name in conditions}, [], [], []
    bar = progress_bar(clips, unit="clip", desc=desc, enabled=progress)
    for clip in bar:
        target = lookup(clip.label)
        if target is None:
            failures.append({"clip": clip.key, "condition": "", "reason": f"genre {clip.label!r} is not among the "
                                                                           f"model's labels {labels}"})
            continue
        condition, found = "", {}
        try:
            for condition, y in clip.signals():
                if condition not in predicted:
                    raise ParameterError(f"unexpected condition {condition!r}")
                found[condition] = int(np.argmax(classifier.predict(y, sr=sr).probabilities))
            missing = [name for name in conditions if name not in found]
            if missing:
                condition = missing[0]
                raise ParameterError(f"no signal for condition(s) {missing}")
        except Exception as error:  # GenrekitError or an oddity of one clip: report it, go on
            reason = str(error) if isinstance(error, GenrekitError) else f"{type(error).__name__}: {error}"
            failures.append({"clip": clip.key, "condition": condition, "reason": reason})
            log.warning("skipped %s (%s): %s", clip.key, condition or "loading", reason)
            bar.set_postfix(failed=len(failures), refresh=False)
            continue
        targets.append(target)
        tags.append(clip.tags)
        for name in conditions:
            predicted[name].append(found[name])
        rows.append({"clip": clip.key, "label": labels[target],
                     "predicted": {name: labels[found[name]] for name in conditions}})
    bar.close()

    results = {name: classification_metrics(targets, predicted[name], labels) for name in conditions}
    reference = results[conditions[0]]
    for metrics in results.values():
        metrics["drop_accuracy"] = reference["accuracy"] - metrics["accuracy"]
        metrics["drop_macro_f1"] = reference["macro_f1"] - metrics["macro_f1"]
        metrics["per_label_drop"] = {label: (None if metrics["per_label_accuracy"][label] is None
                                             else reference["per_label_accuracy"][label] - metrics["per_label_accuracy"][label])
                                     for label in labels}
    result = {"model": classifier.source, "labels": labels, "conditions": conditions, "reference": conditions[0],
              "approximate": [name for name in conditions if name in set(approximate)],
              "descriptions": dict(descriptions or {}), "n_clips": len(targets), "n_failed": len(failures),
              "results": results, "predictions": rows, "failures": failures}
    keys = sorted({key for tag in tags for key in tag})
    if keys:
        result["breakdown"] = {}
        for key in keys:
            for value in sorted({str(tag.get(key)) for tag in tags}):
                chosen = [i for i, tag in enumerate(tags) if str(tag.get(key)) == value]
                result["breakdown"][f"{key}={value}"] = {
                    "n": len(chosen),
                    "accuracy": {name: float(np.mean([predicted[name][i] == targets[i] for i in chosen]))
                                 for name in conditions}}
    return result


# ------------------------------------------------------------------------------------------- song variants

def evaluate_variants(classifier, tracks, variants=None, *, sr=SAMPLE_RATE, progress=True):
    """A model's results on `tracks` as they are and under each named variant (default:
    `genrekit.variants.DEFAULT_VARIANTS`); see `run_conditions` for what comes back."""

    variants = check_variants(DEFAULT_VARIANTS if variants is None else variants)
    if ORIGINAL in variants:
        raise ParameterError(f"{ORIGINAL!r} is always evaluated; name only variants")
    if len(set(variants)) != len(variants):
        raise ParameterError(f"variants named twice: {variants}")
    tracks = list(tracks)
    if not tracks:
        raise ParameterError("no clips to evaluate")

    def clip(track):
        def signals():
            y = load_audio(track.path, sr=sr, offset=track.start or 0.0, duration=track.duration)
            yield ORIGINAL, y
            for name in variants:
                yield name, apply_variant(name, y, sr)

        return ExperimentClip(track.key, track.label, signals)

    descriptions = {ORIGINAL: "the clip as it is", **{name: VARIANTS[name].description for name in variants}}
    return run_conditions(classifier, [clip(track) for track in tracks], [ORIGINAL, *variants], sr=sr,
                          progress=progress, desc="variants", descriptions=descriptions)


# -------------------------------------------------------------------------- instrumental and a-cappella

def evaluate_versions(classifier, versions, *, separation=True, sr=SAMPLE_RATE, progress=True):
    """A model's results on songs as original, instrumental and a-cappella renders (`versions`: the
    `VersionClip`s of `genrekit.midi.versions.render_versions` or `read_versions`) and, with `separation`, on
    the background and foreground `separate` splits the original into (approximate). Songs lacking one
    of the three renders are left out. Results are broken down by how the melody part was found."""

    songs = {}
    for version in versions:
        songs.setdefault((version.genre, version.song), {})[version.version] = version
    complete = {key: found for key, found in songs.items() if set(VERSIONS) <= set(found)}
    if not complete:
        raise ParameterError("no song has all of its original, instrumental and a-cappella clips")
    conditions = list(VERSIONS) + ([BACKGROUND, FOREGROUND] if separation else [])

    def clip(found):
        def signals():
            original = load_audio(found["original"].path, sr=sr)
            yield ORIGINAL, original
            for name in VERSIONS[1:]:
                yield name, load_audio(found[name].path, sr=sr)
            if separation:
                background, foreground = separate(original, sr)
                yield BACKGROUND, background
                yield FOREGROUND, foreground

        first = found["original"]
        return ExperimentClip(f"{first.genre}/{first.song}", first.genre, signals, {"melody": first.how})

    descriptions = {ORIGINAL: "the MIDI song rendered as it is",
                    "instrumental": "rendered without its melody part (exact, from MIDI)",
                    "a-cappella": "only the melody part, sung by GM choir (program 52; exact, from MIDI)",
                    BACKGROUND: "repeating background of the original audio (REPET-SIM; approximate)",
                    FOREGROUND: "non-repeating foreground of the original audio (REPET-SIM; approximate)"}
    result = run_conditions(classifier, [clip(complete[key]) for key in sorted(complete)], conditions, sr=sr,
                            progress=progress, desc="versions", approximate=(BACKGROUND, FOREGROUND),
                            descriptions={name: descriptions[name] for name in conditions})
    hows = [found["original"].how for found in complete.values()]
    result["melody_found"] = {how: hows.count(how) for how in ("named", "heuristic")}
    return result


# -------------------------------------------------------------------------------------------------- reports

def _number(value, signed=False):
    return "n/a" if value is None else f"{value:+.3f}" if signed else f"{value:.3f}"


def experiment_markdown(result, title):
    """Summary table (accuracy, macro-F1 and their drops per condition) and per-genre accuracy table."""
    conditions, results = result["conditions"], result["results"]
    approximate = set(result.get("approximate", []))
    reference = result.get("reference", conditions[0])
    lines = [f"# {title}", "", f"- model: `{result['model']}`"]
    for key in ("data", "split"):
        if result.get(key):
            lines.append(f"- {key}: {result[key]}")
    lines.append(f"- clips evaluated: {result['n_clips']} (every condition of each); skipped: {result['n_failed']}")
    if "melody_found" in result:
        found = result["melody_found"]
        lines.append(f"- melody part: named in {found.get('named', 0)} song(s), found by the heuristic in "
                     f"{found.get('heuristic', 0)}")
    lines.append(f"- drop: {reference} minus the condition (positive: the condition is worse)")
    if approximate:
        lines.append(f"- approximate (audio separation, not exact versions): {', '.join(sorted(approximate))}")
    lines += ["", "| condition | clips | accuracy | drop | macro-F1 | drop |", "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for name in conditions:
        metrics = results[name]
        shown = f"{name} *" if name in approximate else name
        lines.append(f"| {shown} | {metrics['n']} | {_number(metrics['accuracy'])} | "
                     f"{_number(metrics['drop_accuracy'], True)} | {_number(metrics['macro_f1'])} | "
                     f"{_number(metrics['drop_macro_f1'], True)} |")
    labels = [label for label in result["labels"] if results[reference]["support"].get(label)]
    lines += ["", "## Accuracy per genre", "", "| genre | clips | " + " | ".join(conditions) + " |",
              "| --- | ---: |" + " ---: |" * len(conditions)]
    for label in labels:
        lines.append(f"| {label} | {results[reference]['support'][label]} | "
                     + " | ".join(_number(results[name]["per_label_accuracy"][label]) for name in conditions) + " |")
    if result.get("breakdown"):
        lines += ["", "## Accuracy by subset", "", "| subset | clips | " + " | ".join(conditions) + " |",
                  "| --- | ---: |" + " ---: |" * len(conditions)]
        for subset, values in result["breakdown"].items():
            lines.append(f"| {subset} | {values['n']} | "
                         + " | ".join(_number(values["accuracy"][name]) for name in conditions) + " |")
    if result.get("descriptions"):
        lines += ["", "## Conditions", ""]
        lines += [f"- **{name}**: {text}" for name, text in result["descriptions"].items()]
    if result["failures"]:
        lines += ["", f"## Skipped clips ({len(result['failures'])})", ""]
        lines += [f"- {f['clip']}" + (f" ({f['condition']})" if f["condition"] else "") + f": {f['reason']}"
                  for f in result["failures"][:MAX_LISTED_FAILURES]]
        if len(result["failures"]) > MAX_LISTED_FAILURES:
            lines.append(f"- ... and {len(result['failures']) - MAX_LISTED_FAILURES} more (see the JSON)")
    return "\n".join(lines) + "\n"


def plot_conditions(result, path, *, title):
    """Grouped bars: accuracy per genre (and over all clips), one bar per condition, chance dashed
    (approximate conditions hatched)."""

    conditions, results = result["conditions"], result["results"]
    reference = result.get("reference", conditions[0])
    labels = [label for label in result["labels"] if results[reference]["support"].get(label)]
    groups = labels + ["all"]
    approximate = set(result.get("approximate", []))
    width = 0.84 / len(conditions)
    figure, ax = plt.subplots(figsize=(max(7.0, 0.18 * len(groups) * len(conditions) + 3), 4.2),
                              constrained_layout=True)
    colors = plt.get_cmap("tab20" if len(conditions) > 10 else "tab10")(np.arange(len(conditions)))
    for k, name in enumerate(conditions):
        values = [results[name]["per_label_accuracy"].get(label) or 0.0 for label in labels] + [results[name]["accuracy"]]
        ax.bar(np.arange(len(groups)) + (k - (len(conditions) - 1) / 2) * width, values, width, color=colors[k],
               label=f"{name}" + (" *" if name in approximate else ""), hatch="//" if name in approximate else None)
    ax.axhline(1 / max(len(result["labels"]), 1), color="grey", linestyle="--", linewidth=1, label="chance")
    ax.axvline(len(labels) - 0.5, color="black", linewidth=0.6)
    ax.set(xticks=range(len(groups)), xticklabels=groups, ylim=(0, 1), ylabel="Accuracy",
           title=f"{title} ({result['n_clips']} clips)")
    plt.setp(ax.get_xticklabels(), rotation=30, ha="right")
    ax.legend(fontsize="small", loc="center left", bbox_to_anchor=(1.01, 0.5),
              title="* approximate" if approximate else None, title_fontsize="small")
    return save_figure(figure, path)


def write_experiment(result, out_dir, name, title):
    """`name`.json, `name`.md and `name`.png in `out_dir`; returns the three paths."""

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = out_dir / f"{name}.json", out_dir / f"{name}.md", out_dir / f"{name}.png"
    write_json({"title": title, **result}, paths[0])
    write_text(paths[1], experiment_markdown(result, title))
    plot_conditions(result, paths[2], title=title)
    return paths
