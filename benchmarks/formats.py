"""The same real songs in the formats music collections are kept in: the same genre, at what decoding cost?

    .venv/bin/python benchmarks/formats.py [--model default] [--gtzan ../shared/data/gtzan-mini]

Each real 30 s gtzan-mini clip (22050 Hz mono .au) is written to a temporary folder as FLAC, MP3 and Ogg
Vorbis (libsndfile's encoders at their defaults) and as AAC in .m4a, Opus in WebM and WMA at `--bit-rate`
(FFmpeg through PyAV), then predicted as a user's file is (model loaded once, one process). Per format:
agreement of the genre with the original's, accuracy against the GTZAN label (gtzan-mini mixes the train,
valid and test clips of the model's split, so this is no held-out figure: agreement is the point), the mean
and largest absolute change of a genre's probability, the median seconds to decode a file
(`load_audio` at the model's rate) and the mean file size.

Writes benchmarks/results/formats.{json,md}.
"""

import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from common import new_parser, write_report
from genrekit.audio import load_audio
from genrekit.datasets import load_dataset
from genrekit.ffmpeg_file import write_with_ffmpeg
from genrekit.predict import load

LIBSNDFILE = {"flac": "FLAC", "mp3": "MP3", "ogg": "OGG"}
FFMPEG = ("m4a", "webm", "wma")


def encode(y, sr, folder, stem, ext, bit_rate):
    path = folder / f"{stem}.{ext}"
    if ext in LIBSNDFILE:
        sf.write(path, y, sr, format=LIBSNDFILE[ext])
    else:
        write_with_ffmpeg(path, y, sr, bit_rate=bit_rate)
    return path


def decode_seconds(path, sr):
    began = time.perf_counter()
    load_audio(path, sr=sr)
    return time.perf_counter() - began


def compare(classifier, tracks, folder, bit_rate):
    """Per format: agreement, accuracy, mean and max |dp|, median decode seconds, mean size."""
    sr = classifier.scorer.params.sr
    original = [classifier.predict(t.path).probabilities for t in tracks]
    truth = [classifier.labels.index(t.label) for t in tracks]
    rows = {"au (original)": {"agreement": 1.0, "accuracy": float(np.mean([p.argmax() == y for p, y in zip(original, truth)])),
                              "mean_abs_diff": 0.0, "max_abs_diff": 0.0,
                              "decode_s": statistics.median(decode_seconds(t.path, sr) for t in tracks),
                              "kb": float(np.mean([os.path.getsize(t.path) for t in tracks])) / 1024}}
    encoded = {ext: [] for ext in (*LIBSNDFILE, *FFMPEG)}
    for i, track in enumerate(tracks):  # each original read once, written in every format
        y, rate = sf.read(track.path, dtype="float32")
        for ext, paths in encoded.items():
            paths.append(encode(y, rate, folder, f"{i:03d}", ext, bit_rate))
    for ext, paths in encoded.items():
        found = [classifier.predict(path).probabilities for path in paths]
        diffs = [np.abs(p - o) for p, o in zip(found, original)]
        rows[ext] = {"agreement": float(np.mean([p.argmax() == o.argmax() for p, o in zip(found, original)])),
                     "accuracy": float(np.mean([p.argmax() == y for p, y in zip(found, truth)])),
                     "mean_abs_diff": float(np.mean(diffs)), "max_abs_diff": float(np.max(diffs)),
                     "decode_s": statistics.median(decode_seconds(path, sr) for path in paths),
                     "kb": float(np.mean([os.path.getsize(path) for path in paths])) / 1024}
        for path in paths:
            path.unlink()
    return rows


def markdown(report):
    lines = [f"Model `{report['model']}`, {report['clips']} real 30 s gtzan-mini clips; lossy FFmpeg formats at "
             f"{report['bit_rate'] // 1000} kbit/s; load average {report['load_average']}.", "",
             "| format | agreement with the original | accuracy | mean abs dp | max abs dp | decode s per file | KB per file |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    lines += [f"| {name} | {r['agreement']:.2f} | {r['accuracy']:.2f} | {r['mean_abs_diff']:.4f} | {r['max_abs_diff']:.3f} "
              f"| {r['decode_s']:.4f} | {r['kb']:.0f} |" for name, r in report["formats"].items()]
    return "\n".join(lines) + "\n"


def main():
    parser = new_parser(__doc__)
    parser.add_argument("--model", default="default")
    parser.add_argument("--bit-rate", type=int, default=128_000, help="bit/s of AAC, Opus and WMA")
    args = parser.parse_args()
    began = time.perf_counter()
    classifier = load(args.model)
    tracks = [t for t in load_dataset(f"gtzan:{args.gtzan}") if t.label in classifier.labels]
    with tempfile.TemporaryDirectory() as tmp:
        formats = compare(classifier, tracks, Path(tmp), args.bit_rate)
    report = {"model": args.model, "clips": len(tracks), "bit_rate": args.bit_rate, "formats": formats,
              "load_average": " / ".join(f"{x:.1f}" for x in os.getloadavg()),
              "minutes": (time.perf_counter() - began) / 60}
    args.out.mkdir(parents=True, exist_ok=True)
    write_report(report, markdown(report), args.out, "formats", "The same songs in other formats")


if __name__ == "__main__":
    main()
