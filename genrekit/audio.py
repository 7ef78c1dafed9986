"""Audio in: any file libsndfile (soundfile) or else FFmpeg (PyAV) reads, to mono float32 at the project's
sample rate."""

import logging
import os
import re
import stat
import sys
import tempfile
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from .constants import SAMPLE_RATE, UNKNOWN_FRAMES
from .exceptions import AudioError, ParameterError, Truncated

log = logging.getLogger(__name__)
_DECODER_OUTPUT = threading.Lock()

MAX_LOAD_SECONDS = 3600.0
"""Longest span `load_audio` decodes in one piece; longer files are read in windows."""

MIN_SAMPLE_RATE, MAX_SAMPLE_RATE = 4000, 768000
"""Sample rates audio files have; a header outside them is not audio (FFmpeg reads random bytes at 0 Hz, and a
220 kB file at 1 Hz would be 30 hours)."""

SILENCE_PEAK = 1e-4
"""A signal whose absolute peak stays below this (-80 dBFS) counts as silent."""

MIN_DECODED_SECONDS = 0.5
"""A truncated file from which less than this decodes is refused; from more, what decodes is used (and said)."""

ESTIMATE_SLACK = {"MP3": 0.025}
"""Formats whose header length is an estimate (an MP3's, from its bit rate or Xing frame count): up to this share
of it may be missing without a word. Every other format's header counts each frame."""

MISSING_SECONDS = 0.05
"""Less than this missing is rounding, not truncation (a cut inside the last frame of a WAV)."""

_SHOULD_BE = re.compile(r"^\s*(?:data|SSND|Data Size)\s*:\s*(\d+) \(should be (\d+)\)", re.MULTILINE)
"""libsndfile's header log for a WAV, AU or AIFF whose data chunk runs past the end of the file."""


@dataclass(frozen=True)
class AudioInfo:
    """What the header of an audio file says."""

    path: str
    samplerate: int
    channels: int
    frames: int
    format: str

    @property
    def duration(self):
        return self.frames / self.samplerate


