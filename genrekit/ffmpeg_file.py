"""What libsndfile cannot read (AAC and ALAC in .m4a/.mp4, WMA, Opus in WebM, Matroska, ...), decoded by
FFmpeg through PyAV behind the part of `soundfile.SoundFile`'s interface that `genrekit.audio` uses, and
written (for the `aac` song variant, tests and benchmarks) by `write_with_ffmpeg`."""

import os
from pathlib import Path

import av
import numpy as np

from .constants import UNKNOWN_FRAMES

ESTIMATED_LENGTH = {"aac", "ac3", "eac3", "dts", "mp3", "truehd", "asf"}
"""Containers whose length is no promise: raw elementary streams (FFmpeg guesses it from the bit rate) and
ASF (WMA), whose recorded duration runs past the last sample."""

FFMPEG_ENCODERS = {".m4a": ("ipod", "aac"), ".mp4": ("mp4", "aac"), ".aac": ("adts", "aac"),
                   ".wma": ("asf", "wmav2"), ".webm": ("webm", "libopus"), ".mka": ("matroska", "flac"),
                   ".wv": ("wv", "wavpack")}
"""What `write_with_ffmpeg` writes: extension -> FFmpeg muxer and default encoder."""

MEDIA_CONTAINERS = {"mov", "mp4", "matroska", "webm", "avi", "asf", "flv", "mpeg", "mpegts", "ogg"}
"""Formats of films and songs: one without an audio stream is a video without sound. (FFmpeg opens much
else, e.g. any .txt as a Tele-typewriter animation.)"""

OPEN_OPTIONS = {"metadata_errors": "ignore"} if int(av.__version__.split(".")[0]) < 19 else {}
"""Tags that are not UTF-8 must not stop a file from opening: PyAV 18 is told so, PyAV 19 dropped the option."""

SEEK_PREROLL = 0.25
"""Seconds decoded and dropped before a seek target: measured, Opus needs about 0.2 s to decode the samples
that it decodes from the start (to 1e-4), AAC one 23 ms frame."""


class NoAudioStream(RuntimeError):
    """FFmpeg reads the container (one of `MEDIA_CONTAINERS`), but it holds no audio."""


