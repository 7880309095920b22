"""The one inference path: rebuild a trained model, then window, batch, run and gather for every application.

``evaluate``, ``predict``, ``embed``, ``scan``, ``variants``, ``design`` and ``explain`` all score sequences
the same way:

- **windows**: sequences longer than the model's context become windows (:func:`dnalm.data.encode.expand_windows`);
- **batches**: length-grouped batches that keep a record's windows together and split across DDP ranks
  (:func:`dnalm.data.datamodule.batch_loader`, padded by its ``Collator``);
- **the model step**: :meth:`DNALMModule.infer`, window logits or pooled embeddings averaged per record;
- **gathering**: every rank's outputs (:func:`gather_outputs`) put back in record order (:func:`per_record`).

Two drivers run those batches. ``evaluate`` and ``predict`` score a data split through Lightning's
``Trainer.predict`` (:func:`predict_loader`), which launches DDP processes and applies ``trainer.precision``;
the applications call the model many times in one process through :class:`Runner`, which keeps the model on
its device between calls (a Trainer moves it back to the CPU after each one) under :func:`autocast_dtype`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import lightning as L
import numpy as np
import pandas as pd
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from dnalm.checkpoints import read_checkpoint, upgrade_head_config
from dnalm.data import encode
from dnalm.data.datamodule import EncodedSplit, SequenceDataset, batch_loader, pad_id_of
from dnalm.errors import ConfigError, ModelLoadError
from dnalm.models.backbone import Backbone, load_backbone
from dnalm.models.module import DNALMModule
from dnalm.models.pooling import build_pooling
from dnalm.strategies import FullFineTuning
from dnalm.strategies.probing import Probing
from dnalm.tasks import BinaryTask, MulticlassTask, MultilabelTask, RegressionTask, Task
from dnalm.utils.progress import Progress

log = logging.getLogger(__name__)


def task_from_native(backbone: Backbone) -> Task:
    """The task of a published ``*ForSequenceClassification`` checkpoint, from its config's label map."""
    config = backbone.model.config
    num = int(getattr(config, "num_labels", 2))
    id2label = {int(k): str(v) for k, v in (getattr(config, "id2label", None) or {}).items()}
    names = [id2label.get(i, str(i)) for i in range(num)]
    if all(n == f"LABEL_{i}" for i, n in enumerate(names)):
        names = [str(i) for i in range(num)]  # generic names: data labels are the class indices
    problem = getattr(config, "problem_type", None)
    for task_class in (RegressionTask, MultilabelTask):
        if problem == task_class.problem_type:
            return task_class(num, names)
    return (BinaryTask if num == 2 else MulticlassTask)(num, names)


def load_module(cfg: DictConfig) -> tuple[DNALMModule, Backbone, Task]:
    """A :class:`DNALMModule` from ``cfg.ckpt_path`` (dnalm checkpoint) or ``cfg.model`` with ``head=native``."""
    ckpt_path = cfg.get("ckpt_path")
    if ckpt_path:
        path = Path(str(ckpt_path))
        checkpoint = read_checkpoint(path)
        saved = checkpoint.get("dnalm_config")
        if not saved:
            raise ModelLoadError(f"{path} is not a dnalm checkpoint (no saved config); for a published Hugging Face "
                                 "classifier use model=hf model.name_or_path=<folder or id> head=native instead.")
        task = Task.from_dict(checkpoint["dnalm_task"])
        _warn_ignored_model(cfg, saved["model"], path)
        head_cfg = OmegaConf.create(saved["head"])
        backbone = load_backbone(OmegaConf.create(saved["model"]), native_head=bool(head_cfg.get("native", False)))
        strategy = instantiate(saved["strategy"])
        module = DNALMModule(backbone, task, strategy, head_cfg, OmegaConf.create(saved["optim"]))
        _load_weights(module, checkpoint["state_dict"], path)
        return module, backbone, task
    if not cfg.head.get("native", False):
        raise ConfigError("give ckpt_path=<dnalm checkpoint>, or a published classifier with "
                          "model=hf model.name_or_path=<folder or id> head=native.")
    exported = _exported_head(cfg.model)
    if exported is not None:
        return exported
    backbone = load_backbone(cfg.model, native_head=True)
    task = task_from_native(backbone)
    module = DNALMModule(backbone, task, FullFineTuning(), cfg.head, OmegaConf.create({"lr": 0.0}))
    return module, backbone, task


