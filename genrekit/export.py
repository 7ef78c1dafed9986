"""ONNX export of a model or ensemble (`genrekit.checkpoints.load_onnx` runs it with onnxruntime).

The graph holds the networks only: one input per representation the members read, a batch of windows
([shape=(n, rows, frames)], or [shape=(n, samples)] for the waveform), and one output, every member's window
log-probabilities [shape=(n_members, n, n_labels)]. The STFT front end stays a separate step (genrekit's
torch features), and how the members are combined (weights, stacking, gate) travels as JSON in the file's
metadata (`genrekit`), so an exported file predicts with onnxruntime and no checkpoint.
"""

import json
import warnings
from dataclasses import asdict

import torch

from .atomic import atomic_path
from .checkpoints import ONNX_METADATA_KEY, load_scorer
from .scoring import window_length



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

    scorer = load_scorer(model_path)
    reps, params, seconds = scorer.member_representations, scorer.params, scorer.window_seconds
    dummies = tuple(torch.zeros((2, *params.shape(rep, window_length("waveform", seconds, params))[:-1],
                                 window_length(rep, seconds, params))) for rep in reps)
    stack = MemberStack(scorer.models, reps).eval()
    metadata = {"labels": scorer.labels, "feature_params": asdict(params), "window_seconds": seconds,
                "members": [{"name": name, "representation": rep} for name, rep in scorer.members],
                "representations": reps, "kind": scorer.kind,
                "combiner": scorer.combiner.get_state() if scorer.combiner else None,
                "temperature": scorer.temperature}
    with atomic_path(out_path) as temp, warnings.catch_warnings():
        # the tracer warns about LSTM batch sizes and traced shapes; the tests check other batch sizes agree
        warnings.simplefilter("ignore")
        torch.onnx.export(stack, dummies, str(temp), dynamo=False, input_names=reps,
                          output_names=["member_log_probs"], opset_version=17,
                          dynamic_axes={**{rep: {0: "windows"} for rep in reps}, "member_log_probs": {1: "windows"}})
        graph = onnx.load(str(temp))
        graph.metadata_props.add(key=ONNX_METADATA_KEY, value=json.dumps(metadata))
        onnx.save(graph, str(temp))
    return out_path
