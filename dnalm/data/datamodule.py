"""The LightningDataModule: read ► normalise ► label ► tokenize (cached) ► fit to context ► length-grouped batches."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import pandas as pd
import torch
from omegaconf import DictConfig
from torch.utils.data import Dataset
from transformers import PreTrainedTokenizerBase

from dnalm.data import encode
from dnalm.data.labels import infer_task, stratified_split
from dnalm.data.leakage import check_leakage
from dnalm.data.normalise import BadSequenceError, NormaliseReport, normalise_many
from dnalm.data.sampler import GroupedLengthBatchSampler, ResumableDataLoader
from dnalm.data.sources import HAS_LINES, LINE, SOURCE, load_splits, policy_of
from dnalm.errors import ConfigError, DataError
from dnalm.tasks import Task
from dnalm.utils.memory import release_free_heap

log = logging.getLogger(__name__)

TRAIN_LONG_POLICIES = ("error", "random_crop", "center_crop", "windows")


@dataclass
class EncodedSplit:
    """Token windows of one split; ``groups`` maps each window to its record (row of ``records``)."""

    ids: list[np.ndarray]
    targets: np.ndarray
    groups: np.ndarray
    records: pd.DataFrame
    ids_rc: list[np.ndarray] | None = None
    windows_added: int = 0
    stats: dict[str, Any] = field(default_factory=dict)


class SequenceDataset(Dataset):
    """Items of an :class:`EncodedSplit`; training crops and strand flips are drawn per (seed, epoch, index)."""

    def __init__(self, split: EncodedSplit, max_tokens: int | None, layout: encode.SpecialLayout,
                 crop: str | None = None, rc_prob: float = 0.0, seed: int = 0) -> None:
        self.split, self.max_tokens, self.layout = split, max_tokens, layout
        self.crop, self.rc_prob, self.seed = crop, rc_prob, seed
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.split.ids)

    def __getitem__(self, index: int) -> dict[str, Any]:
        # a generator only when a strand flip or crop can draw from it (building one costs ~25 us per item)
        drawn = self.split.ids_rc is not None or bool(self.crop)
        rng = np.random.default_rng((self.seed, self.epoch, index)) if drawn else None
        ids = self.split.ids[index]
        if rng is not None and self.split.ids_rc is not None and rng.random() < self.rc_prob:
            ids = self.split.ids_rc[index]
        if rng is not None and self.crop and self.max_tokens and len(ids) > self.max_tokens:
            body = len(ids) - self.layout.prefix - self.layout.suffix
            room = self.max_tokens - self.layout.prefix - self.layout.suffix
            start = int(rng.integers(0, body - room + 1)) if self.crop == "random_crop" else (body - room) // 2
            ids = encode.crop(ids, self.max_tokens, self.layout, start)
        return {"input_ids": ids, "target": self.split.targets[index], "group": int(self.split.groups[index]),
                "index": index}


class Collator:
    """Pad a list of items into tensors (right padding, optional multiple-of padding for tensor cores)."""

    def __init__(self, pad_id: int, pad_to_multiple_of: int | None = None) -> None:
        self.pad_id, self.multiple = pad_id, pad_to_multiple_of

    def __call__(self, items: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        lengths = np.fromiter((len(item["input_ids"]) for item in items), dtype=np.int64, count=len(items))
        width = int(lengths.max())
        if self.multiple:
            width = -(-width // self.multiple) * self.multiple
        # Filled in numpy, then wrapped without a copy: a torch slice assignment per row costs ~20x more.
        input_ids = np.full((len(items), width), self.pad_id, dtype=np.int64)
        for row, item in enumerate(items):
            input_ids[row, :lengths[row]] = item["input_ids"]
        mask = (np.arange(width) < lengths[:, None]).astype(np.int64)
        targets = np.stack([np.asarray(item["target"]) for item in items])
        return {
            "input_ids": torch.from_numpy(input_ids),
            "attention_mask": torch.from_numpy(mask),
            "target": torch.from_numpy(targets),
            "group": torch.tensor([item["group"] for item in items], dtype=torch.long),
            "index": torch.tensor([item["index"] for item in items], dtype=torch.long),
            # known here for free; the model would otherwise read it off the mask (a host sync on GPUs)
            "right_padded": True,
        }


def pad_id_of(tokenizer: PreTrainedTokenizerBase) -> int:
    """The tokenizer's padding id (0 when it has none)."""
    pad = getattr(tokenizer, "pad_token_id", None)
    return pad if pad is not None else 0