def _warn_ignored_model(cfg: DictConfig, saved_model: dict[str, Any], path: Path) -> None:
    """A ``model.name_or_path`` given with a checkpoint is not used: the checkpoint names its own backbone."""
    given = (cfg.get("model") or {}).get("name_or_path")
    if given and str(given) != str(saved_model.get("name_or_path")):
        log.warning("model.name_or_path=%s is ignored: %s was trained on %s, and that backbone is used "
                    "(drop the override, or train a checkpoint on the other model)", given, path,
                    saved_model.get("name_or_path"))


def _exported_head(model_cfg: DictConfig) -> tuple[DNALMModule, Backbone, Task] | None:
    """A folder ``dnalm.export`` wrote for a pooling + dnalm head: its backbone, then the saved head (else None)."""
    from safetensors.torch import load_file

    folder = Path(str(model_cfg.get("name_or_path") or ""))
    head_file = folder / "dnalm_head.json"
    if not model_cfg.get("name_or_path") or not head_file.is_file():
        return None
    saved = json.loads(head_file.read_text())
    task = Task.from_dict(saved["task"])
    backbone = load_backbone(model_cfg)
    strategy = FullFineTuning()
    strategy.layer = int(saved.get("layer", -1))
    head_cfg = OmegaConf.create(upgrade_head_config(saved["head"]))
    module = DNALMModule(backbone, task, strategy, head_cfg, OmegaConf.create({"lr": 0.0}))
    weights = load_file(str(folder / "dnalm_head.safetensors"))
    result = module.load_state_dict(weights, strict=False)
    missing = [k for k in result.missing_keys if not k.startswith("backbone.")]
    if result.unexpected_keys or missing:
        raise ModelLoadError(f"{folder / 'dnalm_head.safetensors'} does not fit {head_file}: "
                             f"missing {missing[:3]}, unexpected {result.unexpected_keys[:3]}.")
    return module, backbone, task


def _load_weights(module: DNALMModule, state_dict: dict[str, torch.Tensor], path: Path) -> None:
    """Load what the checkpoint holds; parameters it lacks must be frozen backbone weights (reloaded above)."""
    result = module.load_state_dict(state_dict, strict=False)
    if result.unexpected_keys:
        raise ModelLoadError(f"{path} holds weights this model does not have, e.g. {result.unexpected_keys[:3]}: "
                             "was it trained with another model or head config?")
    trainable_missing = [k for k in result.missing_keys if not k.startswith("backbone.")]
    if trainable_missing:
        raise ModelLoadError(f"{path} lacks head weights {trainable_missing[:3]}.")


