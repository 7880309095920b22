"""Windows of a packed genome as language-modelling batches (tokenized and masked in the collate function)."""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from typing import Any

import lightning as L
import numpy as np
import torch
from omegaconf import DictConfig
from torch.utils.data import DataLoader, Dataset

from dnalm.pretraining.genome import Genome, Holdout, Segment, WindowCounts, windows
from dnalm.pretraining.objectives import CausalLM, MaskedLM
from dnalm.tokenizers import DNATokenizer, OverlappingKmerTokenizer, pad
from dnalm.utils.progress import Progress

# Splits smaller than this index their windows in well under a second: no progress for them (and no log
# lines every epoch of a small run).
PROGRESS_MIN_BP = 20_000_000

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WindowItem:
    """One window: which record, where, which strand."""

    record: int
    start: int
    length: int
    reverse: bool


class GenomeWindows(Dataset):
    """The windows of one split for one epoch (random offsets and strands for training, fixed for validation).

    ``description`` names the progress shown while a large split (``PROGRESS_MIN_BP``) is indexed.
    """

    def __init__(self, genome: Genome, segments: list[Segment], window_bp: int, max_n_fraction: float,
                 rng: np.random.Generator | None, both_strands: bool, description: str | None = None) -> None:
        self.genome = genome
        index = {id(r): i for i, r in enumerate(genome.records)}
        self.counts = WindowCounts()
        self.items: list[WindowItem] = []
        total = sum(s.end - s.start for s in segments)
        bar = Progress(description, total=total, unit="bp") if description and total >= PROGRESS_MIN_BP else None
        with bar or contextlib.nullcontext():
            for segment, start in windows(segments, window_bp, rng):
                length = min(window_bp, segment.end - start)
                if bar is not None:  # bp of windows looked at; the offsets' ends are added at the end
                    bar.advance(length)
                if genome.n_fraction(segment.record, start, length) > max_n_fraction:
                    self.counts.skipped_n += 1
                    continue
                reverse = bool(both_strands and rng is not None and rng.random() < 0.5)
                self.items.append(WindowItem(index[id(segment.record)], start, length, reverse))
            if bar is not None and bar.done < total:
                bar.advance(total - bar.done)
        self.counts.kept = len(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> str:
        item = self.items[i]
        return self.genome.sequence(self.genome.records[item.record], item.start, item.length, item.reverse)


class LMCollator:
    """Tokenize a batch of windows, pad, and apply the objective (masking or next-token labels)."""

    def __init__(self, tokenizer: DNATokenizer, objective: MaskedLM | CausalLM, max_tokens: int,
                 seed: int) -> None:
        self.tokenizer, self.objective, self.max_tokens = tokenizer, objective, max_tokens
        self.special = torch.tensor(sorted(_special_ids(tokenizer)), dtype=torch.long)
        self.span = tokenizer.k if isinstance(tokenizer, OverlappingKmerTokenizer) else 1
        self.generator = torch.Generator().manual_seed(seed)

    def __call__(self, sequences: list[str]) -> dict[str, torch.Tensor]:
        ids = [np.asarray(x)[: self.max_tokens] for x in self.tokenizer(sequences)["input_ids"]]
        input_ids, attention_mask = pad(ids, self.tokenizer.pad_token_id)
        if isinstance(self.objective, CausalLM):
            inputs, labels = self.objective(input_ids, attention_mask)
        else:
            maskable = attention_mask.bool() & ~torch.isin(input_ids, self.special)
            inputs, labels = self.objective(input_ids, maskable, self.tokenizer.mask_token_id,
                                            self.tokenizer.vocab_size, self.generator, self.span)
        return {"input_ids": inputs, "attention_mask": attention_mask, "labels": labels}


def _special_ids(tokenizer: DNATokenizer) -> set[int]:
    roles = ("pad_token_id", "cls_token_id", "sep_token_id", "eos_token_id", "bos_token_id", "mask_token_id",
             "unk_token_id")
    return {int(v) for v in (getattr(tokenizer, r) for r in roles) if v is not None}


def holdout_from(cfg: DictConfig, seed: int) -> Holdout:
    """The ``data.holdout`` settings (by, fraction, block_bp) with the run's seed."""
    holdout = cfg.get("holdout") or {}
    return Holdout(by=str(holdout.get("by", "group")), fraction=float(holdout.get("fraction", 0.1)),
                   block_bp=int(holdout.get("block_bp", 100_000)), seed=seed)


class GenomeDataModule(L.LightningDataModule):
    """Train / validation windows of a genome; new offsets and strands every epoch (dataloaders reload)."""

    def __init__(self, cfg: DictConfig, genome: Genome, splits: dict[str, list[Segment]], tokenizer: DNATokenizer,
                 objective: MaskedLM | CausalLM, max_tokens: int, window_bp: int, seed: int) -> None:
        super().__init__()
        self.cfg, self.genome, self.splits, self.tokenizer, self.objective = cfg, genome, splits, tokenizer, objective
        self.max_tokens, self.window_bp, self.seed = max_tokens, window_bp, seed
        self.report: dict[str, Any] = {}

    def _windows(self, split: str, epoch: int) -> GenomeWindows:
        train = split == "train"
        rng = np.random.default_rng([self.seed, epoch]) if train else None
        data = GenomeWindows(self.genome, self.splits[split], self.window_bp,
                             float(self.cfg.get("max_n_fraction", 0.1)), rng,
                             bool(self.cfg.get("both_strands", True)) and train,
                             f"indexing {split} windows (epoch {epoch})" if train else f"indexing {split} windows")
        self.report[split] = {"windows": data.counts.kept, "skipped_n_rich": data.counts.skipped_n,
                              "bp": int(sum(s.end - s.start for s in self.splits[split]))}
        if data.counts.skipped_n:
            log.info("%s: %d windows skipped with more than %.0f%% N", split, data.counts.skipped_n,
                     100 * float(self.cfg.get("max_n_fraction", 0.1)))
        return data

    def _loader(self, data: GenomeWindows, shuffle: bool, epoch: int) -> DataLoader:
        generator = torch.Generator().manual_seed(self.seed * 1000 + epoch)
        return DataLoader(data, batch_size=int(self.cfg.batch_size), shuffle=shuffle, generator=generator,
                          collate_fn=LMCollator(self.tokenizer, self.objective, self.max_tokens,
                                                self.seed * 1000 + epoch),
                          num_workers=int(self.cfg.get("num_workers", 0)))

    def train_dataloader(self) -> DataLoader:
        epoch = self.trainer.current_epoch if self.trainer is not None else 0
        return self._loader(self._windows("train", epoch), True, epoch)

    def val_dataloader(self) -> DataLoader:
        # fixed windows, masks and strands: validation perplexities are comparable across epochs
        return self._loader(self._windows("valid", 0), False, 0)
