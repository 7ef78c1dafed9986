"""ONNX export of a model or ensemble, and running an exported file with onnxruntime.

The graph holds the networks only: one input per representation the members read, a batch of windows
([shape=(n, rows, frames)], or [shape=(n, samples)] for the waveform), and one output, every member's window
log-probabilities [shape=(n_members, n, n_labels)]. The STFT front end stays a separate step (genrekit's
torch features), and how the members are combined (weights, stacking, gate) travels as JSON in the file's
metadata (`genrekit`), so an exported file predicts with onnxruntime and no checkpoint.
"""

import json
import logging
import warnings
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from .atomic import atomic_path
from .cache import DEFAULT_CACHE_DIR, file_digest
from .clips import window_length
from .ensemble import Ensemble, load_predictor, make_combiner
from .exceptions import GenrekitError
from .features import FeatureParams
from .predict import Classifier

METADATA_KEY = "genrekit"
log = logging.getLogger(__name__)


class MemberStack(torch.nn.Module):
    """All members in one module: windows per representation in, stacked log-probabilities out."""

    def __init__(self, models, representations):
        super().__init__()
        self.models = torch.nn.ModuleList(models)
        self.inputs = [representations.index(model.representation) for model in models]

    def forward(self, *windows):
        return torch.stack([torch.log_softmax(model(windows[i]), dim=1) for model, i in zip(self.models, self.inputs)])


def export_onnx(model_path, out_path):
    """Write a checkpoint or ensemble as an ONNX file with its metadata; returns the output path."""
    import onnx

    predictor = load_predictor(model_path)
    members = predictor.members if isinstance(predictor, Ensemble) else [predictor]
    classifier = Classifier.from_predictor(predictor, model_path)
    reps = classifier.member_representations
    params, seconds = classifier.params, classifier.window_seconds
    dummies = tuple(torch.zeros((2, *params.shape(rep, int(seconds * params.sr))[:-1],
                                 window_length(rep, seconds, params))) for rep in reps)
    stack = MemberStack([m.model for m in members], reps).eval()
    metadata = {"labels": classifier.labels, "feature_params": asdict(params), "window_seconds": seconds,
                "members": [{"name": m.name, "representation": m.model.representation} for m in members],
                "representations": reps, "kind": getattr(predictor, "kind", None),
                "combiner": predictor.combiner.get_state() if isinstance(predictor, Ensemble) else None}
    with atomic_path(out_path) as temp, warnings.catch_warnings():
        # the tracer warns about LSTM batch sizes and traced shapes; the tests check other batch sizes agree
        warnings.simplefilter("ignore")
        torch.onnx.export(stack, dummies, str(temp), dynamo=False, input_names=reps,
                          output_names=["member_log_probs"], opset_version=17,
                          dynamic_axes={**{rep: {0: "windows"} for rep in reps}, "member_log_probs": {1: "windows"}})
        graph = onnx.load(str(temp))
        graph.metadata_props.add(key=METADATA_KEY, value=json.dumps(metadata))
        onnx.save(graph, str(temp))
    return out_path


def cached_onnx_export(model_path, cache_dir=DEFAULT_CACHE_DIR):
    """The ONNX export of a checkpoint or ensemble, made on first use and kept under `cache_dir/onnx`, keyed by
    the file's content (the bundled models ship as `.pt` only; the export is deterministic)."""
    model_path = Path(model_path)
    out = Path(cache_dir) / "onnx" / f"{model_path.stem}-{file_digest(model_path)[:16]}.onnx"
    if not out.is_file():
        log.warning("%s: exporting it to ONNX once, for onnxruntime (%s)", model_path, out)
        export_onnx(model_path, out)
    return out


class OnnxScorer:
    """Scores windows with an onnxruntime session (one thread per session by default)."""

    def __init__(self, session, representations):
        self.session, self.representations = session, representations

    def __call__(self, windows):
        return self.session.run(None, {rep: windows[rep].astype(np.float32) for rep in self.representations})[0]


def load_onnx(path, *, threads=None):
    """A `Classifier` running an exported file with onnxruntime."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    try:
        session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        meta = json.loads(session.get_modelmeta().custom_metadata_map[METADATA_KEY])
    except Exception as error:  # onnxruntime raises its own exception types for missing or broken files
        raise GenrekitError(f"{path}: not a genrekit ONNX export ({type(error).__name__})") from None
    combiner = make_combiner(meta["kind"]).set_state(meta["combiner"]) if meta["kind"] else None
    return Classifier(path, scorer=OnnxScorer(session, meta["representations"]), combiner=combiner,
                      labels=meta["labels"], member_names=[m["name"] for m in meta["members"]],
                      member_representations=[m["representation"] for m in meta["members"]],
                      params=FeatureParams(**meta["feature_params"]), window_seconds=meta["window_seconds"])
