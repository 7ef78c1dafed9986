import os
import shutil

import mutagen
import numpy as np
import pytest
import scipy.signal
import soundfile as sf

from conftest import tone, unknown_length, write_tone
from genrekit.audio import UNKNOWN_FRAMES, audio_info, is_silent, load_audio, stream_audio, to_mono
from genrekit.exceptions import AudioError, ParameterError
from genrekit.ffmpeg_file import write_with_ffmpeg


@pytest.mark.parametrize("ext", ["wav", "flac", "ogg", "au", "mp3", "m4a", "mp4", "aac", "wma", "webm", "mka", "wv"])
def test_formats_load_as_mono_float32_at_22050(tmp_path, ext):
    path = write_tone(tmp_path / f"a.{ext}", freq=440, seconds=1.0, sr=44100, channels=2)
    y = load_audio(path)
    assert y.dtype == np.float32 and y.ndim == 1
    assert abs(len(y) - 22050) < 1200  # mp3 adds encoder padding
    spectrum = np.abs(np.fft.rfft(y[2000:20000]))
    assert abs(np.argmax(spectrum) * 22050 / 18000 - 440) < 3


def test_offset_and_duration_decode_only_the_span(tmp_path):
    sr = 22050
    y = np.concatenate([tone(220, 2.0, sr), tone(880, 2.0, sr)])
    path = tmp_path / "two.wav"
    sf.write(path, y, sr)
    part = load_audio(path, offset=2.5, duration=1.0)
    assert len(part) == sr
    assert abs(np.argmax(np.abs(np.fft.rfft(part))) * sr / len(part) - 880) < 2


def _chirp(seconds, sr):
    t = np.arange(int(seconds * sr)) / sr
    return (0.4 * scipy.signal.chirp(t, 200, seconds, 4000)).astype(np.float32)


@pytest.mark.parametrize("name, codec", [("aac.m4a", None), ("alac.m4a", "alac"), ("opus.webm", None),
                                         ("song.wma", None), ("flac.mka", None), ("song.wv", None)])
def test_a_span_ffmpeg_decodes_is_that_span_of_the_whole_file(tmp_path, name, codec):
    rate = 48000 if name.endswith(".webm") else 44100  # decoded at the file's own rate: no resampling
    source = _chirp(4.0, rate)
    path = write_with_ffmpeg(tmp_path / name, np.stack([source, source], axis=1), rate, codec)
    whole = load_audio(path, sr=rate)
    if codec == "alac" or name.endswith((".wv", ".mka")):  # lossless: the very samples (to 16 bits in FLAC)
        assert np.allclose(whole, source, atol=1e-4)
    for offset in (0.5, 2.37):
        part, start = load_audio(path, sr=rate, offset=offset, duration=0.5), int(round(offset * rate))
        assert len(part) == rate // 2
        lags = range(-100, 101)
        lag = lags[int(np.argmax([np.dot(whole[start + lag:start + lag + len(part)], part) for lag in lags]))]
        assert abs(lag) <= rate // 1000 + 1  # WebM and WMA stamp packets to the millisecond
        assert np.allclose(part, whole[start + lag:start + lag + len(part)], atol=1e-4)


def test_an_m4a_whose_tags_are_not_utf8_decodes(tmp_path):
    path = write_with_ffmpeg(tmp_path / "latin-1 tags.m4a", _chirp(2.0, 22050), 22050)
    tags = mutagen.File(path, easy=True)
    tags["title"] = "cafQQQ"
    tags.save()
    path.write_bytes(path.read_bytes().replace(b"cafQQQ", b"caf\xe9\xff\xfe"))  # Latin-1 and junk, not UTF-8
    assert len(load_audio(path)) == 2 * 22050