def load_for_inference(cfg: DictConfig, pooling: str | None = None, layer: int | None = None
                       ) -> tuple[DNALMModule, Backbone, Task | None]:
    """A module from ``cfg.ckpt_path`` (its trained head and task) or a pretrained ``cfg.model`` (no task).

    ``pooling`` / ``layer`` override how embeddings are taken (``None`` keeps the checkpoint's choice; a
    pretrained model defaults to ``auto`` pooling of the last layer).
    """
    if cfg.get("ckpt_path") or (cfg.get("head") is not None and cfg.head.get("native", False)):
        module, backbone, task = load_module(cfg)
    else:
        if cfg.model.get("name_or_path") is None and not cfg.model.get("from_config"):
            raise ConfigError("give a pretrained model (model=<name> or model.name_or_path=<folder or hub id>) "
                              "or a fine-tuned checkpoint (ckpt_path=<file.ckpt>).")
        backbone = load_backbone(cfg.model)
        head = OmegaConf.create({"_target_": "dnalm.models.heads.LinearHead", "pooling": pooling or "auto",
                                 "dropout": 0.0})
        module = DNALMModule(backbone, BinaryTask(2, ["0", "1"]), Probing(cache=False), head,
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


# -- running ----------------------------------------------------------------------------------------------------
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


def gather_outputs(outputs: list[dict[str, torch.Tensor]]) -> list[dict[str, torch.Tensor]]:
    """The batch outputs of every rank: under DDP each rank scores only its own batches."""
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return outputs
    gathered: list[Any] = [None] * torch.distributed.get_world_size()
    torch.distributed.all_gather_object(gathered, outputs)
    return [batch for rank_outputs in gathered for batch in rank_outputs]


def per_record(outputs: list[dict[str, torch.Tensor]], key: str, count: int) -> torch.Tensor:
    """``[count, ...]`` values of ``key`` in record order, from batch outputs holding each record once."""
    if not outputs:
        return torch.zeros((count, 0))
    groups = torch.cat([o["group"] for o in outputs]).numpy()
    if not np.array_equal(np.sort(groups), np.arange(count)):
        raise RuntimeError("predictions do not cover every record once")  # a bug, not a user error
    return torch.cat([o[key] for o in outputs])[np.argsort(groups, kind="stable")]


def predict_loader(trainer: L.Trainer, module: DNALMModule, loader: Any, count: int) -> torch.Tensor:
    """``[count, outputs]`` logits of a data split's records through Lightning (``trainer.precision``, DDP)."""
    return per_record(gather_outputs(trainer.predict(module, dataloaders=loader)), "logits", count)


@dataclass
class Runner:
    """The applications' driver: sequences in, per-sequence embeddings or logits out, on one device.

    Each :meth:`run` tokenizes, windows and batches like a data split, runs :meth:`DNALMModule.infer` under
    :meth:`precision_context` and gathers the outputs in input order; the model stays on ``device`` between calls.
    """

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
        # windows are numbered afresh in every call: a probing cache keyed by window index would mix calls
        self.module.uses_cache = False
        self.layout = encode.SpecialLayout.of(self.tokenizer)
        self.pad_id = pad_id_of(self.tokenizer)
        self.dtype = autocast_dtype(self.device, self.precision)

    @classmethod
    def from_cfg(cls, cfg: DictConfig, pooling: str | None = None, layer: int | None = None
                 ) -> tuple[Runner, Task | None]:
        """Load the model of ``cfg`` and wrap it (``cfg.batch_size``, ``cfg.device``, ``cfg.precision``)."""
        module, backbone, task = load_for_inference(cfg, pooling, layer)
        runner = cls(module, backbone.tokenizer, backbone.max_tokens, int(cfg.get("batch_size", 64)),
                     pick_device(cfg.get("device", "auto")), cfg.get("precision", "auto"))
        return runner, task

    def loader(self, sequences: Sequence[str]) -> Any:
        """Tokenized, windowed, length-grouped batches of ``sequences`` (each sequence is one record)."""
        ids = encode.encode_cached(self.tokenizer, sequences, None)
        windows, groups = encode.expand_windows(ids, self.max_tokens, self.layout)
        split = EncodedSplit(windows, np.zeros(len(windows), dtype=np.int64), groups, pd.DataFrame(index=range(len(ids))))
        return batch_loader(SequenceDataset(split, self.max_tokens, self.layout), self.batch_size, self.pad_id)

    def precision_context(self) -> contextlib.AbstractContextManager:
        """16-bit autocast on GPUs (see :func:`autocast_dtype`), nothing on the CPU."""
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    @torch.inference_mode()
    def run(self, sequences: Sequence[str], output: Output = "embed", progress: str | None = None) -> np.ndarray:
        """``[N, hidden]`` pooled embeddings or ``[N, classes]`` logits (float32), in input order.

        ``progress`` names the work for a progress bar (log lines off a terminal) counting sequences.
        """
        if output == "logits" and self.module.head is None and not self.module.native_head:
            raise ConfigError("class scores need a fine-tuned classifier: give ckpt_path=<file.ckpt>.")
        start = time.perf_counter()
        bar = Progress(progress, total=len(sequences), unit="sequences") if progress else None
        with bar or contextlib.nullcontext():
            outputs = []
            for batch in self.loader(sequences):
                batch = {k: v.to(self.device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
                with self.precision_context():
                    groups, values = self.module.infer(batch, output)
                outputs.append({"group": groups.cpu(), "values": values.cpu()})
                if bar is not None:  # windows of one sequence share a batch; count sequences finished
                    bar.advance(len(groups))
        result = per_record(gather_outputs(outputs), "values", len(sequences))
        self.calls += len(sequences)
        self.seconds += time.perf_counter() - start
        return result.numpy() if len(sequences) else np.zeros((0, 0), dtype=np.float32)

    def probabilities(self, sequences: Sequence[str], task: Task) -> np.ndarray:
        """Per-class probabilities of the task kind (softmax for classes, sigmoid for multilabel)."""
        return task.probabilities(torch.from_numpy(self.run(sequences, "logits"))).numpy()


def predictions_frame(logits: torch.Tensor, records: pd.DataFrame, task: Task) -> pd.DataFrame:
    """One row per input record: id, (label,) then the task kind's columns (class probabilities and the
    predicted label, or predicted values)."""
    frame = pd.DataFrame({"id": records["id"].to_numpy()})
    if "label" in records.columns:
        frame["label"] = records["label"].to_numpy()
    for name, values in task.columns(logits).items():
        frame[name] = values
    return frame


def class_index(task: Task, target: str | int | None) -> int:
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


def describe(module: DNALMModule, extra: dict[str, Any]) -> dict[str, Any]:
    """Parameter counts and run facts for metrics.json."""
    trainable, total = module.count_parameters()
    return {"trainable_params": trainable, "total_params": total, **extra}
