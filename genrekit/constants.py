"""Defaults shared by every stage (the paper's and librosa's)."""

import os
from pathlib import Path

SAMPLE_RATE = 22050
N_FFT = 2048
HOP_LENGTH = 512
N_MELS = 128
N_CHROMA = 12
TOP_DB = 80.0
CLIP_SECONDS = 30.0
CLIP_SAMPLES = int(SAMPLE_RATE * CLIP_SECONDS)

REPRESENTATIONS = ("waveform", "spectrogram", "logmel", "chroma")
AUDIO_EXTENSIONS = (".wav", ".au", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aiff", ".aif", ".snd", ".caf",
                    ".w64",  # libsndfile
                    ".m4a", ".mp4", ".aac", ".wma", ".webm", ".mka", ".wv", ".ape")  # FFmpeg (PyAV)
"""What `tag` and the folder datasets take for audio files, and what the web page's file picker offers."""
EPS = 1e-7
"""What probabilities are floored at before a log (combiners, stacking, evaluation)."""
UNKNOWN_FRAMES = 2**63 - 1
"""The frame count of an audio file whose header does not give its length (libsndfile's, e.g. a streamed FLAC)."""

DEFAULT_CACHE_DIR = Path(os.environ.get("GENREKIT_CACHE", Path.home() / ".cache" / "genrekit"))
