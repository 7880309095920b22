"""How real do generated sequences look? Generated vs held-out real sequences vs a Markov-chain baseline.

For each set: the Jensen-Shannon distance of its k-mer spectrum to the real set's (k = 1..6; 0 = identical), its
GC content distribution, and the perplexity the model itself gives it. A Markov chain of order ``order`` fitted
on ``baseline_source`` sequences is the baseline a generator has to beat: it reproduces k-mer statistics up to
k = order + 1 by construction, so beating it at k <= order + 1 is not expected; longer-range structure is.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import product
from pathlib import Path
from typing import Any

import numpy as np

from dnalm.apps.inputs import gc_content, jensen_shannon, kmer_spectrum

BASES = "ACGT"


def markov_sample(training: Sequence[str], order: int, num: int, length: int, seed: int) -> list[str]:
    """``num`` sequences of ``length`` bp from an order-``order`` Markov chain fitted on ``training`` (ACGT only).

    Transition counts get +1 smoothing; each sequence starts from a context drawn from the training contexts.
    """
    index = {"".join(p): i for i, p in enumerate(product(BASES, repeat=order))}
    counts = np.ones((len(index), 4), dtype=np.float64)
    for seq in training:
        for i in range(len(seq) - order):
            context, nxt = seq[i:i + order], seq[i + order]
            row = index.get(context)
            if row is not None and nxt in BASES:
                counts[row, BASES.index(nxt)] += 1
    probs = counts / counts.sum(1, keepdims=True)
    cumulative = probs.cumsum(1)
    starts = counts.sum(1) - 4
    start_p = starts / starts.sum() if starts.sum() else np.full(len(index), 1 / len(index))
    contexts = list(index)
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(num):
        context = contexts[int(rng.choice(len(contexts), p=start_p))]
        letters = list(context)
        draws = rng.random(length)
        row = index[context]
        for i in range(length - order):
            letter = BASES[int(np.searchsorted(cumulative[row], draws[i], side="right").clip(max=3))]
            letters.append(letter)
            row = (row * 4 + BASES.index(letter)) % len(index)
        out.append("".join(letters[:length]))
    return out


def compare(sets: dict[str, list[str]], real: list[str], ks: Sequence[int] = (1, 2, 3, 4, 5, 6),
            perplexities: dict[str, float] | None = None) -> dict[str, Any]:
    """Per set: k-mer JS distance to ``real`` for each k, GC mean/std, and the model's perplexity if given."""
    spectra = {k: kmer_spectrum(real, k) for k in ks}
    table: dict[str, Any] = {}
    for name, sequences in {"real (held out)": real, **sets}.items():
        gc = np.array([gc_content(s) for s in sequences])
        row: dict[str, Any] = {"num": len(sequences), "gc_mean": float(gc.mean()), "gc_std": float(gc.std())}
        if name != "real (held out)":
            row.update({f"js_k{k}": jensen_shannon(kmer_spectrum(sequences, k), spectra[k]) for k in ks})
        if perplexities and name in perplexities:
            row["perplexity"] = perplexities[name]
        table[name] = row
    return table


def markdown(table: dict[str, Any], ks: Sequence[int] = (1, 2, 3, 4, 5, 6)) -> str:
    """The comparison as a Markdown table."""
    head = ["set", "n", "GC mean", "GC sd", *[f"JS k={k}" for k in ks], "model perplexity"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, row in table.items():
        js = [f"{row[f'js_k{k}']:.4f}" if f"js_k{k}" in row else "0" for k in ks]
        ppl = f"{row['perplexity']:.2f}" if "perplexity" in row else ""
        lines.append(f"| {name} | {row['num']} | {row['gc_mean']:.3f} | {row['gc_std']:.3f} | " + " | ".join(js)
                     + f" | {ppl} |")
    return "\n".join(lines)


def plot(table: dict[str, Any], sets: dict[str, list[str]], real: list[str], path: Path,
         ks: Sequence[int] = (1, 2, 3, 4, 5, 6)) -> Path:
    """Two panels: JS distance to the real set by k, and GC content histograms."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    for name in sets:
        left.plot(list(ks), [table[name][f"js_k{k}"] for k in ks], marker="o", label=name)
    left.set(xlabel="k", ylabel="JS distance to held-out real (bits)", title="k-mer spectra", yscale="log")
    left.legend(fontsize=8)
    bins = np.linspace(0.2, 0.8, 31)
    for name, sequences in {"real (held out)": real, **sets}.items():
        right.hist([gc_content(s) for s in sequences], bins=bins, histtype="step", label=name, density=True)
    right.set(xlabel="GC content", ylabel="density", title="GC per sequence")
    right.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
