"""The musicnn and vgg ports against musicnn's own output (tests/data/musicnn_reference.npz and
vgg_reference.npz, written by scripts/convert_musicnn.py with TensorFlow from `reference_signal`), and the
backbone-musicnn model on either network."""

from pathlib import Path

import numpy as np
import pytest
import torch

from genrekit.models.musicnn import (CONSTANT_FILTER, MUSICNN_SR, N_FRAMES, WEIGHTS, MusicnnFrontEnd, Resampler,
                                    convolve_varying, frequency_max, load_musicnn)
from genrekit.models.vgg import VGG_WEIGHTS, load_vgg

REFERENCE = Path(__file__).parent / "data" / "musicnn_reference.npz"
VGG_REFERENCE = Path(__file__).parent / "data" / "vgg_reference.npz"
SIGNAL_SECONDS = 6.0


def reference_signal(sr, seconds=SIGNAL_SECONDS, seed=0):
    """Synthetic music defined at any sample rate and band-limited below 7 kHz: a chord, a 100 Hz -> 6 kHz
    chirp and 150 seeded random partials, under a slow tremolo."""
    t = np.arange(int(round(seconds * sr))) / sr
    rng = np.random.default_rng(seed)
    y = 0.08 * sum(np.sin(2 * np.pi * f * t) for f in (110.0, 277.2, 329.6, 440.0))
    y += 0.15 * np.sin(2 * np.pi * (100 * t + (6000 - 100) * t ** 2 / (2 * seconds)))
    for freq, phase in zip(rng.uniform(60, 7000, 150), rng.uniform(0, 2 * np.pi, 150)):
        y += 0.01 * np.sin(2 * np.pi * freq * t + phase)
    return (y * (0.7 + 0.3 * np.sin(2 * np.pi * 1.5 * t))).astype(np.float32)


@pytest.fixture(scope="module")
def reference():
    if not REFERENCE.is_file():
        pytest.skip(f"{REFERENCE} not found (scripts/convert_musicnn.py writes it)")
    return dict(np.load(REFERENCE))


@pytest.fixture(scope="module")
def musicnn():
    if not WEIGHTS.is_file():
        pytest.skip(f"{WEIGHTS} not found (scripts/convert_musicnn.py writes it)")
    return load_musicnn()


@pytest.fixture(scope="module")
def vgg():
    if not VGG_WEIGHTS.is_file():
        pytest.skip(f"{VGG_WEIGHTS} not found (scripts/convert_musicnn.py --model MSD_vgg writes it)")
    return load_vgg()


@pytest.fixture(scope="module")
def front_end():
    return MusicnnFrontEnd().eval()


def test_reference_signal_is_the_one_the_reference_was_made_from(reference):
    assert reference["sr"] == MUSICNN_SR and reference["seconds"] == SIGNAL_SECONDS
    assert np.allclose(reference_signal(MUSICNN_SR)[:256], reference["signal_head"], atol=1e-6)


