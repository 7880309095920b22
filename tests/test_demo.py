"""The embedded default is a real task: its run beats a 4-mer bag-of-words baseline on the same test split."""

from __future__ import annotations

from itertools import product

import numpy as np
import pytest
import torch

from dnalm.data.demo import make_demo_splits

K = 4


def kmer_counts(sequences: list[str], k: int = K) -> np.ndarray:
    """Normalised counts of every ACGT k-mer per sequence (a bag of words: where a k-mer sits is lost)."""
    index = {"".join(p): i for i, p in enumerate(product("ACGT", repeat=k))}
    out = np.zeros((len(sequences), len(index)), dtype=np.float32)
    for row, seq in enumerate(sequences):
        for i in range(len(seq) - k + 1):
            slot = index.get(seq[i:i + k])
            if slot is not None:
                out[row, slot] += 1
    return out / np.maximum(out.sum(1, keepdims=True), 1)


def mcc(labels: np.ndarray, predicted: np.ndarray) -> float:
    tp, tn = int(((predicted == 1) & (labels == 1)).sum()), int(((predicted == 0) & (labels == 0)).sum())
    fp, fn = int(((predicted == 1) & (labels == 0)).sum()), int(((predicted == 0) & (labels == 1)).sum())
    denominator = float(np.sqrt(float(tp + fp) * (tp + fn) * (tn + fp) * (tn + fn)))
    return (tp * tn - fp * fn) / denominator if denominator else 0.0


def kmer_baseline_mcc(seed: int = 0) -> float:
    """Test MCC of an L2-regularised logistic regression on standardised 4-mer frequencies (trained on train)."""
    splits = make_demo_splits()
    x_train, x_test = kmer_counts(splits["train"]["sequence"].tolist()), kmer_counts(splits["test"]["sequence"].tolist())
    mean, std = x_train.mean(0), x_train.std(0) + 1e-6
    x = torch.from_numpy((x_train - mean) / std)
    y = torch.from_numpy(splits["train"]["label"].to_numpy().astype(np.float32))
    torch.manual_seed(seed)
    weights = torch.zeros(x.shape[1], requires_grad=True)
    bias = torch.zeros(1, requires_grad=True)
    optimizer = torch.optim.LBFGS([weights, bias], max_iter=200, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(x @ weights + bias, y) + 1e-3 * weights.square().sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    with torch.no_grad():
        scores = torch.from_numpy((x_test - mean) / std) @ weights + bias
    return mcc(splits["test"]["label"].to_numpy(), (scores > 0).numpy().astype(int))


def test_kmer_baseline_learns_something_but_not_everything() -> None:
    baseline = kmer_baseline_mcc()
    assert 0.2 < baseline < 0.45, baseline


@pytest.mark.slow
def test_default_run_beats_the_kmer_baseline(make_cfg) -> None:
    """The README's claim, at the default settings and seed 42 (about 1.5 minutes on two cores)."""
    from dnalm.train import train

    metrics = train(make_cfg("logger=csv", small=False))
    assert metrics["test/mcc"] > kmer_baseline_mcc() + 0.05, metrics["test/mcc"]
