"""Reading dnalm checkpoints safely: tensors and plain containers only, and one clear error for a bad file."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import torch

from dnalm.errors import ConfigError, ModelLoadError


def read_checkpoint(path: str | Path, key: str = "ckpt_path", mmap: bool = False) -> dict[str, Any]:
    """``torch.load(path, weights_only=True)``; a missing, truncated or foreign file raises :class:`DNALMError`.

    ``mmap=True`` maps the tensors instead of reading them (for a look at the saved config). The message never
    suggests ``weights_only=False``: that would run whatever code a pickle holds.
    """
    path = Path(str(path))
    if not path.is_file():
        what = "is a folder, not a checkpoint file" if path.is_dir() else "does not exist"
        raise ConfigError(f"{key}={path} {what}. Give a .ckpt file written by dnalm.train "
                          "(e.g. <run dir>/checkpoints/last.ckpt).")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except (RuntimeError, KeyError, EOFError, OSError, ValueError, pickle.UnpicklingError) as err:
        reason = str(err).split("\n", 1)[0][:200] if "weights_only" not in str(err) else "it holds more than tensors"
        raise ModelLoadError(f"{key}={path} is not a readable checkpoint ({type(err).__name__}: {reason}): the file "
                             "is truncated (an interrupted copy or a full disk?) or is not a dnalm/Lightning "
                             "checkpoint. Use another checkpoint of the run, e.g. <run dir>/checkpoints/last.ckpt "
                             "or best-*.ckpt.") from err
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise ModelLoadError(f"{key}={path} is not a Lightning checkpoint (it has no state_dict): give a .ckpt file "
                             "written by dnalm.train.")
    if isinstance(checkpoint.get("dnalm_config"), dict):
        checkpoint["dnalm_config"] = upgrade_run_config(checkpoint["dnalm_config"])
    return checkpoint


# Heads of checkpoints written before heads were chosen by _target_ (``head.kind``): kind -> class and its keys.
_HEAD_KINDS = {"linear": ("dnalm.models.heads.LinearHead", ("dropout",)),
               "mlp": ("dnalm.models.heads.MLPHead", ("dropout", "mlp_hidden"))}


def upgrade_head_config(head: dict[str, Any]) -> dict[str, Any]:
    """A saved head config in today's layout: ``kind: linear|mlp`` (dnalm before components by ``_target_``)
    becomes the class's ``_target_`` with its keyword arguments; ``pooling`` names (``max``) stay, as short names
    of ``conf/head/pooling/``. A config in today's layout comes back unchanged."""
    if "_target_" in head or "kind" not in head:
        return head
    kind = str(head["kind"])
    if kind not in _HEAD_KINDS:
        raise ModelLoadError(f"the checkpoint's head.kind={kind!r} is unknown to this dnalm (it knows "
                             f"{sorted(_HEAD_KINDS)}); evaluate it with the dnalm version that trained it.")
    target, keys = _HEAD_KINDS[kind]
    upgraded: dict[str, Any] = {"_target_": target, "_partial_": True}
    upgraded |= {k: head[k] for k in keys if k in head}
    upgraded |= {k: head[k] for k in ("pooling", "lr", "native") if k in head}
    return upgraded


def upgrade_run_config(saved: dict[str, Any]) -> dict[str, Any]:
    """A checkpoint's ``dnalm_config`` in today's layout (see :func:`upgrade_head_config`); the optimiser of an
    older checkpoint was AdamW (``optim.scheduler`` names stay, as short names of ``conf/optim/scheduler/``)."""
    upgraded = dict(saved)
    if isinstance(saved.get("head"), dict):
        upgraded["head"] = upgrade_head_config(saved["head"])
    optim = saved.get("optim")
    if isinstance(optim, dict) and "_target_" not in optim:
        upgraded["optim"] = {"_target_": "torch.optim.AdamW", "_partial_": True, **optim}
    return upgraded