def test_16khz_log_mel_matches_musicnn(reference, front_end):
    """The STFT as a DFT convolution and the mel filterbank against librosa (musicnn's front end in float32):
    log-mel values range 0 to 5.4 here."""
    frames = np.concatenate(reference["patches"])
    with torch.no_grad():
        ours = front_end.logmel(torch.from_numpy(reference_signal(MUSICNN_SR))[None])[0].numpy()
    assert ours.shape == (1 + int(SIGNAL_SECONDS * MUSICNN_SR) // 256, 96)
    assert np.abs(ours[:len(frames)] - frames).max() < 1e-4


def test_22050_hz_front_end_matches_musicnn(reference, front_end):
    """The signal made at 22050 Hz and resampled in torch against musicnn's log-mel of the same signal made
    at 16 kHz. The first frame is left out: it reaches back before the start, where the 16 kHz signal starts
    abruptly and the resampled one rings."""
    frames = np.concatenate(reference["patches"])
    y = torch.from_numpy(reference_signal(22050))[None]
    with torch.no_grad():
        ours = front_end.logmel(front_end.resample(y))[0].numpy()
        patch = front_end(y[:, :3 * 22050])
    assert np.abs(ours[1:len(frames)] - frames[1:]).max() < 2e-4
    assert patch.shape == (1, N_FRAMES, 96) and torch.allclose(patch[0], torch.from_numpy(ours[:N_FRAMES]), atol=1e-4)


def test_patches_are_cropped_or_repeated_to_187_frames(front_end):
    frames = torch.arange(2 * 60 * 96, dtype=torch.float32).reshape(2, 60, 96)
    patch = front_end.patch(frames)
    assert patch.shape == (2, N_FRAMES, 96)
    assert torch.equal(patch[:, 60:120], frames) and torch.equal(patch[:, 180:], frames[:, :7])
    assert torch.equal(front_end.patch(torch.zeros(1, 400, 96)), torch.zeros(1, N_FRAMES, 96))


@pytest.mark.parametrize("freq", [440.0, 3000.0, 7000.0])
def test_resampler_keeps_frequencies_like_soxr(freq):
    import librosa

    resampler = Resampler(22050, MUSICNN_SR)
    t = np.arange(2 * 22050) / 22050
    with torch.no_grad():
        ours = resampler(torch.from_numpy(np.sin(2 * np.pi * freq * t).astype(np.float32))[None])[0].numpy()
    soxr = librosa.resample(np.sin(2 * np.pi * freq * t), orig_sr=22050, target_sr=MUSICNN_SR, res_type="soxr_hq")
    exact = np.sin(2 * np.pi * freq * np.arange(2 * MUSICNN_SR) / MUSICNN_SR)
    assert ours.shape == soxr.shape == exact.shape
    inner = slice(400, -400)  # away from the edges, where any resampler rings
    assert np.abs(ours - exact)[inner].max() < 1e-4 and np.abs(ours - soxr)[inner].max() < 1e-3
    spectrum = np.abs(np.fft.rfft(ours[inner] * np.hanning(len(ours[inner]))))
    assert np.fft.rfftfreq(len(ours[inner]), 1 / MUSICNN_SR)[spectrum.argmax()] == pytest.approx(freq, abs=2)


def test_resampler_removes_what_16khz_cannot_hold():
    t = np.arange(22050) / 22050
    with torch.no_grad():
        out = Resampler(22050, MUSICNN_SR)(torch.from_numpy(np.sin(2 * np.pi * 9000 * t).astype(np.float32))[None])
    assert out[0, 400:-400].abs().max() < 1e-3  # 9 kHz would alias to 7 kHz


def test_port_matches_tensorflow(reference, musicnn):
    with torch.no_grad():
        patches = torch.from_numpy(reference["patches"])
        embedding, taggram = musicnn.embed(patches).numpy(), musicnn(patches).numpy()
    assert np.abs(embedding - reference["embedding"]).max() < 1e-4  # embeddings reach about 4
    assert np.abs(taggram - reference["taggram"]).max() < 1e-5


def test_vgg_port_matches_tensorflow(vgg):
    if not VGG_REFERENCE.is_file():
        pytest.skip(f"{VGG_REFERENCE} not found (scripts/convert_musicnn.py --model MSD_vgg writes it)")
    reference = dict(np.load(VGG_REFERENCE))
    with torch.no_grad():
        patches = torch.from_numpy(reference["patches"])
        last_block, taggram = vgg.embed(patches).numpy(), vgg(patches).numpy()
    assert last_block.shape == reference["embedding"].shape == (len(patches), 256)
    assert np.abs(last_block - reference["embedding"]).max() < 1e-4
    assert np.abs(taggram - reference["taggram"]).max() < 1e-5


def test_vgg_layers_are_its_pooled_blocks_the_last_block_and_the_tag_logits(vgg):
    patches = torch.randn(2, N_FRAMES, 96)
    with torch.no_grad():
        layers, blocks = vgg.layers(patches), vgg.pooled(patches)
        assert layers.shape == (2, vgg.layers_size) == (2, 1330)
        for i, block in enumerate(blocks[:4]):  # max and mean of each channel, side by side
            torch.testing.assert_close(layers[:, 256 * i:256 * (i + 1):2], block.amax((2, 3)))
            torch.testing.assert_close(layers[:, 256 * i + 1:256 * (i + 1):2], block.mean((2, 3)))
        torch.testing.assert_close(layers[:, 1024:1280], vgg.embed(patches))
        torch.testing.assert_close(torch.sigmoid(layers[:, 1280:]), vgg(patches))


def test_vgg_backbone_is_frozen_only(vgg):
    from genrekit.exceptions import ParameterError
    from genrekit.models import create_model

    with pytest.raises(ParameterError, match="msd_vgg is frozen only"):
        create_model("backbone-musicnn", 3, network="msd_vgg", fine_tune="midend")
    with pytest.raises(ParameterError, match="network must be one of"):
        create_model("backbone-musicnn", 3, network="vgg")
    model = create_model("backbone-musicnn", 3, network="msd_vgg", layers="all")
    assert model.embedding_key() != create_model("backbone-musicnn", 3, layers="all").embedding_key()
    assert all(torch.equal(a, b) for a, b in zip(model.backbone.state_dict().values(), vgg.state_dict().values()))


def test_pooling_before_the_batch_norm_gives_the_blocks_output(musicnn):
    """The reordered front end (pool, then ReLU and batch norm) equals conv -> ReLU -> batch norm -> max
    (musicnn's blocks have channels with positive and with negative batch-norm scales)."""
    x = torch.randn(3, 1, 200, 96)
    for block in (*musicnn.timbral, *musicnn.temporal):
        assert (block[2].weight < 0).any() and (block[2].weight > 0).any()
        torch.testing.assert_close(frequency_max(block, x), block(x).amax(3), rtol=0, atol=1e-5)


def test_only_the_filters_that_depend_on_their_input_are_convolved(musicnn, monkeypatch):
    """488 of the 561 front-end filters have zero weights (their output is ReLU(bias) whatever comes in): they
    are left out, and the blocks' outputs stay the same, also for inputs ten times beyond the log-mel range."""
    import torch.nn.functional as F

    blocks = (*musicnn.timbral, *musicnn.temporal)
    assert sum(int((b[0].weight.flatten(1).abs().sum(1) < CONSTANT_FILTER).sum()) for b in blocks) == 488
    x = torch.randn(2, 1, 200, 96) * 10
    with torch.no_grad():
        every_filter = [block(x).amax(3) for block in blocks]
        convolved, conv2d = [], F.conv2d
        monkeypatch.setattr(F, "conv2d", lambda x, weight, *a, **kw: convolved.append(len(weight)) or
                            conv2d(x, weight, *a, **kw))
        for block, expected in zip(blocks, every_filter):
            torch.testing.assert_close(frequency_max(block, x), expected, rtol=0, atol=1e-5)
    assert sum(convolved) == 561 - 488


def test_constant_channels_are_convolved_once_per_batch_with_the_same_result(musicnn):
    conv = musicnn.midend[0][0]
    x = torch.randn(3, conv.in_channels, 187)
    constant = musicnn.constant_front()
    x[:, constant] = torch.randn(len(constant))[:, None]  # one value per channel, the same in every window
    with torch.no_grad():
        torch.testing.assert_close(convolve_varying(conv, x, constant), conv(x), rtol=0, atol=1e-4)
        torch.testing.assert_close(convolve_varying(conv, x, []), conv(x), rtol=0, atol=0)


def test_backbone_stays_frozen_and_in_eval_mode(musicnn):
    from genrekit.models import create_model, list_models

    assert "backbone-musicnn" in list_models()
    model = create_model("backbone-musicnn", 3, dropout=0.2).train()
    assert model.representation == "waveform" and model.head.training
    assert not model.backbone.training and not model.frontend.training
    assert not any(p.requires_grad for p in model.backbone.parameters())
    before = {name: value.clone() for name, value in model.state_dict().items()}
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=1e-2)
    x = torch.randn(4, 22050) * 0.1
    loss = torch.nn.functional.cross_entropy(model(x), torch.tensor([0, 1, 2, 0]))
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    changed = {name for name, value in model.state_dict().items() if not torch.equal(value, before[name])}
    assert changed and all(name.startswith("head.") for name in changed)
    assert not model.backbone.training
    assert all(torch.equal(a, b) for a, b in zip(model.backbone.state_dict().values(), musicnn.state_dict().values()))


