"""One inference path for the applications: load a model, batch sequences, run ``DNALMModule.embed``/``forward``.

Sequences are tokenized with the backbone's tokenizer (``dnalm.data.encode``), split into context-sized windows
when too long, packed into length-sorted batches by :class:`GroupedLengthBatchSampler` and padded by
:class:`Collator` (the same objects the DataModule uses); window outputs are averaged per sequence.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from dnalm.data import encode
from dnalm.data.datamodule import Collator
from dnalm.data.labels import TaskSpec
from dnalm.data.sampler import GroupedLengthBatchSampler
from dnalm.errors import ConfigError
from dnalm.models.backbone import Backbone, load_backbone
from dnalm.models.module import DNALMModule, group_mean
from dnalm.models.pooling import build_pooling
from dnalm.strategies.probing import Probing
from dnalm.utils.progress import Progress

log = logging.getLogger(__name__)

Output = Literal["embed", "logits"]


def pick_device(requested: str | None = "auto") -> torch.device:
    """``auto``: the first CUDA GPU when there is one, else the CPU."""
    if requested in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(str(requested))


def autocast_dtype(device: torch.device, precision: str | None = "auto") -> torch.dtype | None:
    """16-bit autocast on GPU (bf16 where supported, else fp16), none on CPU; ``precision=32`` turns it off."""
    if str(precision) in ("32", "32-true", "fp32", "float32") or device.type != "cuda":
        return None
    if str(precision) in ("16", "fp16", "float16", "16-mixed"):
        return torch.float16
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def load_for_inference(cfg: DictConfig, pooling: str | None = None, layer: int | None = None
                       ) -> tuple[DNALMModule, Backbone, TaskSpec | None]:
    """A module from ``cfg.ckpt_path`` (its trained head and task) or a pretrained ``cfg.model`` (no task).

    ``pooling`` / ``layer`` override how embeddings are taken (``None`` keeps the checkpoint's choice; a
    pretrained model defaults to ``auto`` pooling of the last layer).
    """
    if cfg.get("ckpt_path") or (cfg.get("head") is not None and cfg.head.get("native", False)):
        from dnalm.inference import load_module

        module, backbone, task = load_module(cfg)
    else:
        if cfg.model.get("name_or_path") is None and not cfg.model.get("from_config"):
            raise ConfigError("give a pretrained model (model=<name> or model.name_or_path=<folder or hub id>) "
                              "or a fine-tuned checkpoint (ckpt_path=<file.ckpt>).")
        backbone = load_backbone(cfg.model)
        head = OmegaConf.create({"_target_": "dnalm.models.heads.LinearHead", "pooling": pooling or "auto",
                                 "dropout": 0.0})
        module = DNALMModule(backbone, TaskSpec("binary", 2, ["0", "1"]), Probing(cache=False), head,
                             OmegaConf.create({"lr": 0.0}))
        task = None
    if layer is not None:
        if not -1 - backbone.num_layers <= layer <= backbone.num_layers:
            raise ConfigError(f"layer={layer} is out of range for a backbone with {backbone.num_layers} layers "
                              f"(0 = embeddings output, -1 = last layer).")
        module.strategy.layer = int(layer)
    if pooling is not None and module.pooling is not None:
        if any(p.numel() for p in module.pooling.parameters()) and cfg.get("ckpt_path"):
            log.warning("replacing the checkpoint's trained %s pooling with %s", type(module.pooling).__name__, pooling)
        module.pooling = build_pooling(pooling, backbone.hidden_size, backbone.is_causal)
    module.eval()
    return module, backbone, task


@dataclass
class Runner:
    """Batched, length-sorted inference with a :class:`DNALMModule` on one device."""

    module: DNALMModule
    tokenizer: object
    max_tokens: int | None
    batch_size: int = 64
    device: torch.device = field(default_factory=lambda: pick_device())
    precision: str | None = "auto"
    calls: int = 0  # sequences scored so far (the budget unit of dnalm.design)
    seconds: float = 0.0

    def __post_init__(self) -> None:
        self.module.to(self.device)
        self.layout = encode.SpecialLayout.of(self.tokenizer)
        pad = getattr(self.tokenizer, "pad_token_id", None)
        self.collate = Collator(pad if pad is not None else 0)
        self.dtype = autocast_dtype(self.device, self.precision)

    @classmethod
    def from_cfg(cls, cfg: DictConfig, pooling: str | None = None, layer: int | None = None
                 ) -> tuple[Runner, TaskSpec | None]:
        """Load the model of ``cfg`` and wrap it (``cfg.batch_size``, ``cfg.device``, ``cfg.precision``)."""
        module, backbone, task = load_for_inference(cfg, pooling, layer)
        runner = cls(module, backbone.tokenizer, backbone.max_tokens, int(cfg.get("batch_size", 64)),
                     pick_device(cfg.get("device", "auto")), cfg.get("precision", "auto"))
        return runner, task

    def _windows(self, sequences: Sequence[str]) -> tuple[list[np.ndarray], np.ndarray]:
        ids = encode.encode_cached(self.tokenizer, sequences, None)
        out: list[np.ndarray] = []
        groups: list[int] = []
        for row, seq_ids in enumerate(ids):
            pieces = (encode.windows(seq_ids, self.max_tokens, self.layout)
                      if self.max_tokens and len(seq_ids) > self.max_tokens else [seq_ids])
            out.extend(pieces)
            groups.extend([row] * len(pieces))
        return out, np.asarray(groups, dtype=np.int64)

    def _batches(self, sequences: Sequence[str]) -> Iterator[dict[str, torch.Tensor]]:
        ids, groups = self._windows(sequences)
        lengths = np.array([len(i) for i in ids])
        sampler = GroupedLengthBatchSampler(lengths, groups, self.batch_size, shuffle=False)
        for batch in sampler:
            items = [{"input_ids": ids[i], "target": 0, "group": int(groups[i]), "index": i} for i in batch]
            yield self.collate(items)

    @torch.inference_mode()
    def run(self, sequences: Sequence[str], output: Output = "embed", progress: str | None = None) -> np.ndarray:
        """``[N, hidden]`` pooled embeddings or ``[N, classes]`` logits (float32), in input order.

        ``progress`` names the work for a progress bar (log lines off a terminal) counting sequences.
        """
        if output == "logits" and self.module.head is None and not self.module.native_head:
            raise ConfigError("class scores need a fine-tuned classifier: give ckpt_path=<file.ckpt>.")
        start = time.perf_counter()
        amp = (torch.autocast(self.device.type, dtype=self.dtype) if self.dtype is not None
               else contextlib.nullcontext())
        bar = Progress(progress, total=len(sequences), unit="sequences") if progress else contextlib.nullcontext()
        with bar:
            result = self._run_batches(sequences, output, amp, bar if progress else None)
        self.calls += len(sequences)
        self.seconds += time.perf_counter() - start
        if result is None:
            return np.zeros((0, 0), dtype=np.float32)
        return result

    def _run_batches(self, sequences: Sequence[str], output: Output, amp: contextlib.AbstractContextManager,
                     bar: Progress | None) -> np.ndarray | None:
        result: np.ndarray | None = None
        for batch in self._batches(sequences):
            input_ids = batch["input_ids"].to(self.device)
            mask = batch["attention_mask"].to(self.device)
            with amp:
                padded = batch.get("right_padded")
                values = (self.module.embed(input_ids, mask, padded) if output == "embed"
                          else self.module(input_ids, mask, padded))
            groups, means = group_mean(values.float(), batch["group"].to(self.device))
            means_np = means.cpu().numpy()
            if result is None:
                result = np.zeros((len(sequences), means_np.shape[1]), dtype=np.float32)
            result[groups.cpu().numpy()] = means_np
            if bar is not None:  # windows of one sequence share a batch; count sequences finished
                bar.advance(len(groups))
        return result

    def probabilities(self, sequences: Sequence[str], task: TaskSpec) -> np.ndarray:
        """Per-class probabilities (softmax for classes, sigmoid for multilabel)."""
        logits = torch.from_numpy(self.run(sequences, "logits"))
        if task.kind in ("binary", "multiclass"):
            return torch.softmax(logits, dim=-1).numpy()
        if task.kind == "multilabel":
            return torch.sigmoid(logits).numpy()
        raise ConfigError(f"a {task.kind} checkpoint has no class probabilities; use a classifier.")


def class_index(task: TaskSpec, target: str | int | None) -> int:
    """The column of ``target`` (a label name or an index); ``None`` means the last class (``1`` if binary)."""
    names = list(task.label_names)
    if target is None:
        return len(names) - 1
    if str(target) in names:
        return names.index(str(target))
    if isinstance(target, int) or str(target).lstrip("-").isdigit():
        index = int(target)
        if -len(names) <= index < len(names):
            return index % len(names)
    raise ConfigError(f"target_class={target!r} is not one of this classifier's classes {names}.")
