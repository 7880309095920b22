"""Rebuild a trained model from a checkpoint (or a published classifier) for evaluation and prediction."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from dnalm.checkpoints import read_checkpoint, upgrade_head_config
from dnalm.data.labels import TaskSpec
from dnalm.errors import ConfigError, ModelLoadError
from dnalm.models.backbone import Backbone, load_backbone
from dnalm.models.module import DNALMModule
from dnalm.strategies import FullFineTuning

log = logging.getLogger(__name__)


def task_from_native(backbone: Backbone) -> TaskSpec:
    """The task of a published ``*ForSequenceClassification`` checkpoint, from its config's label map."""
    config = backbone.model.config
    num = int(getattr(config, "num_labels", 2))
    id2label = {int(k): str(v) for k, v in (getattr(config, "id2label", None) or {}).items()}
    names = [id2label.get(i, str(i)) for i in range(num)]
    if all(n == f"LABEL_{i}" for i, n in enumerate(names)):
        names = [str(i) for i in range(num)]  # generic names: data labels are the class indices
    problem = getattr(config, "problem_type", None)
    if problem == "regression":
        return TaskSpec("regression", num, names)
    if problem == "multi_label_classification":
        return TaskSpec("multilabel", num, names)
    return TaskSpec("binary" if num == 2 else "multiclass", num, names)


def load_module(cfg: DictConfig) -> tuple[DNALMModule, Backbone, TaskSpec]:
    """A :class:`DNALMModule` from ``cfg.ckpt_path`` (dnalm checkpoint) or ``cfg.model`` with ``head=native``."""
    ckpt_path = cfg.get("ckpt_path")
    if ckpt_path:
        path = Path(str(ckpt_path))
        checkpoint = read_checkpoint(path)
        saved = checkpoint.get("dnalm_config")
        if not saved:
            raise ModelLoadError(f"{path} is not a dnalm checkpoint (no saved config); for a published Hugging Face "
                                 "classifier use model=hf model.name_or_path=<folder or id> head=native instead.")
        task = TaskSpec.from_dict(checkpoint["dnalm_task"])
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


def _exported_head(model_cfg: DictConfig) -> tuple[DNALMModule, Backbone, TaskSpec] | None:
    """A folder ``dnalm.export`` wrote for a pooling + dnalm head: its backbone, then the saved head (else None)."""
    from safetensors.torch import load_file

    folder = Path(str(model_cfg.get("name_or_path") or ""))
    head_file = folder / "dnalm_head.json"
    if not model_cfg.get("name_or_path") or not head_file.is_file():
        return None
    saved = json.loads(head_file.read_text())
    task = TaskSpec.from_dict(saved["task"])
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


def gather_outputs(outputs: list[dict[str, torch.Tensor]]) -> list[dict[str, torch.Tensor]]:
    """``trainer.predict`` outputs of every rank: under DDP each rank returns only the batches it scored."""
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return outputs
    gathered: list[Any] = [None] * torch.distributed.get_world_size()
    torch.distributed.all_gather_object(gathered, outputs)
    return [batch for rank_outputs in gathered for batch in rank_outputs]


def predictions_frame(outputs: list[dict[str, torch.Tensor]], records: pd.DataFrame, task: TaskSpec) -> pd.DataFrame:
    """One row per input record: id, per-class probabilities (or values) and the predicted label."""
    groups = torch.cat([o["group"] for o in outputs]).numpy()
    scores = torch.cat([o["logits"] for o in outputs])
    order = np.argsort(groups, kind="stable")
    if len(np.unique(groups)) != len(records):
        raise RuntimeError("predictions do not cover every record once")  # a bug, not a user error
    logits = scores[order]
    frame = pd.DataFrame({"id": records["id"].to_numpy()})
    if "label" in records.columns:
        frame["label"] = records["label"].to_numpy()
    if task.kind in ("binary", "multiclass"):
        probs = torch.softmax(logits.float(), dim=-1).numpy()
        for i, name in enumerate(task.label_names):
            frame[f"prob_{name}"] = probs[:, i]
        frame["predicted"] = [task.label_names[i] for i in probs.argmax(1)]
    elif task.kind == "multilabel":
        probs = torch.sigmoid(logits.float()).numpy()
        for i, name in enumerate(task.label_names):
            frame[f"prob_{name}"] = probs[:, i]
        frame["predicted"] = [";".join(n for n, p in zip(task.label_names, row) if p >= 0.5) for row in probs]
    else:
        values = logits.float().numpy()
        for i, name in enumerate(task.label_names):
            frame[f"predicted_{name}"] = values[:, i]
    return frame


def describe(module: DNALMModule, extra: dict[str, Any]) -> dict[str, Any]:
    """Parameter counts and run facts for metrics.json."""
    trainable, total = module.count_parameters()
    return {"trainable_params": trainable, "total_params": total, **extra}