def test_all_layers_are_the_pooled_layers_the_embedding_and_the_tag_logits(musicnn):
    patches = torch.randn(2, N_FRAMES, 96)
    with torch.no_grad():
        layers = musicnn.layers(patches)
        assert layers.shape == (2, 1756)
        torch.testing.assert_close(layers[:, :1506], musicnn.pooled(musicnn.front(patches)))
        torch.testing.assert_close(layers[:, 1506:1706], musicnn.embed(patches))
        torch.testing.assert_close(torch.sigmoid(layers[:, 1706:]), musicnn(patches))


@pytest.mark.parametrize("musicnn_kwargs", [{"layers": "penultimate"}, {"layers": "all"},
                                            {"layers": "all", "fine_tune": "all"}, {"layers": "all", "heads": 2},
                                            {"layers": "all", "network": "msd_vgg"}])
def test_member_in_an_ensemble_predicts_and_exports_to_onnx(toy_dataset, tmp_path, musicnn_kwargs):
    """A tiny backbone-musicnn member (a head on its penultimate embedding or on all its layers, or the whole
    network fine-tuned, or two heads averaged, or a head on all of vgg's layers) beside a tiny waveform CNN:
    ensemble file, torch and ONNX agree."""
    pytest.importorskip("onnxruntime")
    for weights in (WEIGHTS, VGG_WEIGHTS):
        if not weights.is_file():
            pytest.skip(f"{weights} not found")
    from genrekit.cache import FeatureCache
    from genrekit.datasets import select
    from genrekit.checkpoints import load_members
    from genrekit.ensemble import Ensemble
    from genrekit.export import export_onnx
    from genrekit.predict import load
    from genrekit.training import TrainConfig, train

    _, tracks = toy_dataset
    cache = FeatureCache(tmp_path / "cache")
    paths = [train(TrainConfig(model=name, epochs=1, window_seconds=1.0, batch_size=8, windows_per_clip=1,
                               model_kwargs=kwargs), select(tracks, "train"), select(tracks, "valid"), tmp_path,
                   labels=["high", "low", "noisy"], cache=cache, workers=1, progress=False)
             for name, kwargs in (("backbone-musicnn", {"hidden": 16, **musicnn_kwargs}),
                                  ("cnn-waveform", {"channels": (4, 8)}))]
    ensemble = Ensemble(load_members(paths), "equal").fit(select(tracks, "valid"), progress=False)
    torch_classifier = load(ensemble.save(tmp_path / "ensemble.pt"))
    onnx_classifier = load(export_onnx(tmp_path / "ensemble.pt", tmp_path / "ensemble.onnx"))
    assert onnx_classifier.scorer.member_representations == ["waveform"]
    for track in select(tracks, "test"):
        a, b = torch_classifier.predict(track.path), onnx_classifier.predict(track.path)
        assert np.allclose(a.probabilities, b.probabilities, atol=1e-4)
        assert np.allclose(a.timeline, b.timeline, atol=1e-4)