@contextmanager
def _decoder_output_named(path):
    """Catch what decoders print on the process's stderr meanwhile (libmpg123 notes there what it makes of
    damaged MP3s, naming no file) and log it as one debug line `PATH: decoder notes: ...` (what matters, a
    file cut short, is said by `_check_complete`). One decoding call at a time holds stderr."""
    with _DECODER_OUTPUT, tempfile.TemporaryFile() as caught:
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(caught.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            caught.seek(0)
            notes = [line.strip() for line in caught.read().decode("utf-8", "replace").splitlines() if line.strip()]
            if notes:
                log.debug("%s: decoder notes: %s", path, " | ".join(dict.fromkeys(notes)))


def _open(path):
    """Open `path` with soundfile, turning every failure into an `AudioError` with a reason."""
    path = Path(path)
    try:
        info = path.stat()
        if stat.S_ISREG(info.st_mode):
            os.close(os.open(path, os.O_RDONLY))  # may it be read?
    except FileNotFoundError:
        raise AudioError(path, "broken link: its target is missing" if path.is_symlink() else "file not found") from None
    except OSError as error:  # a symlink loop, no permission to read it or to search its folder
        raise AudioError(path, f"cannot be read ({error.strerror.lower()})") from None
    if stat.S_ISDIR(info.st_mode):
        raise AudioError(path, "is a directory, not an audio file")
    if not stat.S_ISREG(info.st_mode):
        raise AudioError(path, "not a regular file (a pipe, socket or device)")
    if info.st_size == 0:
        raise AudioError(path, "empty file (0 bytes)")
    try:
        with _decoder_output_named(path):
            handle = sf.SoundFile(os.fsencode(path))  # bytes: names that are not UTF-8 open too
    except sf.LibsndfileError as error:
        handle = _open_with_ffmpeg(path, error)
    except (RuntimeError, TypeError, ValueError) as error:
        raise AudioError(path, f"not a readable audio file ({error})") from None
    if handle.format == "RAW":  # libsndfile takes a .au/.snd file without its header for headerless samples
        handle.close()
        raise AudioError(path, "not an audio file (no audio header)")
    if not MIN_SAMPLE_RATE <= handle.samplerate <= MAX_SAMPLE_RATE:  # e.g. random bytes FFmpeg took for audio
        handle.close()
        raise AudioError(path, f"not audio: its header gives a sample rate of {handle.samplerate} Hz (audio is "
                               f"{MIN_SAMPLE_RATE} to {MAX_SAMPLE_RATE} Hz)")
    if handle.frames <= 0:
        handle.close()
        raise AudioError(path, "contains no audio samples")
    return handle


def _open_with_ffmpeg(path, libsndfile_error):
    """What libsndfile refused, opened with FFmpeg; refused by both, an `AudioError` gives libsndfile's reason."""
    from .ffmpeg_file import FFmpegFile, NoAudioStream  # imported here: PyAV takes a while to import

    try:
        return FFmpegFile(path)
    except NoAudioStream as error:
        raise AudioError(path, str(error)) from None
    except RuntimeError:
        # libsndfile says "File does not exist" for an existing file its MPEG decoder rejects
        detail = libsndfile_error.error_string
        detail = "no audio stream found" if "does not exist" in detail else detail
        raise AudioError(path, f"not a readable audio file or unsupported format ({detail})") from None


def _read(handle, path, frames):
    """Up to `frames` frames from the current position as float32 [shape=(n, channels)].

    A read that fails (libsndfile at the end of a streamed FLAC, or where a cut FLAC loses sync) ends the
    file: the frames it decoded up to there (found by the NaN the buffer was filled with) are the rest.
    """
    out = np.full((frames, handle.channels), np.nan, np.float32)
    try:
        with _decoder_output_named(path):
            return handle.read(frames, dtype="float32", always_2d=True, out=out)
    except (sf.LibsndfileError, RuntimeError) as error:
        log.debug("%s: decoding ended early (%s)", path, error)
    undecoded = np.isnan(out).any(axis=1)
    return out[:int(np.argmax(undecoded)) if undecoded.any() else frames]


def _seconds(frames, rate):
    return f"{frames / rate:.1f} s"


def _shortfall(handle, promised, decoded, reaches_end):
    """What is missing from a span that decoded `decoded` of the `promised` frames its header gives, said in
    words ("truncated: ..."), or None: frames that did not decode (beyond an estimate's slack), or, for a span
    reaching the file's end, a header that promises more data than the file holds (libsndfile counts a cut
    WAV, AU or AIFF by what is there) or an Ogg stream without its end mark."""
    rate = handle.samplerate
    if handle.frames != UNKNOWN_FRAMES:
        missing = promised - decoded
        if missing > max(ESTIMATE_SLACK.get(handle.format, 0.0) * promised, MISSING_SECONDS * rate):
            return (f"truncated: {_seconds(decoded, rate)} of the {_seconds(promised, rate)} its header promises "
                    f"could be decoded ({missing / promised:.0%} missing)")
    if not reaches_end:
        return None
    log_text = getattr(handle, "extra_info", "")
    for claimed, present in _SHOULD_BE.findall(log_text):
        claimed, present = int(claimed), int(present)
        if present < claimed < 0xFFFFFFF0:  # 0xFFFFFFFF: a streamed WAV, length unknown
            whole = handle.frames * claimed / present
            if (whole - decoded) > MISSING_SECONDS * rate:
                return (f"truncated: {_seconds(decoded, rate)} of the {_seconds(whole, rate)} its header promises "
                        f"are in the file ({1 - present / claimed:.0%} missing)")
    if "lacks an end-of-stream bit" in log_text:
        return f"truncated: the Ogg stream stops without its end mark after {_seconds(decoded, rate)}"
    return None


def _check_complete(path, handle, promised, decoded, reaches_end, on_truncated):
    """Report a span that decoded short of its header (`_shortfall`) to `on_truncated` (None: log a warning);
    refuse it when less than `MIN_DECODED_SECONDS` decoded."""
    missing = _shortfall(handle, promised, decoded, reaches_end)
    if missing is None and decoded:
        return
    if decoded < MIN_DECODED_SECONDS * handle.samplerate:
        raise Truncated(path, f"{missing or 'truncated'}: too little decodes to use (under {MIN_DECODED_SECONDS:g} s)"
                         if decoded else "truncated: no samples could be decoded")
    if on_truncated is None:
        log.warning("%s: %s", path, missing)
    else:
        on_truncated(missing)


def audio_info(path):
    """Header facts (sample rate, channels, length) of an audio file without decoding it."""
    with _open(path) as handle:
        return AudioInfo(str(path), handle.samplerate, handle.channels, handle.frames, handle.format)


def to_mono(y):
    """Average the channels of a `(n, channels)` array; a 1-D array is returned as it is.

    The channels are added column by column: numpy's `mean(axis=1)` over so short an axis takes 10x as long
    (0.21 s against 0.02 s for 5 minutes of 44.1 kHz stereo), the same sums."""
    y = np.asarray(y, dtype=np.float32)
    if y.ndim == 1:
        return y
    total = y[:, 0].copy()
    for channel in range(1, y.shape[1]):
        total += y[:, channel]
    return total / np.float32(y.shape[1])


def resample(y, orig_sr, target_sr):
    """Resample a 1-D signal with soxr (the same high-quality filter librosa uses by default)."""
    if orig_sr <= 0 or target_sr <= 0:
        raise ParameterError(f"sample rates must be positive, got {orig_sr} -> {target_sr}")
    if orig_sr == target_sr:
        return np.asarray(y, dtype=np.float32)
    return soxr.resample(y, orig_sr, target_sr, quality="HQ").astype(np.float32, copy=False)


def load_audio(path, *, sr=SAMPLE_RATE, offset=0.0, duration=None, on_truncated=None):
    """Decode `duration` seconds from `offset` of an audio file as mono float32 at `sr` Hz.

    Only the asked span is decoded, so a 30 s excerpt of a 10-minute song costs 30 s of decoding. A file that
    ends before its header says (a download cut short) gives what decodes: `on_truncated(reason)` is called
    with what is missing ("truncated: 12.0 s of the 30.0 s ..."; None: it is logged as a warning).

    Returns
    -------
    np.ndarray [shape=(n,), dtype=float32]

    Raises
    ------
    AudioError
        The file is missing, empty, truncated to under `MIN_DECODED_SECONDS`, not audio, unsupported, or holds
        non-finite samples.
    ParameterError
        `offset`/`duration`/`sr` are out of range.
    """
    if offset < 0 or (duration is not None and duration <= 0) or sr <= 0:
        raise ParameterError(f"need offset >= 0, duration > 0 and sr > 0; got offset={offset}, duration={duration}, sr={sr}")
    with _open(path) as handle:
        native_sr, known = handle.samplerate, handle.frames != UNKNOWN_FRAMES
        (frames, reaches_end), limit = _seek_span(handle, path, offset, duration), int(MAX_LOAD_SECONDS * native_sr)
        if known and frames > limit:
            raise AudioError(path, f"too long to decode at once ({frames / native_sr:.0f} s > {MAX_LOAD_SECONDS:.0f} s); "
                                   "ask for a duration or read it in windows")
        pieces, total = [], 0  # one piece, unless the header does not say how long the file is
        block = frames if known else int(60 * native_sr)
        for y, _ in _mono_blocks(handle, path, frames, block, reaches_end, on_truncated):
            pieces.append(y)
            total += len(y)
            if total > limit:
                raise AudioError(path, f"too long to decode at once (over {MAX_LOAD_SECONDS:.0f} s); ask for a "
                                       "duration or read it in windows")
    return resample(pieces[0] if len(pieces) == 1 else np.concatenate(pieces), native_sr, sr)


def stream_audio(path, *, sr=SAMPLE_RATE, block_seconds=30.0, offset=0.0, duration=None, on_truncated=None):
    """Yield a file (or `duration` seconds of it from `offset`) as consecutive mono float32 blocks of about
    `block_seconds` at `sr` Hz; a truncated file as `load_audio` does.

    Decoding and resampling run block by block (soxr's streaming resampler keeps the seams clean), so
    memory stays bounded whatever the file's length.
    """
    if block_seconds <= 0 or sr <= 0 or offset < 0 or (duration is not None and duration <= 0):
        raise ParameterError(f"need block_seconds, sr, duration > 0 and offset >= 0; got {block_seconds}, {sr}, "
                             f"{duration}, {offset}")
    with _open(path) as handle:
        native_sr = handle.samplerate
        stream = None if native_sr == sr else soxr.ResampleStream(native_sr, sr, 1, dtype="float32", quality="HQ")
        frames, reaches_end = _seek_span(handle, path, offset, duration)
        block = max(1, int(block_seconds * native_sr))
        for y, last in _mono_blocks(handle, path, frames, block, reaches_end, on_truncated):
            if stream is not None:
                y = stream.resample_chunk(y, last=last)
            if len(y):
                yield y


def _seek_span(handle, path, offset, duration):
    """(the number of frames to decode from `offset` s for `duration` s (None: to the end), whether they reach
    the end of the file), with the handle moved to the first."""
    start, rate = int(round(offset * handle.samplerate)), handle.samplerate
    if start >= handle.frames:
        raise AudioError(path, f"offset {offset:.2f} s is past the end ({handle.frames / rate:.2f} s)")
    try:
        if start:
            handle.seek(start)
    except (sf.LibsndfileError, RuntimeError) as error:
        raise AudioError(path, f"decoding failed ({error})") from None
    left = handle.frames - start
    frames = left if duration is None else min(int(round(duration * rate)), left)
    return frames, frames == left


def _mono_blocks(handle, path, frames, block, reaches_end, on_truncated):
    """`frames` frames from the handle's position (fewer when the file ends first) as (mono float32 samples of
    at most `block` frames, whether it is the last); a file that ends before its header says is reported
    (`_check_complete`)."""
    decoded = 0
    while True:
        wanted = min(block, frames - decoded)
        data = _read(handle, path, wanted)
        decoded += len(data)
        last = len(data) < wanted or decoded == frames
        if last:
            _check_complete(path, handle, frames, decoded, reaches_end, on_truncated)
        y = to_mono(data)
        if not np.isfinite(y).all():
            raise AudioError(path, "contains NaN or infinite samples")
        yield y, last
        if last:
            return


def is_silent(y):
    """True when a signal, its DC offset removed, never rises above -80 dBFS (silence, or a constant)."""
    return y.size == 0 or float(np.max(np.abs(y - np.mean(y)))) < SILENCE_PEAK
