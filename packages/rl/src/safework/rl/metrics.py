"""Training metrics: one JSON line per step (``metrics.jsonl``) and the curves drawn from it (``curves.png``).

The JSONL is the record; a resumed run truncates it to the steps its checkpoint has, so the file never
shows a step twice.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

PANELS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("reward (total and per component)", ("reward", "reward_format", "reward_*")),
    ("response length (tokens)", ("length_mean",)),
    ("clip fraction", ("clip_fraction",)),
    ("policy drift (k3)", ("drift",)),
    ("entropy (nats/token)", ("entropy",)),
    ("zero-variance share", ("zero_variance_share",)),
    ("tokens / s", ("tokens_per_s",)),
    ("loss", ("loss",)),
)


class MetricsLog:
    def __init__(self, path: Path, keep_steps: int | None = None) -> None:
        """Open ``path`` for appending; with ``keep_steps`` drop lines of steps after it (a resume)."""
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        if keep_steps is not None and path.exists():
            kept = [line for line in self.read() if int(line.get("step", 0)) <= keep_steps]
            path.write_text("".join(json.dumps(r) + "\n" for r in kept), encoding="utf-8")
        elif keep_steps is None:
            path.write_text("", encoding="utf-8")

    def write(self, record: Mapping[str, Any]) -> None:
        clean = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in record.items()}
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(clean) + "\n")
            handle.flush()
            os.fsync(handle.fileno())

    def read(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        return [
            json.loads(line) for line in self.path.read_text(encoding="utf-8").splitlines() if line.strip()
        ]


def _series(records: list[dict[str, Any]], key: str) -> tuple[list[int], list[float]]:
    xs, ys = [], []
    for r in records:
        value = r.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            xs.append(int(r["step"]))
            ys.append(float(value))
    return xs, ys


def plot_curves(records: list[dict[str, Any]], out: Path) -> Path | None:
    """A grid of the :data:`PANELS` over the RL steps; None when there is nothing to draw."""
    rl = [r for r in records if r.get("kind") == "rl"]
    if not rl:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = sorted({k for r in rl for k in r})
    fig, axes = plt.subplots(2, 4, figsize=(16, 7), constrained_layout=True)
    for ax, (title, patterns) in zip(axes.flat, PANELS, strict=True):
        for pattern in patterns:
            matched = (
                [
                    k
                    for k in keys
                    if k.startswith(pattern[:-1]) and "label" not in k and k != "reward_failures"
                ]
                if pattern.endswith("*")
                else [pattern]
            )
            for key in matched:
                if key in ("reward", "reward_format") and pattern.endswith("*"):
                    continue
                xs, ys = _series(rl, key)
                if xs:
                    ax.plot(xs, ys, marker="o", markersize=3, label=key)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("step")
        if ax.lines and title.startswith("reward"):
            ax.legend(fontsize=7)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
