"""One colour per genre, the same in every picture and on the web page, whatever the song's ranking."""

import zlib

GENRE_COLORS = {"blues": "#1f77b4", "classical": "#e7ba52", "country": "#8c564b", "disco": "#e377c2",
                "electronic": "#17becf", "hiphop": "#d62728", "jazz": "#9467bd", "metal": "#393b79",
                "pop": "#ff7f0e", "reggae": "#2ca02c", "rnb_soul": "#bcbd22", "rock": "#525252"}
"""The taxonomy's genres: twelve hues far enough apart to tell in a stacked timeline."""

OTHER_COLORS = ("#6b6ecf", "#b5cf6b", "#ce6dbd", "#de9ed6", "#3182bd", "#e6550d", "#31a354", "#756bb1",
                "#fd8d3c", "#74c476", "#9e9ac8", "#e7969c")
"""Labels of other models (a user's own genres), each given one by a hash of its name."""

NOT_SCORED = "#d9d9d9"
"""A song's tail shorter than one window, which no window covers."""


def genre_color(label):
    """The colour of a label, as '#rrggbb'."""
    return GENRE_COLORS.get(label) or OTHER_COLORS[zlib.crc32(label.encode()) % len(OTHER_COLORS)]


def genre_colors(labels):
    """{label: colour} for a model's labels."""
    return {label: genre_color(label) for label in labels}
