"""Convert a musicnn TensorFlow checkpoint (MSD_musicnn, MSD_vgg) to genrekit's PyTorch port, and check the port.

A one-off. It needs TensorFlow, which genrekit does not depend on, so it runs in a throwaway environment:

    python3 -m venv /tmp/musicnn-env
    /tmp/musicnn-env/bin/pip install tensorflow-cpu==2.21.0 tf-keras==2.21.0 librosa numpy torch==2.13.0 tqdm pytest
    /tmp/musicnn-env/bin/pip install --no-deps musicnn==0.1.0
    TF_USE_LEGACY_KERAS=1 /tmp/musicnn-env/bin/python scripts/convert_musicnn.py [--model MSD_vgg] \
        --check-clips ../shared/data/gtzan-mini

(`--no-deps`: musicnn 0.1.0 asks for numpy<1.17 and the `tensorflow` package; its TF1-style code runs on
today's TensorFlow in compatibility mode. tqdm and pytest are there because the script imports genrekit and
the test module that defines the synthetic signal.) For MSD_musicnn (MSD_vgg) it writes

- genrekit/weights/musicnn/msd_musicnn.pt (msd_vgg.pt): the port's state_dict (plain tensors),
- genrekit/weights/musicnn/LICENSE.txt: musicnn's ISC licence and what was converted from which version,
- tests/data/musicnn_reference.npz (vgg_reference.npz): musicnn's own log-mel patches of `reference_signal`
  (tests/test_musicnn.py, synthetic, no recorded audio) and TensorFlow's output of them: the layer before the
  tags (MSD_musicnn's penultimate embeddings, MSD_vgg's last pooled block) and the taggram,

and prints the largest differences between TensorFlow and the port on the audio files of --check-clips (files
or folders; nothing of them is stored): the network alone (the same patches in) and end to end (genrekit's
front end on the 22050 Hz audio against musicnn's librosa front end). musicnn's TensorFlow graph is built by
scripts/musicnn_tf.py (also the baseline of benchmarks/networks.py).

musicnn's front end casts the mel power to float16, which overflows to inf on ordinary loud music; the
reference here keeps float32.
"""

import argparse
import importlib.metadata
import sys
from pathlib import Path

import librosa
import numpy as np
import torch
from musicnn_tf import TensorFlowMusicnn, checkpoint  # beside this script

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from genrekit.constants import AUDIO_EXTENSIONS, SAMPLE_RATE  # noqa: E402
from genrekit.models.musicnn import (HOP_LENGTH, MUSICNN_SR, N_FFT, N_FRAMES, N_MELS, WEIGHTS, Musicnn,  # noqa: E402
                                     MusicnnFrontEnd)
from genrekit.models.vgg import VGG_WEIGHTS, Vgg  # noqa: E402
from test_musicnn import REFERENCE, SIGNAL_SECONDS, VGG_REFERENCE, reference_signal  # noqa: E402

BLOCKS = ["timbral.0", "timbral.1", "temporal.0", "temporal.1", "temporal.2", "midend.0", "midend.1", "midend.2"]


def musicnn_layer_names():
    """(port module, TensorFlow layer) pairs of MSD_musicnn; TF numbers its layers in the order the graph makes
    them."""
    pairs = [("input_norm", "batch_normalization")]
    for i, block in enumerate(BLOCKS):
        pairs += [(f"{block}.0", f"conv2d_{i}" if i else "conv2d"), (f"{block}.2", f"batch_normalization_{i + 1}")]
    return pairs + [("pool_norm", "batch_normalization_9"), ("dense", "dense"),
                    ("dense_norm", "batch_normalization_10"), ("output", "dense_1")]


def vgg_layer_names():
    """(port module, TensorFlow layer) pairs of MSD_vgg."""
    pairs = [("input_norm", "batch_normalization")]
    for i in range(5):
        pairs += [(f"blocks.{i}.0", f"{i + 1}CNN"), (f"blocks.{i}.2", f"batch_normalization_{i + 1}")]
    return pairs + [("output", "dense")]