def test_training_embeds_each_window_once_and_trains_only_the_head(toy_dataset, tmp_path, monkeypatch, musicnn):
    import soundfile as sf

    from genrekit.cache import FeatureCache
    from genrekit.checkpoints import load_checkpoint
    from genrekit.datasets import select
    from genrekit.models.backbone import MusicnnClassifier
    from genrekit.scoring import window_starts
    from genrekit.training import TrainConfig, train

    _, tracks = toy_dataset
    embedded, real_embed = [], MusicnnClassifier.embed
    monkeypatch.setattr(MusicnnClassifier, "embed", lambda self, x: embedded.append(len(x)) or real_embed(self, x))
    used = select(tracks, "train") + select(tracks, "valid")
    config = TrainConfig(model="backbone-musicnn", epochs=3, patience=10, window_seconds=1.0, batch_size=8,
                         model_kwargs={"hidden": 16})
    path = train(config, select(tracks, "train"), select(tracks, "valid"), tmp_path, labels=["high", "low", "noisy"],
                 cache=FeatureCache(tmp_path / "cache"), workers=1, progress=False)
    assert sum(embedded) == sum(len(window_starts(sf.info(t.path).frames, 22050)) for t in used)
    model, info = load_checkpoint(path)
    assert len(info["history"]) == 3 and info["history"][-1]["train_loss"] < info["history"][0]["train_loss"]
    assert all(torch.equal(a, b) for a, b in zip(model.backbone.state_dict().values(), musicnn.state_dict().values()))

    embedded.clear()  # a second training with the same cache reads the stored embeddings
    again = train(config, select(tracks, "train"), select(tracks, "valid"), tmp_path / "again",
                  labels=["high", "low", "noisy"], cache=FeatureCache(tmp_path / "cache"), workers=1, progress=False)
    assert embedded == []
    assert all(torch.equal(a, b) for a, b in zip(model.head.state_dict().values(),
                                                 load_checkpoint(again)[0].head.state_dict().values()))