def batch_loader(dataset: SequenceDataset, batch_size: int, pad_id: int, shuffle: bool = False, seed: int = 0,
                 pad_to_multiple_of: int | None = None, num_workers: int = 0) -> ResumableDataLoader:
    """Batches of about ``batch_size`` items of similar length, a record's windows always in one batch (and,
    under DDP, split across ranks): the batching of training, evaluation and every inference path."""
    lengths = np.array([len(i) for i in dataset.split.ids])
    sampler = GroupedLengthBatchSampler(lengths, dataset.split.groups, batch_size, shuffle=shuffle, seed=seed,
                                        dataset=dataset)
    return ResumableDataLoader(dataset, batch_sampler=sampler, collate_fn=Collator(pad_id, pad_to_multiple_of),
                               num_workers=num_workers)


class DNADataModule(L.LightningDataModule):
    """Turn a ``data`` config and a tokenizer into train/val/test/predict dataloaders."""

    def __init__(self, cfg: DictConfig, tokenizer: PreTrainedTokenizerBase, max_tokens: int | None,
                 seed: int = 42, task: Task | None = None, cache_dir: str | Path | None = None,
                 only_splits: tuple[str, ...] | None = None) -> None:
        super().__init__()
        self.only_splits = only_splits
        self.cfg, self.tokenizer, self.max_tokens, self.seed = cfg, tokenizer, max_tokens, seed
        self.task: Task | None = task
        self.cache_dir = Path(cache_dir) if cache_dir else (encode.default_cache_dir() if cfg.get("cache", True) else None)
        self.layout = encode.SpecialLayout.of(tokenizer)
        self.splits: dict[str, EncodedSplit] = {}
        self.report: dict[str, Any] = {}
        if cfg.get("train_long", "error") not in TRAIN_LONG_POLICIES:
            raise ConfigError(f"data.train_long={cfg.train_long!r}; choose one of {TRAIN_LONG_POLICIES}.")

    # -- building ---------------------------------------------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        """Read, check and tokenize every split once (idempotent)."""
        if self.splits:
            return
        frames = load_splits(self.cfg)
        if self.only_splits:
            missing = [s for s in self.only_splits if s not in frames]
            if missing:
                raise DataError(f"the data has no {missing} split (it has {sorted(frames)}).")
            frames = {s: frames[s] for s in self.only_splits}
        frames = {split: self._normalise(frame, split) for split, frame in frames.items()}
        if "train" in frames:
            if self.task is None:
                names = list(self.cfg.label_names) if self.cfg.get("label_names") else None
                self.task = infer_task(frames["train"]["label"], self.cfg.get("task", "auto"), names)
            if "valid" not in frames and self.cfg.get("val_fraction", 0.05) > 0:
                frames["train"], frames["valid"] = self._carve_validation(frames["train"])
        frames, leaks = check_leakage(frames, str(self.cfg.get("leakage", "warn")),
                                      bool(self.cfg.get("leakage_reverse_complement", False)))
        self.report["leakage"] = leaks
        if self.task is None:
            raise DataError("no train split and no label map: evaluation needs the task saved with the checkpoint.")
        for split in list(frames):
            self.splits[split] = self._encode_split(frames.pop(split), split)
        # the sequence strings and tokenizer temporaries are garbage now, below memory that stays alive
        release_free_heap()
        self.report["splits"] = {s: {"records": len(e.records), "items": len(e.ids), **e.stats}
                                 for s, e in self.splits.items()}
        log.info("data: %s", self.report["splits"])

    def _normalise(self, frame: pd.DataFrame, split: str) -> pd.DataFrame:
        policy = policy_of(self.cfg)
        report = NormaliseReport()
        try:
            seqs, kept = normalise_many(frame["sequence"].tolist(), frame["id"].tolist(), policy, report,
                                        lines=frame[LINE].tolist() if frame.attrs.get(HAS_LINES) else None)
        except BadSequenceError as err:
            raise BadSequenceError(f"{frame.attrs.get(SOURCE, split)}: {err}") from err
        self.report.setdefault("normalise", {})[split] = report.summary()
        if len(kept) != len(frame):
            log.warning("%s: %s", split, report.summary())
        if not kept:
            raise DataError(f"the {split} split has no usable sequence left ({report.summary()}).")
        frame = frame.iloc[kept].reset_index(drop=True).copy()
        # object dtype keeps these very str objects: no copy into an Arrow string column and back out at tokenizing
        frame["sequence"] = pd.Series(seqs, index=frame.index, dtype=object)
        return frame

    def _carve_validation(self, train: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
        assert self.task is not None
        targets = self.task.encode(train["label"], "train", train["id"])
        fraction, split_seed = float(self.cfg.val_fraction), int(self.cfg.get("split_seed", 42))
        keep, held = stratified_split(targets, fraction, split_seed)
        log.info("no valid split: holding out %d of %d train records (%.0f%%, stratified, seed %d)",
                 len(held), len(train), 100 * fraction, split_seed)
        return train.iloc[keep].reset_index(drop=True), train.iloc[held].reset_index(drop=True)

    def _encode_split(self, frame: pd.DataFrame, split: str) -> EncodedSplit:
        assert self.task is not None
        has_labels = "label" in frame.columns
        targets = (self.task.encode(frame["label"], split, frame["id"]) if has_labels
                   else self.task.unlabelled_targets(len(frame)))
        sequences = frame["sequence"].tolist()
        ids = encode.encode_cached(self.tokenizer, sequences, self.cache_dir)
        train = split == "train"
        rc_train = train and float(self.cfg.get("rc_augment", 0.0)) > 0
        rc_eval = not train and bool(self.cfg.get("rc_average", False))
        ids_rc = None
        if rc_train or rc_eval:
            from dnalm.tokenizers.strand import reverse_complement_batch

            ids_rc = encode.encode_cached(self.tokenizer, reverse_complement_batch(sequences), self.cache_dir)
        lengths = np.array([len(i) for i in ids])
        stats = {"tokens_mean": float(lengths.mean()), "tokens_max": int(lengths.max())}
        too_long = np.flatnonzero(lengths > self.max_tokens) if self.max_tokens else np.array([], dtype=int)
        groups = np.arange(len(ids))
        policy = self.cfg.get("train_long", "error") if train else "windows"
        if len(too_long) and policy == "error":
            first = too_long[0]
            raise DataError(
                f"{len(too_long)} {split} sequence(s) are longer than the model's context of {self.max_tokens} "
                f"tokens, e.g. record '{frame['id'].iloc[first]}' ({len(sequences[first])} bp, {lengths[first]} "
                "tokens). Choose data.train_long=random_crop, center_crop or windows (or a longer-context model).")
        out_ids, out_targets, out_groups = ids, targets, groups
        if len(too_long) and policy == "windows" or (rc_eval and ids_rc is not None):
            out_ids, out_targets, out_groups = self._expand_windows(ids, ids_rc if rc_eval else None, targets)
            if len(too_long):
                log.warning("%s: %d sequence(s) longer than %d tokens are scored as %d windows (logits averaged "
                            "per sequence)", split, len(too_long), self.max_tokens, len(out_ids) - len(ids))
            ids_rc = None if rc_eval else ids_rc
        elif len(too_long):
            log.warning("%s: %d sequence(s) longer than %d tokens are cropped (%s)", split, len(too_long),
                        self.max_tokens, policy)
        stats["too_long"] = int(len(too_long))
        return EncodedSplit(out_ids, out_targets, out_groups, frame[["id"] + (["label"] if has_labels else [])],
                            ids_rc=ids_rc if rc_train else None, windows_added=len(out_ids) - len(ids), stats=stats)

    def _expand_windows(self, ids: list[np.ndarray], ids_rc: list[np.ndarray] | None,
                        targets: np.ndarray) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
        """Windows of both strands (with ``ids_rc``); each window's group is its record."""
        strands = list(ids) + (list(ids_rc) if ids_rc is not None else [])
        out_ids, rows = encode.expand_windows(strands, self.max_tokens, self.layout,
                                              int(self.cfg.get("window_overlap", 0)))
        rows %= len(ids)  # a reverse-complement window belongs to its forward record
        return out_ids, targets[rows], rows

    # -- loaders ----------------------------------------------------------------------------------------------
    def _dataset(self, split: str) -> SequenceDataset:
        if split not in self.splits:
            raise DataError(f"there is no {split} split in this data.")
        train = split == "train"
        crop = self.cfg.get("train_long") if train and self.cfg.get("train_long") in ("random_crop", "center_crop") else None
        return SequenceDataset(self.splits[split], self.max_tokens, self.layout, crop=crop,
                               rc_prob=float(self.cfg.get("rc_augment", 0.0)) if train else 0.0, seed=self.seed)

    def loader(self, split: str, shuffle: bool) -> ResumableDataLoader:
        """Length-grouped batches of ``split`` (``shuffle`` for training; evaluation order is by length)."""
        dataset = self._dataset(split)
        batch_size = int(self.cfg.batch_size if shuffle else self.cfg.get("eval_batch_size") or self.cfg.batch_size)
        return batch_loader(dataset, batch_size, pad_id_of(self.tokenizer), shuffle=shuffle, seed=self.seed,
                            pad_to_multiple_of=self.cfg.get("pad_to_multiple_of"),
                            num_workers=int(self.cfg.get("num_workers", 0)))

    def train_dataloader(self) -> ResumableDataLoader:
        return self.loader("train", shuffle=True)

    def val_dataloader(self) -> ResumableDataLoader:
        return self.loader("valid", shuffle=False)

    def test_dataloader(self) -> ResumableDataLoader:
        return self.loader("test", shuffle=False)

    def predict_dataloader(self) -> ResumableDataLoader:
        return self.loader(self.cfg.get("predict_split", "test"), shuffle=False)
