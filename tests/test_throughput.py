"""The training throughput callback: what it counts, and that it never waits for the GPU inside training."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from dnalm.runtime import Throughput


def _batches(sizes: list[int]) -> list[dict[str, torch.Tensor]]:
    return [{"input_ids": torch.zeros(n, 4, dtype=torch.long),
             "attention_mask": torch.tensor([[1, 1, 1, 0]] * n)} for n in sizes]


def _run(callback: Throughput, module: object, sizes: list[int]) -> None:
    for i, batch in enumerate(_batches(sizes)):
        callback.on_train_batch_start(None, module, batch, i)  # type: ignore[arg-type]
        if module.device.type == "cuda":  # type: ignore[attr-defined]
            torch.randn(512, 512, device="cuda") @ torch.randn(512, 512, device="cuda")
        callback.on_train_batch_end(None, module, None, batch, i)  # type: ignore[arg-type]


def test_the_first_batch_is_warm_up_and_the_rest_are_counted() -> None:
    callback = Throughput()
    assert callback.samples_per_second is None
    _run(callback, SimpleNamespace(device=torch.device("cpu")), [8, 4, 4, 2])
    assert callback.samples == 10
    assert callback.seconds > 0 and callback.samples_per_second == pytest.approx(10 / callback.seconds)
    assert callback.tokens_per_second == pytest.approx(30 / callback.seconds)  # 3 real tokens per sample


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_batches_are_timed_with_events_and_no_synchronize(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    monkeypatch.setattr(torch.cuda, "synchronize", lambda *a, **k: calls.append(1))
    callback = Throughput()
    _run(callback, SimpleNamespace(device=torch.device("cuda")), [8, 4, 4])
    assert not calls and len(callback._pending) == 2
    assert callback.samples_per_second is not None and callback.seconds > 0
