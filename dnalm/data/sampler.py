"""Length-grouped batches that keep a record's windows together, split across ranks, and resume mid-epoch."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Sampler


def _rank_and_world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class GroupedLengthBatchSampler(Sampler[list[int]]):
    """Batches of about ``batch_size`` items with similar lengths (little padding).

    Items sharing a ``group`` (windows and strands of one record) always land in the same batch, so their
    logits can be aggregated inside one step. Training shuffles (by ``seed`` and epoch) in pools of
    ``pool_batches`` batches sorted by length; evaluation is length-sorted. Under DDP each rank takes every
    ``world``-th batch; training pads ranks to equal batch counts, evaluation never duplicates data.
    """

    def __init__(self, lengths: np.ndarray, groups: np.ndarray, batch_size: int, shuffle: bool, seed: int = 0,
                 pool_batches: int = 50, dataset: Any = None) -> None:
        self.dataset = dataset  # told the epoch too, for per-epoch crops and strand flips
        self.lengths = np.asarray(lengths)
        self.groups = np.asarray(groups)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.pool_batches = pool_batches
        self.epoch = 0
        self.skip = 0  # batches of the current epoch already consumed before a resume
        # A unit is one group's items; vectorised, as a Python loop over 10^5 units costs a noticeable setup time.
        self._order = np.argsort(self.groups, kind="stable")
        self._starts = np.flatnonzero(np.r_[True, np.diff(self.groups[self._order]) != 0]) if len(self._order) \
            else np.zeros(0, dtype=np.int64)
        self.unit_lengths = (np.maximum.reduceat(self.lengths[self._order], self._starts) if len(self._order)
                             else np.zeros(0))
        self._one_item_units = len(self._starts) == len(self._order)
        self._units: list[np.ndarray] | None = None
        # Lightning asks for len() several times per fit and iterates once per epoch: pack each epoch once.
        self._cached: tuple[tuple[Any, ...], list[list[int]]] | None = None

    @property
    def sampler(self) -> GroupedLengthBatchSampler:
        """Lightning calls ``set_epoch`` on ``batch_sampler.sampler``, never on the batch sampler: answer for it."""
        return self

    def set_epoch(self, epoch: int) -> None:
        """Called by Lightning at each epoch start (through :attr:`sampler`)."""
        if epoch != self.epoch:
            self.skip = 0
        self.epoch = epoch
        if self.dataset is not None:
            self.dataset.epoch = epoch

    @property
    def units(self) -> list[np.ndarray]:
        """The items of each group (unit), in group order."""
        if self._units is None:
            self._units = np.split(self._order, self._starts[1:]) if len(self._order) else []
        return self._units

    def _pack(self, unit_order: np.ndarray) -> list[list[int]]:
        if self._one_item_units:  # every record is one item: packing is plain chunking, without a Python loop
            items = self._order[unit_order]
            return [items[i:i + self.batch_size].tolist() for i in range(0, len(items), self.batch_size)]
        batches: list[list[int]] = []
        current: list[int] = []
        for u in unit_order:
            members = self.units[u].tolist()
            if current and len(current) + len(members) > self.batch_size:
                batches.append(current)
                current = []
            current.extend(members)
        if current:
            batches.append(current)
        return batches

    def all_batches(self) -> list[list[int]]:
        """Every batch of this epoch, before splitting across ranks."""
        if not self.shuffle:
            return self._pack(np.argsort(-self.unit_lengths, kind="stable"))
        rng = np.random.default_rng((self.seed, self.epoch))
        order = rng.permutation(len(self.unit_lengths))  # without splitting the units into arrays
        pool = self.batch_size * self.pool_batches
        batches: list[list[int]] = []
        for start in range(0, len(order), pool):
            chunk = order[start:start + pool]
            batches.extend(self._pack(chunk[np.argsort(-self.unit_lengths[chunk], kind="stable")]))
        return [batches[i] for i in rng.permutation(len(batches))]

    def _rank_batches(self) -> list[list[int]]:
        rank, world = _rank_and_world()
        key = (self.epoch, self.seed, self.batch_size, self.shuffle, self.pool_batches, rank, world)
        if self._cached is not None and self._cached[0] == key:
            return self._cached[1]
        batches = self.all_batches()
        mine = batches
        if world > 1:
            mine = batches[rank::world]
            if self.shuffle:  # gradient sync needs the same number of steps on every rank
                per_rank = -(-len(batches) // world)
                mine = (mine + batches[:per_rank])[:per_rank]
        self._cached = (key, mine)
        return mine

    def __iter__(self) -> Iterator[list[int]]:
        batches = self._rank_batches()
        skip, self.skip = self.skip, 0
        yield from batches[skip:]

    def __len__(self) -> int:
        return len(self._rank_batches())


class ResumableDataLoader(DataLoader):
    """A DataLoader whose position in the epoch is saved in checkpoints, so a resumed run skips what it saw.

    Lightning fetches no batch ahead from a loader with a length (it prefetches only to detect the end of
    unsized ones), so every batch handed out has been trained on when a checkpoint is written.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Batches come from the batch sampler; an own generator keeps each new iterator from drawing on the
        # global torch RNG (dropout), so a resumed run draws the same masks as an uninterrupted one.
        if kwargs.get("generator") is None:
            kwargs["generator"] = torch.Generator().manual_seed(0)
        super().__init__(*args, **kwargs)
        self._handed_out = 0
        self._epoch_seen = -1

    def __iter__(self) -> Iterator[Any]:
        sampler: GroupedLengthBatchSampler = self.batch_sampler  # type: ignore[assignment]
        self._handed_out = sampler.skip
        self._epoch_seen = sampler.epoch
        for batch in super().__iter__():
            self._handed_out += 1
            yield batch

    def state_dict(self) -> dict[str, int]:
        """Epoch and number of batches consumed in it."""
        consumed = min(self._handed_out, len(self))
        return {"epoch": self._epoch_seen, "consumed": consumed}

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Make the next iteration of that epoch start after the consumed batches."""
        sampler: GroupedLengthBatchSampler = self.batch_sampler  # type: ignore[assignment]
        sampler.epoch = int(state["epoch"])
        sampler.skip = int(state["consumed"])