def test_checkpoint_leaves_out_the_pretrained_weights_and_checks_their_digest(tmp_path, musicnn):
    from genrekit.checkpoints import load_checkpoint, read_file, save_checkpoint
    from genrekit.exceptions import GenrekitError
    from genrekit.feature_params import FeatureParams
    from genrekit.models import create_model

    torch.manual_seed(0)
    model = create_model("backbone-musicnn", 3, hidden=16).eval()
    path = tmp_path / "member.pt"
    save_checkpoint(path, model, labels=["a", "b", "c"], params=FeatureParams(), window_seconds=3.0)
    stored = read_file(path)
    assert set(stored["state_dict"]) == {"head.1.weight", "head.1.bias", "head.4.weight", "head.4.bias"}
    assert path.stat().st_size < 50_000  # the 3.2 MB of musicnn weights stay in genrekit/weights
    x = torch.from_numpy(reference_signal(22050, seconds=3.0))[None]
    with torch.no_grad():
        assert torch.equal(load_checkpoint(path)[0](x), model(x))

    full = {key: value for key, value in stored.items() if key != "frozen"}
    torch.save({**full, "state_dict": model.state_dict()}, tmp_path / "full.pt")  # as written before
    with torch.no_grad():
        assert torch.equal(load_checkpoint(tmp_path / "full.pt")[0](x), model(x))

    torch.save({**stored, "frozen": {**stored["frozen"], "key": "musicnn-0123456789abcdef"}}, tmp_path / "other.pt")
    with pytest.raises(GenrekitError, match="trained on pretrained weights musicnn-0123456789abcdef"):
        load_checkpoint(tmp_path / "other.pt")


def test_averaged_heads_give_the_mean_probability_of_the_models_in_one_pass(tmp_path, monkeypatch, musicnn):
    from genrekit.checkpoints import load_checkpoint, save_checkpoint
    from genrekit.exceptions import ParameterError
    from genrekit.feature_params import FeatureParams
    from genrekit.models import create_model
    from genrekit.models.backbone import MusicnnClassifier, average_heads

    models = []
    for seed in range(3):
        torch.manual_seed(seed)
        models.append(create_model("backbone-musicnn", 4, hidden=8, layers="all", dropout=0.2).eval())
    averaged = average_heads(models)
    x = torch.from_numpy(np.stack([reference_signal(22050, seconds=3.0, seed=s) for s in range(2)]))
    passes, real_embed = [], MusicnnClassifier.embed
    with torch.no_grad():
        expected = torch.stack([model(x).softmax(-1) for model in models]).mean(0)
        monkeypatch.setattr(MusicnnClassifier, "embed", lambda self, x: passes.append(len(x)) or real_embed(self, x))
        torch.testing.assert_close(averaged(x).softmax(-1), expected)
        monkeypatch.undo()
        assert passes == [2] and not torch.allclose(expected, models[0](x).softmax(-1), atol=1e-3)
        path = tmp_path / "averaged.pt"
        save_checkpoint(path, averaged, labels=list("abcd"), params=FeatureParams(), window_seconds=3.0)
        loaded, info = load_checkpoint(path)
        assert info["config"]["heads"] == 3 and torch.equal(loaded(x), averaged(x))
    torch.manual_seed(0)
    other = create_model("backbone-musicnn", 4, hidden=16, layers="all", dropout=0.2)
    with pytest.raises(ParameterError, match="one configuration"):
        average_heads([models[0], other])
    with pytest.raises(ParameterError, match="heads must be"):
        create_model("backbone-musicnn", 4, heads=2, fine_tune="all")


