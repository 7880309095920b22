"""Pictures: attribution logos (logomaker), ISM heat maps and motif logos, written as PNG files."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, never a window
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from dnalm.apps.explain.ism import BASES, one_hot  # noqa: E402

_TITLES = {"ism": "ISM contribution (minus mean substitution effect)", "ig": "Integrated Gradients",
           "gxi": "gradient x input"}


def _logo(ax: plt.Axes, matrix: np.ndarray, start: int = 0) -> None:
    """A logomaker logo of a ``[W, 4]`` matrix (A, C, G, T) on ``ax``, x from ``start``."""
    import logomaker

    frame = pd.DataFrame(np.nan_to_num(matrix), columns=list(BASES), index=np.arange(start, start + len(matrix)))
    logomaker.Logo(frame, ax=ax, color_scheme="classic")
    ax.axhline(0, color="grey", lw=0.5)


def sequence_figure(path: Path, sequence: str, start: int, tracks: dict[str, np.ndarray],
                    ism_delta: np.ndarray | None, title: str) -> None:
    """Logos of each per-base track (score x one-hot) and, with ISM, its ``[W, 4]`` heat map."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = len(tracks) + (ism_delta is not None)
    width = max(8.0, min(40.0, len(sequence) / 8))
    fig, axes = plt.subplots(rows, 1, figsize=(width, 1.9 * rows), squeeze=False, sharex=False)
    hot = one_hot(sequence)
    for ax, (method, values) in zip(axes[:, 0], tracks.items(), strict=False):
        _logo(ax, hot * np.nan_to_num(values)[:, None], start)
        ax.set_ylabel(method)
        ax.set_title(_TITLES.get(method, method), fontsize=9, loc="left")
        ax.set_xlim(start - 0.5, start + len(sequence) - 0.5)
    if ism_delta is not None:
        ax = axes[-1, 0]
        limit = float(np.abs(ism_delta).max()) or 1.0
        image = ax.imshow(ism_delta.T, aspect="auto", cmap="RdBu_r", vmin=-limit, vmax=limit, interpolation="nearest",
                          extent=(start - 0.5, start + len(sequence) - 0.5, 3.5, -0.5))
        ref = np.array([BASES.find(b) for b in sequence])
        known = ref >= 0
        ax.scatter(np.arange(start, start + len(sequence))[known], ref[known], s=3, c="black", marker=".")
        ax.set_yticks(range(4), list(BASES))
        ax.set_title("ISM: score(mutant) - score(sequence); dots = reference base", fontsize=9, loc="left")
        fig.colorbar(image, ax=ax, fraction=0.02, pad=0.01)
    axes[-1, 0].set_xlabel("position (bp, 0-based)")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def information_content(ppm: np.ndarray) -> np.ndarray:
    """``[W, 4]`` letter heights in bits (probability x information content) of a position probability matrix."""
    p = np.clip(ppm, 1e-9, 1.0)
    p = p / p.sum(1, keepdims=True)
    ic = 2.0 + (p * np.log2(p)).sum(1, keepdims=True)
    return p * ic


def motif_figure(path: Path, title: str, cwm: np.ndarray, ppm: np.ndarray,
                 match: tuple[str, np.ndarray] | None) -> None:
    """A discovered motif: its contribution weight matrix, its sequence logo (bits) and the best match's logo."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = 3 if match is not None else 2
    fig, axes = plt.subplots(rows, 1, figsize=(max(4.0, len(ppm) * 0.35), 1.7 * rows), squeeze=False)
    _logo(axes[0, 0], cwm)
    axes[0, 0].set_title(f"{title}: contribution weights", fontsize=9, loc="left")
    _logo(axes[1, 0], information_content(ppm))
    axes[1, 0].set_ylim(0, 2)
    axes[1, 0].set_title("seqlet letters (bits)", fontsize=9, loc="left")
    if match is not None:
        name, target = match
        _logo(axes[2, 0], information_content(target))
        axes[2, 0].set_ylim(0, 2)
        axes[2, 0].set_title(f"best match: {name}", fontsize=9, loc="left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