def test_an_m4a_streams_as_it_loads_and_its_header_is_read(tmp_path):
    path = write_with_ffmpeg(tmp_path / "song.m4a", _chirp(5.0, 22050), 22050)
    info = audio_info(path)
    assert (info.samplerate, info.channels, info.frames, info.format) == (22050, 1, 5 * 22050, "AAC")
    blocks = list(stream_audio(path, block_seconds=1.5))
    assert [len(block) for block in blocks[:-1]] == [33075] * 3
    assert np.array_equal(np.concatenate(blocks), load_audio(path))


@pytest.mark.parametrize("ext", ["aac", "wma"])
def test_formats_without_an_exact_length_are_read_to_their_end(tmp_path, ext):
    path = write_with_ffmpeg(tmp_path / f"song.{ext}", _chirp(3.0, 22050), 22050)
    assert audio_info(path).frames == UNKNOWN_FRAMES
    y = load_audio(path)
    assert abs(len(y) - 3 * 22050) < 2100  # WMA's encoder drops its last partial block
    assert sum(len(block) for block in stream_audio(path, block_seconds=1.0)) == pytest.approx(len(y), abs=200)


@pytest.mark.parametrize("channels", [1, 2, 6])
def test_to_mono_is_numpys_mean_of_the_channels(channels):
    y = np.random.default_rng(channels).standard_normal((10_000, channels)).astype(np.float32)
    mono = to_mono(y)
    assert mono.dtype == np.float32 and mono.shape == (10_000,)
    assert np.allclose(mono, y.mean(axis=1), rtol=0, atol=1e-6)
    if channels <= 2:
        assert np.array_equal(mono, y.mean(axis=1, dtype=np.float32))
    assert np.array_equal(to_mono(y[:, 0]), y[:, 0])


def test_info_reads_header(tmp_path):
    info = audio_info(write_tone(tmp_path / "a.wav", seconds=2.0, sr=16000, channels=2))
    assert (info.samplerate, info.channels, info.frames) == (16000, 2, 32000)
    assert info.duration == pytest.approx(2.0)


def test_missing_file(tmp_path):
    with pytest.raises(AudioError, match="nope.wav: file not found"):
        load_audio(tmp_path / "nope.wav")


def test_empty_file(tmp_path):
    (tmp_path / "empty.wav").write_bytes(b"")
    with pytest.raises(AudioError, match="empty.wav: empty file"):
        load_audio(tmp_path / "empty.wav")


def test_directory(tmp_path):
    with pytest.raises(AudioError, match="is a directory"):
        load_audio(tmp_path)


def test_not_audio(tmp_path):
    path = tmp_path / "notes.wav"
    path.write_text("these are not samples " * 50)
    with pytest.raises(AudioError, match="notes.wav: not a readable audio file"):
        load_audio(path)


def test_corrupt_mp3_is_not_called_missing(tmp_path):
    path = tmp_path / "broken.mp3"
    path.write_text("not audio at all")
    with pytest.raises(AudioError, match="broken.mp3: not a readable audio file") as caught:
        load_audio(path)
    assert "does not exist" not in str(caught.value)


def test_unsupported_format(tmp_path):
    path = tmp_path / "song.m4a"
    path.write_bytes(b"\x00\x00\x00\x20ftypM4A " + bytes(2000))
    with pytest.raises(AudioError, match="song.m4a: not a readable audio file or unsupported format"):
        load_audio(path)


def test_header_only_has_no_samples(tmp_path):
    path = tmp_path / "header.wav"
    sf.write(path, np.zeros(0, dtype=np.float32), 22050)
    with pytest.raises(AudioError, match="no audio samples"):
        load_audio(path)


