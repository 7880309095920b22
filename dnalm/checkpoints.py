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
    return checkpoint