NETWORKS = {"MSD_musicnn": (Musicnn, musicnn_layer_names, WEIGHTS, REFERENCE),
            "MSD_vgg": (Vgg, vgg_layer_names, VGG_WEIGHTS, VGG_REFERENCE)}
"""Per TensorFlow model: the port's class, its layer pairs, where its weights and its test reference go."""


def port_weights(reader, model):
    """A state_dict for the port of `model` from the checkpoint's variables (TF: NHWC, kernels [h, w, in, out])."""
    network, layer_names = NETWORKS[model][:2]
    port = network()
    state, used = port.state_dict(), set()
    for module_name, layer in layer_names():
        module = port.get_submodule(module_name)

        def get(name):
            used.add(f"{layer}/{name}")
            return reader.get_tensor(f"{layer}/{name}")

        if isinstance(module, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            values = {"weight": get("gamma"), "bias": get("beta"), "running_mean": get("moving_mean"),
                      "running_var": get("moving_variance")}
        elif isinstance(module, torch.nn.Linear):
            values = {"weight": get("kernel").T, "bias": get("bias")}
        elif isinstance(module, torch.nn.Conv2d):
            values = {"weight": get("kernel").transpose(3, 2, 0, 1), "bias": get("bias")}
        else:  # the mid-end's Conv1d: TF convolves [time, channels] images with [7, channels] kernels
            values = {"weight": get("kernel")[:, :, 0, :].transpose(2, 1, 0), "bias": get("bias")}
        for name, value in values.items():
            key = f"{module_name}.{name}"
            if tuple(state[key].shape) != value.shape:
                raise SystemExit(f"{layer}/{name}: shape {value.shape}, the port wants {tuple(state[key].shape)}")
            state[key] = torch.from_numpy(np.ascontiguousarray(value, dtype=np.float32))
    unused = {name for name in reader.get_variable_to_shape_map()
              if "Adam" not in name and "power" not in name} - used
    if unused:
        raise SystemExit(f"checkpoint variables the port does not use: {sorted(unused)}")
    port.load_state_dict(state)
    return port.eval()


def musicnn_frames(audio):
    """musicnn's log-mel (`extractor.batch_data`) of a 16 kHz signal, in float32. [shape=(frames, 96)]"""
    mel = librosa.feature.melspectrogram(y=audio, sr=MUSICNN_SR, hop_length=HOP_LENGTH, n_fft=N_FFT, n_mels=N_MELS)
    return np.log10(10000 * mel.T.astype(np.float32) + 1)


def patches_of(frames):
    """musicnn's patches: N_FRAMES frames every N_FRAMES. [shape=(n, N_FRAMES, 96)]"""
    return np.stack([frames[s:s + N_FRAMES] for s in range(0, len(frames) - N_FRAMES + 1, N_FRAMES)])


def port_outputs(port, patches):
    """The port's (layer before the tags, taggram) of numpy patches."""
    with torch.no_grad():
        embedding = port.embed(torch.from_numpy(patches))
        return embedding.numpy(), torch.sigmoid(port.output(embedding)).numpy()


def audio_files(paths):
    for path in map(Path, paths):
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS)
        else:
            yield path


