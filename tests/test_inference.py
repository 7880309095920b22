"""The one inference path: a long sequence is scored as the mean of its windows, whichever driver runs it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from dnalm.data import encode
from dnalm.data.datamodule import DNADataModule
from dnalm.inference import Runner, per_record, predict_loader
from dnalm.models.backbone import Backbone
from dnalm.models.module import DNALMModule
from dnalm.strategies.probing import Probing
from tests.helpers import load_tiny, make_module, random_dna, save_tiny_model

MAX_TOKENS = 24  # [CLS] + 22 bases + [SEP]: a 100 bp sequence is five windows


@pytest.fixture(scope="module")
def backbone(tmp_path_factory: pytest.TempPathFactory) -> Backbone:
    """A tiny BERT whose context is ``MAX_TOKENS``."""
    return load_tiny(save_tiny_model(tmp_path_factory.mktemp("bert") / "bert", "bert"), max_tokens=MAX_TOKENS)


@pytest.fixture(scope="module")
def module(backbone: Backbone) -> DNALMModule:
    """The tiny BERT with a random linear head (binary), in eval mode."""
    torch.manual_seed(0)
    return make_module(backbone, Probing(cache=False)).eval()


def _by_hand(module: DNALMModule, tokenizer: Any, sequence: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(logits, embedding) of ``sequence``: each window alone (no padding), then the mean over windows."""
    ids = np.asarray(tokenizer(sequence)["input_ids"])
    windows = encode.windows(ids, MAX_TOKENS, encode.SpecialLayout.of(tokenizer)) if len(ids) > MAX_TOKENS else [ids]
    with torch.no_grad():
        pairs = [(torch.as_tensor(w)[None], torch.ones(1, len(w), dtype=torch.long)) for w in windows]
        logits = torch.cat([module(i, m) for i, m in pairs]).mean(0)
        embedding = torch.cat([module.embed(i, m) for i, m in pairs]).mean(0)
    return logits, embedding


def test_runner_scores_a_long_sequence_as_the_mean_of_its_windows(module: DNALMModule, backbone: Backbone) -> None:
    sequences = random_dna(3, [100, 10, 47], seed=3)
    runner = Runner(module, backbone.tokenizer, MAX_TOKENS, batch_size=4, device=torch.device("cpu"))
    logits = runner.run(sequences, "logits")
    embeddings = runner.run(sequences, "embed")
    assert logits.shape == (3, 2) and embeddings.shape == (3, 16)
    for row, sequence in enumerate(sequences):
        expected_logits, expected_embedding = _by_hand(module, backbone.tokenizer, sequence)
        np.testing.assert_allclose(logits[row], expected_logits.numpy(), atol=1e-5)
        np.testing.assert_allclose(embeddings[row], expected_embedding.numpy(), atol=1e-5)
    # the mean of the windows, not the first window alone
    tokenizer = backbone.tokenizer
    first = np.asarray(tokenizer(sequences[0])["input_ids"])[:MAX_TOKENS - 1].tolist() + [tokenizer.sep_token_id]
    with torch.no_grad():
        alone = module(torch.tensor([first]), torch.ones(1, MAX_TOKENS, dtype=torch.long))[0]
    assert not np.allclose(logits[0], alone.numpy(), atol=1e-4)
    assert runner.calls == 6


def test_trainer_driver_gives_the_runner_s_logits(module: DNALMModule, backbone: Backbone, tmp_path: Path) -> None:
    """evaluate/predict (DataModule batches through Trainer.predict) and the applications (Runner) agree."""
    sequences = random_dna(5, [100, 10, 47, 130, 22], seed=4)
    fasta = tmp_path / "in.fa"
    fasta.write_text("".join(f">s{i}\n{s}\n" for i, s in enumerate(sequences)))
    data_cfg = OmegaConf.create({"name": "t", "path": str(fasta), "id": None, "allow_unlabelled": True,
                                 "batch_size": 2, "eval_batch_size": 2, "num_workers": 0, "cache": False,
                                 "sequence_column": "sequence", "label_column": "label", "id_column": None})
    datamodule = DNADataModule(data_cfg, backbone.tokenizer, MAX_TOKENS, task=module.task,
                               only_splits=("test",))
    datamodule.setup("predict")
    assert datamodule.splits["test"].windows_added == 4 + 2 + 5  # 100, 47 and 130 bp in 22-base windows
    trainer = L.Trainer(accelerator="cpu", devices=1, logger=False, enable_progress_bar=False,
                        enable_checkpointing=False, enable_model_summary=False)
    through_trainer = predict_loader(trainer, module, datamodule.loader("test", shuffle=False), 5).numpy()
    runner = Runner(module, backbone.tokenizer, MAX_TOKENS, batch_size=2, device=torch.device("cpu"))
    np.testing.assert_allclose(through_trainer, runner.run(sequences, "logits"), atol=1e-5)
    np.testing.assert_allclose(through_trainer[3], _by_hand(module, backbone.tokenizer, sequences[3])[0].numpy(), atol=1e-5)


def test_runner_never_reuses_a_probing_cache_across_calls(module: DNALMModule, backbone: Backbone) -> None:
    """A probing checkpoint caches by window index; each call numbers its windows from 0 again."""
    cached = make_module(backbone, Probing(cache=True))
    cached.load_state_dict(module.state_dict())
    cached.eval()
    assert cached.uses_cache
    runner = Runner(cached, backbone.tokenizer, MAX_TOKENS, device=torch.device("cpu"))
    first, second = random_dna(2, 30, seed=5)
    runner.run([first], "logits")
    np.testing.assert_allclose(runner.run([second], "logits")[0], _by_hand(module, backbone.tokenizer, second)[0].numpy(), atol=1e-5)


def test_per_record_refuses_outputs_that_miss_or_repeat_a_record() -> None:
    outputs = [{"group": torch.tensor([2, 0]), "v": torch.tensor([[2.0], [0.0]])}, {"group": torch.tensor([1]),
                                                                                  "v": torch.tensor([[1.0]])}]
    assert per_record(outputs, "v", 3).view(-1).tolist() == [0.0, 1.0, 2.0]
    with pytest.raises(RuntimeError, match="every record once"):
        per_record(outputs, "v", 4)
    with pytest.raises(RuntimeError, match="every record once"):
        per_record(outputs + [{"group": torch.tensor([1]), "v": torch.tensor([[1.0]])}], "v", 3)
