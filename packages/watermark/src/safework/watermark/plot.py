"""Bit accuracy against text length as a PNG, for reports and the README.

matplotlib is imported lazily and driven through its object API with the Agg canvas (never pyplot), so
plotting needs no display, sets no global backend and leaves the caller's matplotlib state alone.
"""

from __future__ import annotations

import math
from pathlib import Path

from safework.core.errors import ConfigError

INSTALL_HINT = "pip install -c constraints.txt matplotlib"


def plot_bit_accuracy(curves: dict[str, list[tuple[int, float]]], out: Path, title: str) -> Path:
    """Write one line per curve (``name -> [(tokens, bit_accuracy), ...]``) to ``out`` as a PNG.

    Points are sorted by token count; a dashed line marks chance (0.5), which an extractor that abstains
    scores (see :func:`safework.watermark.metrics.bit_accuracy`). Returns ``out``.
    """
    if not curves:
        raise ConfigError("no curves to plot; pass {'scheme name': [(tokens, bit_accuracy), ...]}")
    for name, points in curves.items():
        if not points:
            raise ConfigError(f"curve {name!r} has no points; drop it or add (tokens, bit_accuracy) pairs")
        for tokens, accuracy in points:
            if not (math.isfinite(float(tokens)) and 0.0 <= float(accuracy) <= 1.0):
                raise ConfigError(
                    f"curve {name!r} has the point ({tokens!r}, {accuracy!r}); points are (tokens, bit "
                    "accuracy in [0, 1])"
                )
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise ConfigError(f"plotting needs matplotlib, which is not installed; run: {INSTALL_HINT}") from exc

    figure = Figure(figsize=(6.4, 4.0), dpi=120)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    for name, points in curves.items():
        ordered = sorted(points)
        axes.plot([p[0] for p in ordered], [p[1] for p in ordered], marker="o", markersize=3, label=name)
    axes.axhline(0.5, color="grey", linestyle="--", linewidth=1, label="chance")
    axes.set_ylim(0.0, 1.02)
    axes.set_xlabel("tokens")
    axes.set_ylabel("bit accuracy")
    axes.set_title(title)
    axes.grid(True, alpha=0.3)
    axes.legend(loc="lower right", fontsize="small")
    figure.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, format="png")
    return out