class FFmpegFile:
    """An audio file opened with FFmpeg: `samplerate`, `channels`, `frames`, `format`, `seek(frame)` and
    `read(frames, dtype="float32", always_2d=True, out=None)` behave as soundfile's do. Raises `RuntimeError`
    with FFmpeg's reason when the file cannot be opened, has no audio stream or fails to decode."""

    def __init__(self, path):
        try:
            self._container = av.open(os.fsdecode(path), **OPEN_OPTIONS)
        except (av.FFmpegError, UnicodeDecodeError) as error:
            raise RuntimeError(_reason(error)) from None
        if not self._container.streams.audio:
            self._container.close()
            if MEDIA_CONTAINERS.intersection(self._container.format.name.split(",")):
                raise NoAudioStream(f"no audio stream (FFmpeg reads it as {self._container.format.long_name})")
            raise RuntimeError(f"FFmpeg reads it as {self._container.format.long_name}, without audio")
        self._stream = self._container.streams.audio[0]
        codec = self._stream.codec_context
        self.samplerate, self.channels, self.format = codec.sample_rate, codec.channels, codec.name.upper()
        self.frames = self._length()
        self._origin = 0
        self._start_decoding(drop_until=None)
        start, self._pending = next(self._blocks, (None, self._pending))
        self._origin, self._position = start or 0, len(self._pending)  # timestamps count from the first sample

    def _length(self):
        stream, container = self._stream, self._container
        if container.format.name in ESTIMATED_LENGTH:
            return UNKNOWN_FRAMES
        if stream.duration is not None:
            return int(round(stream.duration * stream.time_base * self.samplerate))
        if container.duration is not None:
            return int(round(container.duration / av.time_base * self.samplerate))
        return UNKNOWN_FRAMES

    def _start_decoding(self, drop_until):
        self._blocks = self._decoded_blocks()
        self._pending = np.zeros((0, self.channels), np.float32)
        self._position, self._drop_until = 0, drop_until

    def _decoded_blocks(self):
        """(first frame index, counted from the file's first sample, or None where FFmpeg gives no timestamp;
        float32 array (n, channels)) of each decoded block from the container's position on. A packet that
        fails to decode is skipped (as FFmpeg does); data ending early (a file cut short) ends the blocks, for
        the caller to count what came."""
        to_float = av.AudioResampler(format="flt", layout=self._stream.codec_context.layout, rate=self.samplerate)
        scale = self._stream.time_base * self.samplerate
        packets = self._container.demux(self._stream)
        while True:
            try:
                packet = next(packets)
            except (StopIteration, av.FFmpegError):
                break
            try:
                frames = packet.decode()
            except av.FFmpegError:
                continue
            for frame in frames:
                start = None if frame.pts is None else int(round(frame.pts * scale)) - self._origin
                for packed in to_float.resample(frame):
                    yield start, packed.to_ndarray().reshape(-1, self.channels)
                    start = None
        for packed in to_float.resample(None):
            yield None, packed.to_ndarray().reshape(-1, self.channels)

    def seek(self, frame):
        """Move to `frame`: FFmpeg seeks to a packet at least `SEEK_PREROLL` s before it (so that overlapping
        transforms such as AAC's and Opus's have warmed up), what lies before `frame` is decoded and dropped."""
        start = max(0.0, frame / self.samplerate - SEEK_PREROLL)
        target = int(start / self._stream.time_base)
        try:
            self._container.seek(target, stream=self._stream, backward=True)
        except av.FFmpegError as error:
            raise RuntimeError(_reason(error)) from None
        self._start_decoding(drop_until=frame)
        return frame

    def _next_block(self):
        """The next decoded samples at or after the seek target, or None at the end."""
        for start, block in self._blocks:
            position = self._position if start is None else start
            self._position = position + len(block)
            if self._drop_until is not None:
                if self._position <= self._drop_until:
                    continue
                block, self._drop_until = block[max(0, self._drop_until - position):], None
            return block
        return None

    def read(self, frames, dtype="float32", always_2d=True, out=None):
        """Up to `frames` frames from the current position as float32, shape (n, channels); fewer at the end."""
        del dtype, always_2d  # genrekit.audio always reads float32, 2-D
        pieces, have = [self._pending], len(self._pending)
        while have < frames:
            block = self._next_block()
            if block is None:
                break
            pieces.append(block)
            have += len(block)
        data = np.concatenate(pieces) if len(pieces) > 1 else pieces[0]
        data, self._pending = data[:frames], data[frames:]
        if out is None:
            return data
        out[:len(data)] = data
        return out[:len(data)]

    def close(self):
        self._container.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _reason(error):
    """FFmpeg's message, without the errno and file name PyAV adds."""
    return getattr(error, "strerror", None) or str(error)


def write_with_ffmpeg(path, y, sr, codec=None, bit_rate=128_000):
    """Encode float32 samples, mono (n,) or (n, 1) or stereo (n, 2), at `sr` Hz with FFmpeg: the extension's encoder
    (`FFMPEG_ENCODERS`) or `codec` (e.g. "alac"), `bit_rate` bit/s where the codec is lossy, the index of an
    .m4a/.mp4 first (as a download is); returns the path."""
    muxer, encoder = FFMPEG_ENCODERS[Path(path).suffix]
    y = np.asarray(y, dtype=np.float32).reshape(len(y), -1)
    layout = "mono" if y.shape[1] == 1 else "stereo"
    options = {"movflags": "+faststart"} if muxer in ("ipod", "mp4") else {}
    with av.open(str(path), "w", format=muxer, options=options) as container:
        stream = container.add_stream(codec or encoder, rate=48000 if encoder == "libopus" else sr, layout=layout)
        stream.bit_rate = bit_rate
        offered = [audio_format.name for audio_format in stream.codec_context.codec.audio_formats]
        stream.codec_context.format = next(name for name in ("fltp", "flt", "s32p", "s16p", "s16") if name in offered)
        for start in range(0, len(y), 1024):
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(y[start:start + 1024].T), format="fltp",
                                               layout=layout)
            frame.sample_rate, frame.pts = sr, start
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return Path(path)
