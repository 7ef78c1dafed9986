"""Variants of songs for the paper's robustness experiments (section 3).

Audio variants of a mono float32 signal at `sr` Hz (section 3.1, "song variants such as sped-up versions"):

* `speed`: played faster or slower by resampling, so pitch and tempo change together (a "sped-up" song);
* `time_stretch`: tempo only, `pitch_shift`: pitch only (Rubber Band through pedalboard; librosa's phase
  vocoder when pedalboard is not installed);
* `add_noise` (white noise at a given SNR), `low_pass` (Butterworth), `mp3` and `aac` (re-encoding at a low
  bitrate).

`VARIANTS` names the ones the experiment runner uses; `apply_variant(name, y, sr)` applies one.

Instrumental and a-cappella versions (section 3.2), approximate, from audio: `separate` splits a mixture
into a repeating background and a non-repeating foreground (REPET-SIM, as in librosa's vocal separation
example). On real songs the foreground holds the vocals plus whatever else does not repeat; results from it
are labelled approximate. The exact versions, from MIDI, are in `genrekit.midi.versions`.
"""

import io
import tempfile
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from .audio import load_audio, resample
from .exceptions import GenrekitError, ParameterError


# ------------------------------------------------------------------------------------------ audio variants

def _signal(y):
    y = np.asarray(y, dtype=np.float32)
    if y.ndim != 1:
        raise ParameterError(f"need a mono signal of shape (n,), got shape {y.shape}")
    return y


def _pedalboard():
    try:
        import pedalboard
    except ImportError:  # optional: librosa's phase vocoder is the fallback
        return None
    return pedalboard


def speed(y, sr, factor):
    """Play `y` `factor` times as fast by resampling: duration / factor, every frequency x factor
    (tempo and pitch change together, like a sped-up song)."""
    y = _signal(y)
    if not factor > 0:
        raise ParameterError(f"speed factor must be positive, got {factor}")
    return resample(y, sr * factor, sr)


def time_stretch(y, sr, rate):
    """Tempo x `rate` with the pitch kept: duration / rate (Rubber Band via pedalboard, else librosa)."""
    y = _signal(y)
    if not rate > 0:
        raise ParameterError(f"stretch rate must be positive, got {rate}")
    pedalboard = _pedalboard()
    if pedalboard is None:
        import librosa

        return librosa.effects.time_stretch(y, rate=rate).astype(np.float32)
    return pedalboard.time_stretch(y[None], float(sr), stretch_factor=float(rate))[0].astype(np.float32)


def pitch_shift(y, sr, semitones):
    """Pitch moved by `semitones` (frequencies x 2^(semitones/12)) with the duration kept."""
    y = _signal(y)
    pedalboard = _pedalboard()
    if pedalboard is None:
        import librosa

        return librosa.effects.pitch_shift(y, sr=sr, n_steps=semitones).astype(np.float32)
    out = pedalboard.PitchShift(semitones=float(semitones))(y[None], float(sr))[0]
    return fit_length(out, len(y))


def add_noise(y, snr_db, seed=0):
    """`y` plus white Gaussian noise scaled so that the signal-to-noise ratio is exactly `snr_db` dB
    (a silent signal is returned unchanged)."""
    y = _signal(y)
    power = float(np.mean(y.astype(np.float64) ** 2)) if y.size else 0.0
    if power == 0.0:
        return y.copy()
    noise = np.random.default_rng(seed).standard_normal(y.size)
    noise *= np.sqrt(power / 10 ** (snr_db / 10) / np.mean(noise ** 2))
    return (y + noise).astype(np.float32)


def low_pass(y, sr, cutoff_hz, order=8):
    """Zero-phase Butterworth low-pass at `cutoff_hz` (order `order`, applied forwards and backwards)."""
    from scipy.signal import butter, sosfiltfilt

    y = _signal(y)
    if not 0 < cutoff_hz < sr / 2:
        raise ParameterError(f"cutoff must lie between 0 and {sr / 2:g} Hz (Nyquist), got {cutoff_hz}")
    if y.size <= 3 * (order + 1):
        return y.copy()
    sos = butter(order, cutoff_hz, btype="low", fs=sr, output="sos")
    return sosfiltfilt(sos, y).astype(np.float32)


