"""Ablation on the rendered MIDI test split: every single model, equal and weighted averaging, stacking,
gating (mixture of experts), and each CNN with and without squeeze-and-excitation.

Members are trained with the models benchmark's settings (seed 0 reuses its checkpoints); all combiners are
fitted on the valid split only. The top rows (best single model, every ensemble) are repeated with the
members trained from other seeds to show the spread. Writes benchmarks/results/ensemble.{json,md} and
ensemble_per_genre.png (best ensemble against best single model).

    python benchmarks/ensemble.py                  # seeds 0 1 2 and SE variants (long: trains 28 models)
    python benchmarks/ensemble.py --seeds 0        # one seed
"""

import numpy as np
from common import load_benchmark_data, new_parser, train_model

from genrekit.atomic import write_text
from genrekit.cache import FeatureCache
from genrekit.datasets import labels_of, select
from genrekit.checkpoints import load_members
from genrekit.combiners import COMBINER_KINDS, make_combiner
from genrekit.ensemble import Ensemble
from genrekit.evaluation import classification_metrics, evaluate_checkpoint, write_json
from genrekit.models import PAPER_MODELS, list_models
from genrekit.plots import plot_per_label_accuracy


def seed_results(tracks, labels, args, seed, cache):
    """Test metrics of every member and every combiner for members trained with `seed`."""
    run_dir = args.runs / ("midi" if seed == 0 else f"midi-seed{seed}")
    paths = [train_model(name, tracks, labels, args, run_dir, cache, seed=seed) for name in PAPER_MODELS]
    ensemble = Ensemble(load_members(paths), "gating")
    valid_probs, valid_y, valid_stats = ensemble.member_probs(select(tracks, "valid"))
    test_probs, test_y, test_stats = ensemble.member_probs(select(tracks, "test"))
    results, reliance = {}, {}
    for member, probs in zip(ensemble.members, test_probs):
        results[member.name] = classification_metrics(test_y, probs.argmax(1), labels)
    for kind in COMBINER_KINDS:
        combiner = make_combiner(kind, seed).fit(valid_probs, valid_y, valid_stats)
        results[f"ensemble-{kind}"] = classification_metrics(
            test_y, combiner.predict_proba(test_probs, test_stats).argmax(1), labels)
        if kind == "weighted":
            reliance["weighted average weights"] = dict(zip(PAPER_MODELS, combiner.weights_.round(3).tolist()))
        if kind == "gating":
            gates = combiner.gate_values(test_stats).mean(0)
            reliance["mean gate values on test"] = dict(zip(PAPER_MODELS, gates.round(3).tolist()))
    return results, reliance


def se_results(tracks, labels, args, cache):
    """Test metrics of CNNs trained with squeeze-and-excitation (seed 0)."""
    out = {}
    for name in args.se_models:
        path = train_model(name, tracks, labels, args, args.runs / "midi-se", cache, model_kwargs={"se": True})
        out[f"{name} +SE"] = evaluate_checkpoint(path, select(tracks, "test"), progress=False)
    return out


def markdown(table, spread, reliance, chance):
    lines = [f"## Rendered MIDI test split (seed 0; chance {chance:.3f})", "",
             "| model | accuracy | macro-F1 | " + " | ".join(table[next(iter(table))]["labels"]) + " |",
             "| --- | ---: | ---: |" + " ---: |" * len(table[next(iter(table))]["labels"])]
    for name, m in sorted(table.items(), key=lambda item: -item[1]["accuracy"]):
        genres = " | ".join(f"{v:.2f}" if v is not None else "" for v in m["per_label_accuracy"].values())
        lines.append(f"| {name} | {m['accuracy']:.3f} | {m['macro_f1']:.3f} | {genres} |")
    lines += ["", f"## Spread over seeds {spread['seeds']}", "", "| model | accuracy mean ± sd | macro-F1 mean ± sd |",
              "| --- | ---: | ---: |"]
    for name, s in spread["rows"].items():
        lines.append(f"| {name} | {s['accuracy_mean']:.3f} ± {s['accuracy_sd']:.3f} | "
                     f"{s['macro_f1_mean']:.3f} ± {s['macro_f1_sd']:.3f} |")
    for title, values in reliance.items():
        lines += ["", f"## {title} (seed 0)", "", "| member | value |", "| --- | ---: |"]
        lines += [f"| {name} | {value:.3f} |" for name, value in values.items()]
    return "\n".join(lines) + "\n"


def main():
    parser = new_parser(__doc__)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--se-models", nargs="*", default=list_models("cnn-*"), choices=list_models("cnn-*"),
                        help="CNNs to train again with squeeze-and-excitation (none: skip those rows).")
    args = parser.parse_args()
    tracks = load_benchmark_data("midi", args)
    labels = labels_of(tracks)
    cache = FeatureCache(args.cache)
    by_seed, reliance = {}, {}
    for seed in args.seeds:
        by_seed[seed], seed_reliance = seed_results(tracks, labels, args, seed, cache)
        reliance = reliance or seed_reliance
    first = by_seed[args.seeds[0]]
    table = dict(first) | se_results(tracks, labels, args, cache)
    best_single = max(PAPER_MODELS, key=lambda name: first[name]["accuracy"])
    top = [best_single] + [f"ensemble-{kind}" for kind in COMBINER_KINDS]
    spread = {"seeds": args.seeds, "rows": {}}
    for name in top:
        acc = [by_seed[s][name]["accuracy"] for s in args.seeds]
        f1 = [by_seed[s][name]["macro_f1"] for s in args.seeds]
        spread["rows"][name] = {"accuracy_mean": float(np.mean(acc)), "accuracy_sd": float(np.std(acc)),
                                "macro_f1_mean": float(np.mean(f1)), "macro_f1_sd": float(np.std(f1)),
                                "accuracy_by_seed": acc}
    best_ensemble = max(top[1:], key=lambda name: first[name]["accuracy"])
    plot_per_label_accuracy({best_ensemble: first[best_ensemble], best_single: first[best_single]},
                            args.out / "ensemble_per_genre.png",
                            title=f"Per-genre test accuracy: {best_ensemble} vs {best_single}")
    text = markdown(table, spread, reliance, 1 / len(labels))
    print(text)
    write_json({"table": table, "spread": spread, "reliance": reliance, "best_single": best_single,
                "best_ensemble": best_ensemble}, args.out / "ensemble.json")
    write_text(args.out / "ensemble.md", "# Ensemble ablation\n\n" + text)


if __name__ == "__main__":
    main()