def check_clips(paths, tf_model, port):
    """Print TF-vs-port differences on real audio; keeps nothing."""
    front = MusicnnFrontEnd().eval()
    worst = dict.fromkeys(["embedding", "taggram", "log-mel (ours)", "embedding (ours)", "taggram (ours)"], 0.0)
    n_clips = n_patches = agree = 0
    for path in audio_files(paths):
        patches = patches_of(musicnn_frames(librosa.load(path, sr=MUSICNN_SR)[0]))
        tf_embedding, tf_taggram = tf_model(patches)
        embedding, taggram = port_outputs(port, patches)
        with torch.no_grad():  # end to end: genrekit's resampler and front end on the 22050 Hz audio
            y = torch.from_numpy(librosa.load(path, sr=SAMPLE_RATE)[0])[None]
            ours = patches_of(front.logmel(front.resample(y))[0].numpy())
        our_embedding, our_taggram = port_outputs(port, ours)
        for key, diff in (("embedding", embedding - tf_embedding), ("taggram", taggram - tf_taggram),
                          ("log-mel (ours)", ours - patches), ("embedding (ours)", our_embedding - tf_embedding),
                          ("taggram (ours)", our_taggram - tf_taggram)):
            worst[key] = max(worst[key], float(np.abs(diff).max()))
        agree += int((our_taggram.mean(0).argmax() == tf_taggram.mean(0).argmax()))
        n_clips, n_patches = n_clips + 1, n_patches + len(patches)
    print(f"{n_clips} clips, {n_patches} patches; max |TF - port|:")
    print(f"  same patches in:  embedding {worst['embedding']:.2e}, taggram {worst['taggram']:.2e}")
    print(f"  genrekit front end on 22050 Hz audio: log-mel {worst['log-mel (ours)']:.2e}, "
          f"embedding {worst['embedding (ours)']:.2e}, taggram {worst['taggram (ours)']:.2e}; "
          f"same top tag on {agree}/{n_clips} clips")


def write_licence(version):
    """LICENSE.txt beside the weights: which of them are converted (those there now) and musicnn's licence."""
    licence = importlib.metadata.distribution("musicnn").read_text("LICENSE.md").strip()
    converted = [(weights.name, model) for model, (*_, weights, _) in NETWORKS.items() if weights.is_file()]
    lines = "\n".join(f"- {name} from the {model} TensorFlow checkpoint" for name, model in converted)
    text = (f"These weights are converted by genrekit's scripts/convert_musicnn.py from checkpoints shipped in the\n"
            f"Python package musicnn {version} (https://github.com/jordipons/musicnn), whose licence (ISC) follows:\n"
            f"{lines}\n\n{licence}\n")
    (WEIGHTS.parent / "LICENSE.txt").write_text(text)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", choices=NETWORKS, default="MSD_musicnn", help="the checkpoint to convert")
    parser.add_argument("--check-clips", nargs="*", default=[], help="audio files or folders to compare on")
    args = parser.parse_args()
    torch.set_num_threads(1)
    import tensorflow as tf

    version = importlib.metadata.version("musicnn")
    *_, weights, reference = NETWORKS[args.model]
    port = port_weights(tf.compat.v1.train.NewCheckpointReader(checkpoint(args.model)), args.model)
    weights.parent.mkdir(parents=True, exist_ok=True)
    torch.save(port.state_dict(), weights)
    write_licence(version)
    print(f"wrote {weights.relative_to(ROOT)} ({weights.stat().st_size / 1e6:.1f} MB) and LICENSE.txt "
          f"from musicnn {version}")

    tf_model = TensorFlowMusicnn(args.model, n_frames=N_FRAMES, n_mels=N_MELS)
    signal = reference_signal(MUSICNN_SR)
    patches = patches_of(musicnn_frames(signal))
    tf_embedding, tf_taggram = tf_model(patches)
    embedding, taggram = port_outputs(port, patches)
    reference.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(reference, sr=MUSICNN_SR, seconds=SIGNAL_SECONDS, signal_head=signal[:256], patches=patches,
                        embedding=tf_embedding, taggram=tf_taggram, musicnn_version=version)
    print(f"wrote {reference.relative_to(ROOT)} ({reference.stat().st_size / 1e3:.0f} kB); synthetic signal, max "
          f"|TF - port|: embedding {np.abs(embedding - tf_embedding).max():.2e}, "
          f"taggram {np.abs(taggram - tf_taggram).max():.2e}")
    if args.check_clips:
        check_clips(args.check_clips, tf_model, port)


if __name__ == "__main__":
    main()
