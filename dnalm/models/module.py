"""DNALMModule: backbone ─(strategy decides what trains)─► pooling ► head ► loss + torchmetrics."""

from __future__ import annotations

import logging
from typing import Any

import lightning as L
import torch
from omegaconf import DictConfig
from torch import nn

from dnalm import compat
from dnalm import metrics as M
from dnalm.models.backbone import Backbone
from dnalm.models.dropout import use_packed_dropout
from dnalm.models.heads import build_head
from dnalm.models.optim import make_optimizer, with_step_scheduler
from dnalm.models.pooling import build_pooling
from dnalm.strategies.base import Strategy
from dnalm.tasks import Task

log = logging.getLogger(__name__)


def group_mean(values: torch.Tensor, groups: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Average rows of ``values`` that share a group id; returns (unique groups, means) in first-seen order."""
    unique, inverse = torch.unique(groups, return_inverse=True)
    if len(unique) == len(groups):
        return groups, values
    sums = torch.zeros((len(unique), *values.shape[1:]), dtype=values.dtype, device=values.device)
    sums.index_add_(0, inverse, values)
    counts = torch.bincount(inverse, minlength=len(unique)).to(values.dtype)
    return unique, sums / counts.view(-1, *([1] * (values.dim() - 1)))


class DNALMModule(L.LightningModule):
    """A pretrained DNA LM adapted to a sequence-level task."""

    def __init__(self, backbone: Backbone, task: Task, strategy: Strategy, head_cfg: DictConfig,
                 optim_cfg: DictConfig, gradient_checkpointing: bool = False) -> None:
        super().__init__()
        self.task, self.strategy, self.optim_cfg, self.head_cfg = task, strategy, optim_cfg, head_cfg
        self.native_head = backbone.native_head
        self.is_causal = backbone.is_causal
        self.right_padding_needs_no_mask = backbone.right_padding_needs_no_mask
        if gradient_checkpointing:
            backbone.model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        self.backbone = strategy.prepare(backbone)
        # from_pretrained returns eval mode; Lightning keeps each module's mode, so dropout must be switched on here
        self.backbone.train(not strategy.frozen)
        self.uses_cache = bool(getattr(strategy, "cache", False)) and strategy.frozen and not self.native_head
        # pooling and head are the classes head_cfg names by _target_ (conf/head/, conf/head/pooling/); with a
        # native head the family's own head classifies and the pooling only serves embeddings (embed, variants)
        self.pooling = build_pooling(head_cfg.get("pooling", "auto"), backbone.hidden_size, backbone.is_causal)
        self.head = None if self.native_head else build_head(head_cfg, backbone.hidden_size, task.num_logits)
        if bool(optim_cfg.get("packed_dropout", True)):
            use_packed_dropout(self)  # CPU dropout masks four per random word; identical elsewhere
        self.val_metrics = M.make_metrics(task, "val")
        self.test_metrics = M.make_metrics(task, "test")
        # which classes the targets of an evaluation held (metrics like AUROC are undefined with one class)
        self._present: dict[str, torch.Tensor] = {}
        self.undefined: dict[str, list[str]] = {}  # split -> metric keys reported as null, not as a number
        self._cache: dict[str, dict[int, torch.Tensor]] = {"train": {}, "val": {}, "test": {}, "predict": {}}
        self._cache_tokens = self.pooling is not None and any(p.requires_grad for p in self.pooling.parameters())
        self.run_config: dict[str, Any] = {}  # model/strategy/head/optim/data configs, to rebuild from a checkpoint
        # Frozen backbone weights are reloaded from the model reference; checkpoints keep what trains.
        self.strict_loading = False

    # -- forward ----------------------------------------------------------------------------------------------
    def _backbone_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {}
        if self.strategy.layer != -1 or self.native_head:
            kwargs["output_hidden_states"] = True  # a *ForSequenceClassification returns logits, not states
        if self.is_causal:
            kwargs["use_cache"] = False
        return kwargs

    def hidden_states(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                      right_padded: bool | None = None) -> torch.Tensor:
        """Token embeddings from the strategy's layer (``[B, T, H]``); rows of padding are not meaningful.

        ``right_padded`` says how the batch was padded when the caller knows it (the collator does); unknown,
        it is read from a CPU mask and assumed false for a mask on an accelerator.
        """
        out = self.backbone(input_ids=input_ids, attention_mask=self._mask_for_backbone(attention_mask, right_padded),
                            **self._backbone_kwargs())
        if self.strategy.layer != -1 or self.native_head:
            return out.hidden_states[self.strategy.layer]
        return out.last_hidden_state if hasattr(out, "last_hidden_state") else out[0]

    def _mask_for_backbone(self, attention_mask: torch.Tensor, right_padded: bool | None) -> torch.Tensor | None:
        """``None`` for a right-padded batch of a decoder whose causal attention already hides the padding."""
        if not self.right_padding_needs_no_mask:
            return attention_mask
        if right_padded is None:
            if attention_mask.device.type != "cpu":
                return attention_mask  # checking would make the host wait for the device on every batch
            right_padded = bool((attention_mask[:, 1:] <= attention_mask[:, :-1]).all())
        return None if right_padded else attention_mask

    def embed(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
              right_padded: bool | None = None) -> torch.Tensor:
        """One pooled embedding per sequence (``[B, H]``)."""
        assert self.pooling is not None
        hidden = self.hidden_states(input_ids, attention_mask, right_padded)
        return self.pooling(hidden, attention_mask)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                right_padded: bool | None = None) -> torch.Tensor:
        """Logits for a batch."""
        if self.native_head:
            return self.backbone(input_ids=input_ids, attention_mask=attention_mask).logits
        assert self.head is not None
        return self.head(self.embed(input_ids, attention_mask, right_padded))

    def _cached_logits(self, batch: dict[str, torch.Tensor], stage: str) -> torch.Tensor:
        """Probing: run the frozen backbone once per item, then reuse its output every epoch."""
        assert self.pooling is not None and self.head is not None
        store = self._cache[stage]
        indices = batch["index"].tolist()
        if not all(i in store for i in indices):
            with torch.no_grad():
                if self._cache_tokens:
                    hidden = self.hidden_states(batch["input_ids"], batch["attention_mask"], batch.get("right_padded"))
                    lengths = batch["attention_mask"].sum(1).tolist()
                    for row, (i, n) in enumerate(zip(indices, lengths)):
                        store[i] = hidden[row, :n].detach().to("cpu", torch.float32)
                else:
                    pooled = self.embed(batch["input_ids"], batch["attention_mask"], batch.get("right_padded"))
                    for row, i in enumerate(indices):
                        store[i] = pooled[row].detach().to("cpu", torch.float32)
        dtype = next(self.head.parameters()).dtype
        if self._cache_tokens:
            rows = [store[i] for i in indices]
            hidden = nn.utils.rnn.pad_sequence(rows, batch_first=True).to(self.device, dtype)
            mask = nn.utils.rnn.pad_sequence([torch.ones(len(r), dtype=torch.long) for r in rows],
                                             batch_first=True).to(self.device)
            return self.head(self.pooling(hidden, mask))
        return self.head(torch.stack([store[i] for i in indices]).to(self.device, dtype))

    def logits(self, batch: dict[str, torch.Tensor], stage: str) -> torch.Tensor:
        """Logits of a batch, through the probing cache when the strategy has one."""
        if self.uses_cache:
            return self._cached_logits(batch, stage)
        return self(batch["input_ids"], batch["attention_mask"], batch.get("right_padded"))

    # -- loss and steps ---------------------------------------------------------------------------------------
    def loss(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The task kind's loss (cross-entropy for classes, BCE for multilabel, MSE for regression)."""
        return self.task.loss(logits, target)

    def on_train_start(self) -> None:
        # configure_optimizers reads estimated_stepping_batches, which builds the train loader before the
        # checkpoint is restored, so Lightning never hands the saved loader position over: do it here.
        compat.restore_loader_states(self.trainer.fit_loop)

    def on_train_epoch_start(self) -> None:
        if self.strategy.frozen:
            self.backbone.eval()  # no dropout in a frozen backbone, so cached embeddings stay valid

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        logits = self.logits(batch, "train")
        loss = self.loss(logits, batch["target"])
        if self._logs_this_step():
            self.log("train/loss", loss, prog_bar=True, batch_size=len(batch["target"]))
        return loss

    def _logs_this_step(self) -> bool:
        """Whether Lightning writes step metrics after this training batch (every ``log_every_n_steps``).

        ``self.log`` costs about a millisecond per call in Lightning's bookkeeping, and a step value logged
        between two writes is overwritten unread: loggers get the same rows either way, and the progress bar
        and ``callback_metrics`` show the loss of the latest written step.
        """
        trainer = compat.attached_trainer(self)
        if trainer is None:
            return True  # outside a Trainer: let self.log say so
        return compat.logs_this_step(trainer) or bool(trainer.fast_dev_run)

    def _eval_step(self, batch: dict[str, torch.Tensor], stage: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        logits = self.logits(batch, stage)
        loss = self.loss(logits, batch["target"])
        groups, mean_logits = group_mean(logits.float(), batch["group"])
        _, targets = group_mean(batch["target"].float(), batch["group"])
        return loss, groups, mean_logits, targets.to(batch["target"].dtype)

    def _count_classes(self, targets: torch.Tensor, stage: str) -> None:
        counts = self.task.class_counts(targets)
        if counts is None:  # a kind without one class per record
            return
        present = self._present.get(stage)
        self._present[stage] = counts > 0 if present is None else present | (counts.to(present.device) > 0)

    def _epoch_metrics(self, metrics: Any, stage: str) -> dict[str, float]:
        """Computed metrics; those the targets cannot define (one class) are NaN (null in metrics.json), with a warning."""
        values = M.flatten(metrics.compute())
        metrics.reset()
        present = self._present.pop(stage, None)
        if present is None:
            return values
        trainer = self._trainer
        if trainer is not None and trainer.world_size > 1:
            present = self.all_gather(present.to(self.device).long()).view(-1, present.numel()).amax(0) > 0
        undefined = [k for k in self.task.undefined_metrics(present.cpu(), stage) if k in values]
        if undefined:
            split = {"val": "valid"}.get(stage, stage)
            classes = [n for n, seen in zip(self.task.label_names, present.tolist()) if seen]
            sanity = trainer is not None and trainer.sanity_checking  # two batches: one class proves nothing
            if self.undefined.get(stage) != undefined and not sanity:  # once per split, not every validation
                log.warning("the %s split's labels hold only the class(es) %s: %s are undefined and reported as "
                            "null, not as a score", split, classes, ", ".join(undefined))
            if not sanity:
                self.undefined[stage] = undefined
            values.update(dict.fromkeys(undefined, float("nan")))
        return values

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        loss, _, logits, targets = self._eval_step(batch, "val")
        self.val_metrics.update(self.task.metric_inputs(logits), self.task.metric_targets(targets))
        self._count_classes(targets, "val")
        self.log("val/loss", loss, prog_bar=True, batch_size=len(targets), sync_dist=True)

    def on_validation_epoch_end(self) -> None:
        self.log_dict(self._epoch_metrics(self.val_metrics, "val"), prog_bar=False)

    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        loss, _, logits, targets = self._eval_step(batch, "test")
        self.test_metrics.update(self.task.metric_inputs(logits), self.task.metric_targets(targets))
        self._count_classes(targets, "test")
        self.log("test/loss", loss, batch_size=len(targets), sync_dist=True)

    def on_test_epoch_end(self) -> None:
        self.log_dict(self._epoch_metrics(self.test_metrics, "test"))

    def infer(self, batch: dict[str, torch.Tensor], output: str = "logits") -> tuple[torch.Tensor, torch.Tensor]:
        """(records, values) of a batch: window ``logits`` (through the probing cache when the strategy has one)
        or pooled ``embed`` embeddings, averaged over each record's windows. The model step of every inference
        path (:mod:`dnalm.inference`)."""
        if output == "embed":
            values = self.embed(batch["input_ids"], batch["attention_mask"], batch.get("right_padded"))
        else:
            values = self.logits(batch, "predict")
        return group_mean(values.float(), batch["group"].to(values.device))

    def predict_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> dict[str, torch.Tensor]:
        groups, mean_logits = self.infer(batch, "logits")
        return {"group": groups.cpu(), "logits": mean_logits.cpu()}

    # -- optimisation -----------------------------------------------------------------------------------------
    def parameter_groups(self) -> list[dict[str, Any]]:
        """Optimiser groups: backbone and head (own LR), each split into decayed and not decayed (biases, norms)."""
        lr = float(self.optim_cfg.lr)
        head_lr = float(self.head_cfg.get("lr") or lr)
        wd = float(self.optim_cfg.get("weight_decay", 0.01))
        groups: dict[tuple[str, bool], list[nn.Parameter]] = {}
        for name, param in self.named_parameters():
            if not param.requires_grad:
                continue
            part = "head" if name.startswith(("head.", "pooling.")) else "backbone"
            no_decay = param.ndim < 2 or "norm" in name.lower() or name.endswith(".bias")
            groups.setdefault((part, no_decay), []).append(param)
        return [{"params": params, "lr": head_lr if part == "head" else lr, "weight_decay": 0.0 if no_decay else wd,
                 "name": f"{part}{'_no_decay' if no_decay else ''}"} for (part, no_decay), params in groups.items()]

    def fused_optimizer(self, params: list[nn.Parameter]) -> bool:
        """Whether the optimiser runs as torch's fused kernel (``optim.fused``; null: wherever it can).

        The fused kernel updates every tensor in one call instead of about ten small ops per tensor (torch's
        default on CPU), the same arithmetic; ``transformers.Trainer`` defaults to it too. Automatic means on
        when torch has the kernel for every parameter's device and dtype, and off where something else handles
        the update: a GradScaler (16-bit mixed precision, where Lightning refuses fused optimizers with gradient
        clipping) or DeepSpeed.
        """
        setting = self.optim_cfg.get("fused")
        if setting is not None:
            return bool(setting)
        trainer = compat.attached_trainer(self)
        if trainer is not None:
            if getattr(trainer.precision_plugin, "scaler", None) is not None:
                return False
            if "deepspeed" in type(trainer.strategy).__name__.lower():
                return False
        devices = compat.fused_kernel_devices()
        return bool(params) and all(p.device.type in devices and p.is_floating_point() for p in params)

    def configure_optimizers(self) -> dict[str, Any]:
        opt = self.optim_cfg
        groups = self.parameter_groups()
        # optim.fused: AdamW's kernel choice; an optimiser config without the key has none to make
        fused = "fused" in opt and self.fused_optimizer([p for group in groups for p in group["params"]])
        optimizer = make_optimizer(opt, groups, fused)
        return with_step_scheduler(optimizer, opt, int(self.trainer.estimated_stepping_batches))

    # -- checkpoints ------------------------------------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        trainable = {name for name, p in self.named_parameters() if p.requires_grad}
        buffers = {name for name, _ in self.named_buffers()}
        if self.strategy.frozen or trainable != {name for name, _ in self.named_parameters()}:
            checkpoint["state_dict"] = {k: v for k, v in checkpoint["state_dict"].items()
                                        if k in trainable or (k in buffers and not k.startswith("backbone."))}
        checkpoint["dnalm_task"] = self.task.to_dict()
        checkpoint["dnalm_config"] = self.run_config
        checkpoint["dnalm_rng"] = {"torch": torch.get_rng_state()}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        rng = checkpoint.get("dnalm_rng")
        if rng is not None:  # the same dropout masks after a resume as without the interruption
            torch.set_rng_state(rng["torch"])

    def count_parameters(self) -> tuple[int, int]:
        """(trainable, total) parameters of backbone, pooling and head."""
        total = sum(p.numel() for p in self.parameters())
        trainable = sum(p.numel() for p in self.parameters() if p.requires_grad)
        return trainable, total