def test_fine_tuning_adapts_the_upper_layers_on_real_clips_and_resumes(gtzan_extra, tmp_path, monkeypatch, musicnn):
    """midend fine-tuning on a few real excerpts of three genres: the training loss falls, the front end keeps
    musicnn's weights, the adapted layers move, the checkpoint reloads, and a crashed run resumes to the same
    weights."""
    import genrekit.training as training
    from genrekit.cache import FeatureCache
    from genrekit.checkpoints import load_checkpoint
    from genrekit.datasets import load_dataset, select

    labels = ["classical", "disco", "metal"]
    tracks = [t for t in load_dataset(str(gtzan_extra)) if t.label in labels and t.path.endswith(".flac")]
    train_tracks = [t for g in labels for t in [t for t in select(tracks, "train") if t.label == g][:3]]
    valid_tracks = [t for g in labels for t in [t for t in select(tracks, "valid") if t.label == g][:2]]
    config = training.TrainConfig(model="backbone-musicnn", epochs=3, patience=10, batch_size=8, lr=1e-3,
                                  augment=True, views=2, model_kwargs={"fine_tune": "midend", "hidden": 16})
    cache = FeatureCache(tmp_path / "cache")
    whole = train(config, train_tracks, valid_tracks, tmp_path / "whole", labels, cache)
    model, info = load_checkpoint(whole)
    history = info["history"]
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert torch.equal(model.backbone.timbral[0][0].weight, musicnn.timbral[0][0].weight)
    assert not torch.equal(model.backbone.dense.weight, musicnn.dense.weight)
    stored = torch.load(whole, weights_only=True)  # the adapted layers are stored, the frozen ones are not
    assert stored["frozen"]["prefixes"] == ["frontend.", "backbone.input_norm.", "backbone.timbral.", "backbone.temporal."]
    assert "backbone.dense.weight" in stored["state_dict"] and "backbone.timbral.0.0.weight" not in stored["state_dict"]

    real_epoch, calls = training._train_epoch, []

    def crash_in_second_epoch(*a, **kw):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_epoch(*a, **kw)

    monkeypatch.setattr(training, "_train_epoch", crash_in_second_epoch)
    with pytest.raises(KeyboardInterrupt):
        train(config, train_tracks, valid_tracks, tmp_path / "broken", labels, cache)
    monkeypatch.setattr(training, "_train_epoch", real_epoch)
    resumed, _ = load_checkpoint(train(config, train_tracks, valid_tracks, tmp_path / "broken", labels, cache))
    assert all(torch.equal(a, b) for a, b in zip(resumed.state_dict().values(), model.state_dict().values()))


def test_whole_network_fine_tuning_adapts_the_front_end(gtzan_extra, tmp_path, musicnn):
    """fine_tune="all" on a few real excerpts: the loss falls, the front-end filters that vary move (those with
    zero weights stay constant) and the checkpoint stores the network (its ONNX export: the ensemble test)."""
    from genrekit.cache import FeatureCache
    from genrekit.checkpoints import load_checkpoint
    from genrekit.datasets import load_dataset, select
    from genrekit.models.musicnn import constant_filters
    from genrekit.training import TrainConfig

    labels = ["classical", "disco", "metal"]
    tracks = [t for t in load_dataset(str(gtzan_extra)) if t.label in labels and t.path.endswith(".flac")]
    train_tracks = [t for g in labels for t in [t for t in select(tracks, "train") if t.label == g][:3]]
    valid_tracks = [t for g in labels for t in [t for t in select(tracks, "valid") if t.label == g][:2]]
    config = TrainConfig(model="backbone-musicnn", epochs=3, patience=10, batch_size=8, lr=3e-4, augment=True, views=2,
                         model_kwargs={"fine_tune": "all", "layers": "all", "hidden": 16})
    path = train(config, train_tracks, valid_tracks, tmp_path / "run", labels, FeatureCache(tmp_path / "cache"))
    model, info = load_checkpoint(path)
    assert info["history"][-1]["train_loss"] < info["history"][0]["train_loss"]
    before, after = musicnn.timbral[0][0], model.backbone.timbral[0][0]
    assert constant_filters(after) == constant_filters(before)
    varying = sorted(set(range(before.out_channels)) - set(constant_filters(before)))
    assert not torch.equal(after.weight[varying], before.weight[varying])
    assert "backbone.timbral.0.0.weight" in torch.load(path, weights_only=True)["state_dict"]


def train(config, train_tracks, valid_tracks, out, labels, cache):
    from genrekit.training import train as train_model

    return train_model(config, train_tracks, valid_tracks, out, labels=labels, cache=cache, workers=1, progress=False)