@pytest.mark.parametrize("ext", ["wav", "au", "aiff", "ogg", "flac", "mp3", "m4a"])
def test_a_file_cut_in_half_gives_what_decodes_and_says_what_is_missing(tmp_path, ext):
    """One rule for every format: libsndfile takes a cut WAV, AU or AIFF at its new length and an Ogg without
    its last page as whole (the header or the missing end mark tells), a FLAC, MP3 or M4A decodes short."""
    y = tone(440, 8.0) + 0.1 * np.random.default_rng(0).standard_normal(8 * 22050).astype(np.float32)
    whole = tmp_path / f"whole.{ext}"  # with noise: half of a pure tone's Ogg would be mostly its header
    write_with_ffmpeg(whole, y, 22050) if ext == "m4a" else sf.write(whole, y, 22050)
    cut = tmp_path / f"cut.{ext}"
    data = whole.read_bytes()
    cut.write_bytes(data[:len(data) // 2])
    for read in (load_audio, _streamed):
        said = []
        y = read(cut, on_truncated=said.append)
        assert 2.5 * 22050 < len(y) < 5.5 * 22050
        assert np.allclose(y[:22050], read(whole)[:22050], atol=1e-4)
        promised = "without its end mark" if ext == "ogg" else " of the 8.0 s its header promises "
        assert len(said) == 1 and said[0].startswith("truncated: ") and promised in said[0], said
    assert load_audio(whole, on_truncated=said.append) is not None and len(said) == 1  # whole: nothing said


def test_a_truncated_file_is_logged_by_default_and_refused_when_under_half_a_second(tmp_path, caplog):
    whole = write_tone(tmp_path / "whole.wav", seconds=8.0)
    cut = tmp_path / "cut.wav"
    cut.write_bytes(whole.read_bytes()[:44 + 2 * 22050 * 3])  # the header and 3 s
    assert len(load_audio(cut)) == 3 * 22050
    assert [r.getMessage() for r in caplog.records] == [
        f"{cut}: truncated: 3.0 s of the 8.0 s its header promises are in the file (62% missing)"]
    cut.write_bytes(whole.read_bytes()[:44 + 2 * 22050 // 4])
    with pytest.raises(AudioError, match=r"cut.wav: truncated: 0.2 s of the 8.0 s .* too little decodes to use"):
        load_audio(cut)


def test_an_mp3_whose_header_overstates_its_length_by_two_percent_is_no_truncation(tmp_path):
    """Seen in real libraries: an MP3's length in its header is an estimate, and every player plays it.
    Four percent short is a cut."""
    whole = write_tone(tmp_path / "whole.mp3", seconds=20.0).read_bytes()
    path = tmp_path / "a.mp3"
    for kept, short, said in ((0.97, (0.015, 0.02), False), (0.95, (0.035, 0.04), True)):
        path.write_bytes(whole[:int(len(whole) * kept)])
        notes = []
        y = load_audio(path, on_truncated=notes.append)
        assert short[0] < 1 - len(y) / (20 * 22050) < short[1]
        assert notes == (["truncated: 19.2 s of the 20.0 s its header promises could be decoded (4% missing)"]
                         if said else [])


def test_a_span_inside_what_is_there_of_a_cut_file_is_not_truncated(tmp_path):
    whole = write_tone(tmp_path / "whole.wav", seconds=8.0)
    cut = tmp_path / "cut.wav"
    cut.write_bytes(whole.read_bytes()[:len(whole.read_bytes()) // 2])
    said = []
    assert len(load_audio(cut, offset=1.0, duration=2.0, on_truncated=said.append)) == 2 * 22050 and not said


def test_non_finite_samples(tmp_path):
    y = tone(seconds=0.5)
    y[100] = np.nan
    path = tmp_path / "nan.wav"
    sf.write(path, y, 22050, subtype="FLOAT")
    with pytest.raises(AudioError, match="NaN"):
        load_audio(path)


def test_offset_past_end(tmp_path):
    with pytest.raises(AudioError, match="past the end"):
        load_audio(write_tone(tmp_path / "a.wav", seconds=1.0), offset=5.0)


@pytest.mark.parametrize("kwargs", [dict(offset=-1), dict(duration=0), dict(sr=0)])
def test_bad_arguments(tmp_path, kwargs):
    with pytest.raises(ParameterError):
        load_audio(write_tone(tmp_path / "a.wav"), **kwargs)


def test_huge_file_needs_a_window(tmp_path, monkeypatch):
    import genrekit.audio

    monkeypatch.setattr(genrekit.audio, "MAX_LOAD_SECONDS", 1.0)
    path = write_tone(tmp_path / "long.wav", seconds=3.0)
    with pytest.raises(AudioError, match="too long to decode at once"):
        load_audio(path)
    assert len(load_audio(path, duration=0.5)) == 11025
    streamed = unknown_length(write_tone(tmp_path / "streamed.flac", seconds=3.0))  # found out while decoding
    with pytest.raises(AudioError, match=r"streamed.flac: too long to decode at once \(over 1 s\)"):
        load_audio(streamed)


def test_silence_detection(tmp_path):
    assert is_silent(np.zeros(1000, dtype=np.float32))
    assert is_silent(np.full(1000, 0.5, dtype=np.float32))  # a DC offset alone is no sound
    assert not is_silent(tone(seconds=0.1)) and not is_silent(tone(seconds=0.1) + 0.5)


def _streamed(path, **kwargs):
    return np.concatenate(list(stream_audio(path, block_seconds=1.0, **kwargs)))


@pytest.mark.parametrize("name, content", [("text.au", b"just some text, not audio\n" * 200),
                                           ("noise.snd", np.random.default_rng(0).bytes(40_000))])
def test_au_and_snd_files_without_their_header_are_not_audio(tmp_path, name, content):
    """libsndfile would read them as headerless 8 kHz samples."""
    (tmp_path / name).write_bytes(content)
    for read in (audio_info, load_audio, _streamed):
        with pytest.raises(AudioError, match=rf"{name}: not an audio file \(no audio header\)"):
            read(tmp_path / name)


def test_a_flac_of_unknown_length_streams_to_its_end(tmp_path):
    whole = write_tone(tmp_path / "whole.flac", 440, seconds=5.0)
    streamed = unknown_length(shutil.copy(whole, tmp_path / "streamed.flac"))
    y = _streamed(streamed)
    assert len(y) == 5 * 22050 and np.allclose(y, load_audio(whole), atol=1e-6)
    assert len(load_audio(streamed, duration=10.0)) == len(load_audio(streamed)) == 5 * 22050


def test_links_that_loop_or_dangle_paths_through_a_file_and_pipes(tmp_path):
    (tmp_path / "loop.wav").symlink_to(tmp_path / "loop.wav")
    (tmp_path / "dangling.wav").symlink_to(tmp_path / "gone.wav")
    song = write_tone(tmp_path / "a.wav")
    fifo = tmp_path / "pipe.wav"
    os.mkfifo(fifo)  # libsndfile would wait for a writer for ever
    for path, reason in ((tmp_path / "loop.wav", "cannot be read (too many levels of symbolic links)"),
                         (tmp_path / "dangling.wav", "broken link: its target is missing"),
                         (song / "b.wav", "cannot be read (not a directory)"),
                         (fifo, "not a regular file (a pipe, socket or device)")):
        with pytest.raises(AudioError) as error:
            audio_info(path)
        assert str(error.value) == f"{path}: {reason}"



def test_what_the_mp3_decoder_prints_is_one_debug_line_naming_its_file(tmp_path, capfd, caplog):
    import logging

    caplog.set_level(logging.DEBUG, logger="genrekit.audio")
    path = write_tone(tmp_path / "cut.mp3", seconds=4.0)
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])
    load_audio(path, on_truncated=lambda reason: None)
    assert capfd.readouterr().err == ""  # libmpg123's lines do not reach stderr without a name
    notes = [record for record in caplog.records if "decoder notes" in record.getMessage()]
    assert notes and all(record.levelno == logging.DEBUG for record in notes)
    assert all(record.getMessage().startswith(f"{path}: decoder notes: ") for record in notes)
    assert any("Xing stream size" in record.getMessage() for record in notes)
