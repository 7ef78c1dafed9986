"""musicnn 0.1.0's own graphs and checkpoints (MSD_musicnn, MSD_vgg) on TensorFlow, built once.

Needs only tensorflow, tf-keras, numpy and musicnn (the throwaway environment in convert_musicnn.py's docstring,
run with TF_USE_LEGACY_KERAS=1); used by convert_musicnn.py (to check the port) and benchmarks/networks.py (the
speed baseline). Nothing of genrekit is imported here.
"""

import warnings
from pathlib import Path

import musicnn
import tensorflow as tf
from musicnn import configuration, models


def checkpoint(model):
    """The TensorFlow checkpoint of `model` shipped in the musicnn package (a folder prefix, as tf.train.Saver
    wants)."""
    return str(Path(musicnn.__file__).parent / model) + "/"


class TensorFlowMusicnn:
    """A musicnn graph: log-mel patches [shape=(n, n_frames, n_mels)] -> (the layer before the tags: MSD_musicnn's
    penultimate embeddings, MSD_vgg's last pooled block in NHWC; taggram)."""

    def __init__(self, model="MSD_musicnn", *, n_frames, n_mels, threads=1):
        tf.compat.v1.disable_eager_execution()
        with tf.name_scope("model"), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tf.compat.v1.layers is deprecated
            self.x = tf.compat.v1.placeholder(tf.float32, [None, n_frames, n_mels])
            self.is_training = tf.compat.v1.placeholder(tf.bool)
            logits, *_, penultimate = models.define_model(self.x, self.is_training, model,
                                                          len(configuration.MSD_LABELS))
            self.outputs = [penultimate, tf.nn.sigmoid(logits)]
        config = tf.compat.v1.ConfigProto(intra_op_parallelism_threads=threads, inter_op_parallelism_threads=1)
        self.session = tf.compat.v1.Session(config=config)
        tf.compat.v1.train.Saver().restore(self.session, checkpoint(model))

    def __call__(self, patches):
        before, taggram = self.session.run(self.outputs, feed_dict={self.x: patches, self.is_training: False})
        return before.reshape(len(patches), -1), taggram  # MSD_vgg's block in TF's (time, band, channel) order
