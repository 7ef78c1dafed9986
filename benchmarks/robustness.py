"""Robustness to song variants with and without training-time augmentation (paper section 3, issue 7).

The ensemble is the best one of the ensemble benchmark in the form the bundled model uses: the weighted
average of cnn-logmel, rnn-spectrogram and cnn-waveform (the only members the weighted ensemble over all
eight gives weight), fitted on the valid split. It is built twice from members trained with the models
benchmark's settings: once as they are (seed 0 reuses the models benchmark's checkpoints) and once with
`augment=True` (random speed 0.8-1.25x, pitch +-2 semitones, noise). Both are evaluated on the rendered MIDI
test split under each variant, and with `--versions` on its instrumental and a-cappella renders.

Writes benchmarks/results/experiments/{variants,instrumental-acappella}-{plain,augmented}.{md,json,png} and
benchmarks/results/robustness.{md,json} (drop from the original, with and without augmentation).

    python benchmarks/robustness.py --midi-audio <rendered clips> [--versions]
"""

import time

from common import WEIGHTED_MEMBERS, load_benchmark_data, new_parser, train_model

from genrekit.atomic import write_text
from genrekit.cache import FeatureCache
from genrekit.datasets import labels_of, select
from genrekit.checkpoints import load_members
from genrekit.ensemble import Ensemble
from genrekit.evaluation import write_json
from genrekit.experiments import evaluate_variants, evaluate_versions, write_experiment
from genrekit.midi.versions import render_versions
from genrekit.predict import load
from genrekit.variants import check_variants

VARIANTS = ("speed-0.8x", "speed-1.25x", "pitch+2", "pitch-2", "noise-20dB", "mp3-32k")
TRAININGS = {"plain": False, "augmented": True}


def build_ensemble(tracks, labels, args, cache, augment):
    """Train (or reuse) the members and fit their weighted average on the valid split; returns its path."""
    run_dir = args.runs / ("midi-augment" if augment else "midi")
    paths = [train_model(name, tracks, labels, args, run_dir, cache, augment=augment)
             for name in WEIGHTED_MEMBERS]
    ensemble = Ensemble(load_members(paths), "weighted")
    ensemble.fit(select(tracks, "valid"), progress=False)
    path = run_dir / "ensemble-weighted-3.pt"
    ensemble.save(path)
    return path


def condensed(result):
    """Accuracy, macro-F1 and drops per condition of an experiment result."""
    keys = ("accuracy", "drop_accuracy", "macro_f1", "drop_macro_f1", "per_label_accuracy")
    return {condition: {key: metrics[key] for key in keys} for condition, metrics in result["results"].items()}


def summary(results):
    """Markdown table: accuracy and drop per condition, one column pair per training."""
    names = list(results)
    conditions = list(dict.fromkeys(c for name in names for c in results[name]))
    lines = ["| condition | " + " | ".join(f"{name} acc | {name} drop" for name in names) + " |",
             "| --- |" + " ---: | ---: |" * len(names)]
    for condition in conditions:
        cells = []
        for name in names:
            found = results[name].get(condition)
            cells += ["", ""] if found is None else [f"{found['accuracy']:.3f}", f"{found['drop_accuracy']:+.3f}"]
        lines.append(f"| {condition} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main():
    parser = new_parser(__doc__)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS))
    parser.add_argument("--versions", action="store_true", help="Also the instrumental / a-cappella experiment.")
    args = parser.parse_args()
    variants = check_variants(args.variants)
    tracks = load_benchmark_data("midi", args)
    labels = labels_of(tracks)
    cache = FeatureCache(args.cache)
    out = args.out / "experiments"
    report = {"members": WEIGHTED_MEMBERS, "variants": variants, "minutes": {}, "variants_results": {},
              "versions_results": {}}
    versions = (render_versions(args.midi_source, args.cache / "versions", midi_audio=args.midi_audio)
                if args.versions else None)
    for name, augment in TRAININGS.items():
        began = time.perf_counter()
        classifier = load(build_ensemble(tracks, labels, args, cache, augment), backend="torch")
        result = evaluate_variants(classifier, select(tracks, "test"), variants)
        result.update(data=str(args.midi_audio), split="test", training=name)
        write_experiment(result, out, f"variants-{name}", f"Song variants, {name} training (test split)")
        report["variants_results"][name] = condensed(result)
        if versions is not None:
            found = evaluate_versions(classifier, versions)
            found.update(data=str(args.midi_source), split="test", training=name)
            write_experiment(found, out, f"instrumental-acappella-{name}",
                             f"Instrumental and a-cappella, {name} training (test split)")
            report["versions_results"][name] = condensed(found)
        report["minutes"][name] = (time.perf_counter() - began) / 60
    text = f"## Song variants (rendered MIDI test split)\n\n{summary(report['variants_results'])}\n"
    if report["versions_results"]:
        text += f"\n## Instrumental and a-cappella\n\n{summary(report['versions_results'])}\n"
    print(text)
    write_json(report, args.out / "robustness.json")
    write_text(args.out / "robustness.md", "# Robustness with and without augmentation\n\n"
               f"Weighted ensemble of {', '.join(WEIGHTED_MEMBERS)}; drop = original minus condition.\n\n" + text)


if __name__ == "__main__":
    main()
