from genrekit import plots
from genrekit.evaluation import classification_metrics


def test_per_genre_accuracy_leaves_out_genres_without_clips(tmp_path, monkeypatch):
    metrics = classification_metrics([0, 0, 2], [0, 1, 2], ["blues", "jazz", "rock", "pop"])
    monkeypatch.setattr(plots, "save_figure", lambda figure, path: figure)
    ax = plots.plot_per_label_accuracy({"model": metrics}, tmp_path / "a.png").axes[0]
    assert [tick.get_text() for tick in ax.get_xticklabels()] == ["blues", "rock"]
    assert [bar.get_height() for bar in ax.patches] == [0.5, 1.0]
    assert ax.lines[0].get_ydata()[0] == 0.25  # chance over the model's four genres


def test_representations_count_time_from_the_offset(tmp_path, monkeypatch):
    from conftest import tone
    from genrekit.features import compute_features

    monkeypatch.setattr(plots, "save_figure", lambda figure, path: figure)
    figure = plots.plot_representations(compute_features(tone(seconds=2.0)), tmp_path / "a.png", offset=5.0)
    for ax in figure.axes[:4]:
        left, right = ax.get_xlim()
        assert abs(left - 5.0) < 0.15 and abs(right - 7.0) < 0.15, (ax.get_title(), left, right)