def fit_length(y, n):
    """`y` as float32, cut or zero-padded at the end to exactly `n` samples."""
    y = np.asarray(y, dtype=np.float32)
    return y[:n] if len(y) >= n else np.pad(y, (0, n - len(y)))


def _encoder_delay(reference, decoded, max_lag):
    """Lag (samples) by which `decoded` trails `reference`, by cross-correlation over [0, max_lag]."""
    from scipy.signal import correlate

    n = min(len(reference), len(decoded) - max_lag, 5 * 22050)
    if n <= 0 or not np.any(reference[:n]):
        return 0
    scores = correlate(decoded[: n + max_lag], reference[:n], mode="valid", method="fft")
    return int(np.argmax(scores))


def mp3(y, sr, bitrate_kbps):
    """`y` encoded as MP3 at `bitrate_kbps` kbit/s (constant bitrate, LAME through pedalboard) and decoded
    again, the encoder's delay removed so the result lines up with `y` and has its length."""
    y = _signal(y)
    pedalboard = _pedalboard()
    if pedalboard is None:
        raise GenrekitError("the mp3 variant needs pedalboard (pip install pedalboard)")
    from pedalboard.io import AudioFile

    buffer = io.BytesIO()
    try:
        with AudioFile(buffer, "w", float(sr), 1, format="mp3", quality=f"{int(bitrate_kbps)}k") as handle:
            handle.write(y[None])
    except (ValueError, RuntimeError) as error:
        raise ParameterError(f"cannot encode MP3 at {bitrate_kbps} kbit/s and {sr} Hz ({error})") from None
    buffer.seek(0)
    try:
        import soundfile as sf

        decoded, rate = sf.read(buffer, dtype="float32", always_2d=True)
    except Exception:  # libsndfile without MP3 support: decode with pedalboard
        buffer.seek(0)
        with AudioFile(buffer) as handle:
            decoded, rate = handle.read(handle.frames).T, handle.samplerate
    decoded = decoded.mean(axis=1) if decoded.ndim == 2 else decoded
    if int(rate) != int(sr):
        decoded = resample(decoded, int(rate), sr)
    return _lined_up(y, decoded)


def aac(y, sr, bitrate_kbps):
    """`y` encoded as AAC in an .m4a at `bitrate_kbps` kbit/s (FFmpeg's encoder through PyAV, in a temporary
    folder) and decoded again, lined up with `y` and of its length as `mp3` does."""
    from .ffmpeg_file import write_with_ffmpeg  # PyAV: loaded only for this variant

    y = _signal(y)
    with tempfile.TemporaryDirectory(prefix="genrekit-aac-") as folder:
        path = write_with_ffmpeg(Path(folder) / "variant.m4a", y, sr, bit_rate=int(bitrate_kbps * 1000))
        decoded = load_audio(path, sr=sr)
    return _lined_up(y, decoded)


def _lined_up(y, decoded):
    """A decoded re-encoding of `y` without the encoder's delay, cut or zero-padded to `y`'s length."""
    max_lag = min(4096, max(len(decoded) - 1, 0))
    delay = _encoder_delay(y, decoded, max_lag) if len(decoded) > len(y) else 0
    return fit_length(decoded[delay:], len(y))


@dataclass(frozen=True)
class Variant:
    """A named audio variant: `function(y, sr)` and what it does in words."""

    name: str
    description: str
    function: object

    def __call__(self, y, sr):
        return np.asarray(self.function(_signal(y), sr), dtype=np.float32)


def _noise(y, sr, snr_db):
    return add_noise(y, snr_db, seed=0)


