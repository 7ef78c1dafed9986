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


def _prediction(labels, timeline, window=3.0, tail=0.0, source="song.mp3"):
    import numpy as np

    from genrekit.predict import Prediction

    timeline = np.asarray(timeline, float)
    times = np.arange(len(timeline)) * window
    return Prediction(source, labels, timeline.mean(0), times, timeline, len(timeline) * window + tail,
                      times + window)


def test_a_four_hour_timeline_is_binned_timed_in_hours_and_minutes_and_coloured_by_genre():
    import matplotlib.colors
    import numpy as np

    from genrekit.palette import GENRE_COLORS

    labels = ["blues", "jazz", "rock", "pop"]
    rng = np.random.default_rng(0)
    timeline = rng.dirichlet([1, 1, 1, 1], size=4800)  # 4 hours of 3 s windows
    timeline[:, 3] = 0.002  # pop: never visible
    timeline /= timeline.sum(1, keepdims=True)
    figure = plots.timeline_figure(_prediction(labels, timeline, tail=0.013))
    ax = figure.axes[0]
    columns = len(ax.collections[0].get_paths()[0].vertices) // 4  # each column: two edges, top and bottom
    assert 150 <= columns <= plots.TIMELINE_COLUMNS, columns
    figure.canvas.draw()
    ticks = [tick.get_text() for tick in ax.get_xticklabels() if tick.get_text()]
    assert "1:00:00" in ticks and all(t.count(":") in (1, 2) for t in ticks), ticks
    legend = {text.get_text(): handle for text, handle in zip(ax.get_legend().get_texts(),
                                                              ax.get_legend().legend_handles)}
    assert set(legend) == {"blues", "jazz", "rock"}  # no pop (never visible), no 13 ms "not scored"
    shown = {name: matplotlib.colors.to_hex(handle.get_facecolor()) for name, handle in legend.items()}
    assert shown == {name: GENRE_COLORS[name] for name in shown} and len(set(shown.values())) == 3
    plots.plt.close(figure)


def test_one_genre_has_one_colour_whatever_the_ranking():
    import matplotlib.colors

    labels = ["blues", "rock", "jazz"]
    colours = []
    for timeline in ([[0.7, 0.2, 0.1]] * 5, [[0.1, 0.2, 0.7]] * 5):
        figure = plots.timeline_figure(_prediction(labels, timeline))
        legend = figure.axes[0].get_legend()
        colours.append({t.get_text(): matplotlib.colors.to_hex(h.get_facecolor())
                        for t, h in zip(legend.get_texts(), legend.legend_handles)})
        plots.plt.close(figure)
    assert colours[0] == colours[1] and len(set(colours[0].values())) == 3


def test_the_web_page_gets_the_same_palette():
    from genrekit.palette import genre_colors

    colors = genre_colors(["blues", "rnb_soul", "low", "high"])
    assert colors["blues"] == "#1f77b4" and colors["low"] == genre_colors(["low"])["low"]
    assert len(set(colors.values())) == 4