VARIANTS = {variant.name: variant for variant in [
    Variant("speed-0.8x", "played at 0.8x speed (slower and lower, resampled)", partial(speed, factor=0.8)),
    Variant("speed-1.1x", "played at 1.1x speed (faster and higher, resampled)", partial(speed, factor=1.1)),
    Variant("speed-1.25x", "played at 1.25x speed (faster and higher, resampled)", partial(speed, factor=1.25)),
    Variant("speed-1.5x", "played at 1.5x speed (faster and higher, resampled)", partial(speed, factor=1.5)),
    Variant("stretch-0.8x", "tempo x0.8, pitch kept", partial(time_stretch, rate=0.8)),
    Variant("stretch-1.25x", "tempo x1.25, pitch kept", partial(time_stretch, rate=1.25)),
    Variant("pitch+2", "pitch up 2 semitones, tempo kept", partial(pitch_shift, semitones=2)),
    Variant("pitch-2", "pitch down 2 semitones, tempo kept", partial(pitch_shift, semitones=-2)),
    Variant("noise-20dB", "white noise at 20 dB SNR", partial(_noise, snr_db=20)),
    Variant("noise-10dB", "white noise at 10 dB SNR", partial(_noise, snr_db=10)),
    Variant("lowpass-3k", "low-pass at 3 kHz (8th-order Butterworth)", partial(low_pass, cutoff_hz=3000)),
    Variant("mp3-32k", "MP3 at 32 kbit/s and back", partial(mp3, bitrate_kbps=32)),
    Variant("aac-32k", "AAC (.m4a) at 32 kbit/s and back", partial(aac, bitrate_kbps=32)),
]}

DEFAULT_VARIANTS = ("speed-0.8x", "speed-1.1x", "speed-1.25x", "speed-1.5x", "stretch-1.25x", "pitch+2", "pitch-2",
                    "noise-20dB", "lowpass-3k", "mp3-32k")
"""The variants `genrekit experiment variants` runs when none are named."""


def check_variants(names):
    """The names as a list of `VARIANTS` keys (any case), or ParameterError naming the unknown ones and
    listing the known ones."""
    known = {name.lower(): name for name in VARIANTS}
    names = [known.get(name.lower(), name) for name in names]
    unknown = [name for name in names if name not in VARIANTS]
    if unknown:
        raise ParameterError(f"unknown variant(s) {', '.join(map(repr, unknown))}; known: {', '.join(VARIANTS)}")
    return names


def apply_variant(name, y, sr):
    """The variant `name` (a key of `VARIANTS`) of the mono signal `y` at `sr` Hz, float32."""
    name, = check_variants([name])
    return VARIANTS[name](y, sr)


# ---------------------------------------------------------------------------------- separation from audio

def separate(y, sr, *, width_seconds=2.0, margin_background=2.0, margin_foreground=10.0, power=2.0,
             n_fft=2048, hop_length=512):
    """Split a mixture into (background, foreground), both of `y`'s length: REPET-SIM as in librosa's
    vocal separation example, with the two soft masks normalised to sum to one so that
    background + foreground == y up to STFT round-off.

    Each magnitude frame is replaced by the median of its most similar frames (cosine, at least
    `width_seconds` away): what repeats (accompaniment) survives the median, what does not (mostly the
    voice) does not. Approximate: the foreground also takes non-repeating instruments and transients.
    """
    import librosa

    y = _signal(y)
    if y.size == 0:
        return y.copy(), y.copy()
    stft = librosa.stft(y, n_fft=n_fft, hop_length=hop_length)
    magnitude, phase = librosa.magphase(stft)
    frames = magnitude.shape[1]
    if frames < 5:  # too short to find repetitions: all background
        return y.copy(), np.zeros_like(y)
    width = int(librosa.time_to_frames(width_seconds, sr=sr, hop_length=hop_length))
    width = max(1, min(width, (frames - 1) // 2 - 1))  # librosa needs width < (frames - 1) // 2
    repeating = librosa.decompose.nn_filter(magnitude, aggregate=np.median, metric="cosine", width=width)
    repeating = np.minimum(magnitude, repeating)
    mask_background = librosa.util.softmask(repeating, margin_background * (magnitude - repeating), power=power)
    mask_foreground = librosa.util.softmask(magnitude - repeating, margin_foreground * repeating, power=power)
    total = mask_background + mask_foreground
    share = np.divide(mask_background, total, out=np.full_like(total, 0.5), where=total > 1e-12)
    background = librosa.istft(share * stft, hop_length=hop_length, n_fft=n_fft, length=len(y))
    foreground = librosa.istft((1.0 - share) * stft, hop_length=hop_length, n_fft=n_fft, length=len(y))
    return background.astype(np.float32), foreground.astype(np.float32)
