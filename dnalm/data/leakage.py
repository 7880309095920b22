"""Train/valid/test leakage: identical sequences (optionally reverse complements) shared between splits.

A test record whose sequence is also in the training data measures memory, not generalisation. Leaks are
counted when the data is set up and handled by ``data.leakage``: ``warn`` (count, examples, carry on),
``error`` (stop), or ``drop_from_train`` (remove the shared sequences from train, so valid/test stay as given).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from dnalm.errors import ConfigError, DataError
from dnalm.tokenizers.strand import reverse_complement_batch

log = logging.getLogger(__name__)

POLICIES = ("warn", "error", "drop_from_train")
PAIRS = (("valid", "train"), ("test", "train"), ("test", "valid"))
EXAMPLES = 3


def _shared(later: pd.DataFrame, earlier: pd.DataFrame, reverse_complement: bool) -> np.ndarray:
    """Mask of ``later``'s rows whose sequence (or its reverse complement) occurs in ``earlier``."""
    seen = set(earlier["sequence"])
    if reverse_complement:
        seen.update(reverse_complement_batch(earlier["sequence"].tolist()))
    return later["sequence"].isin(seen).to_numpy(dtype=bool)


def check_leakage(frames: dict[str, pd.DataFrame], policy: str = "warn",
                  reverse_complement: bool = False) -> tuple[dict[str, pd.DataFrame], dict[str, Any]]:
    """Count records of valid/test whose sequence is also in an earlier split; apply ``policy``.

    Returns the frames (train without the shared sequences under ``drop_from_train``) and a report with one
    count per pair, ``leakage/<later>_in_<earlier>``, plus ``leakage/dropped_from_train``.
    """
    if policy not in POLICIES:
        raise ConfigError(f"data.leakage={policy!r}; choose one of {POLICIES}.")
    report: dict[str, Any] = {}
    messages = []
    for later, earlier in PAIRS:
        if later not in frames or earlier not in frames:
            continue
        mask = _shared(frames[later], frames[earlier], reverse_complement)
        count = int(mask.sum())
        report[f"leakage/{later}_in_{earlier}"] = count
        if count:
            examples = frames[later]["id"][mask].head(EXAMPLES).tolist()
            what = "sequence (or reverse complement)" if reverse_complement else "sequence"
            messages.append(f"{count} of {len(mask)} {later} record(s) have a {what} that is also in {earlier}, "
                            f"e.g. {examples}")
    if not messages:
        return frames, report
    text = "; ".join(messages)
    if policy == "error":
        raise DataError(f"leakage between splits: {text}. Remove the shared sequences, or set "
                        "data.leakage=drop_from_train to drop them from train (data.leakage=warn to go on).")
    if policy == "drop_from_train" and "train" in frames:
        held = pd.concat([frames[s] for s in ("valid", "test") if s in frames])
        mask = _shared(frames["train"], held, reverse_complement)
        frames = {**frames, "train": frames["train"][~mask].reset_index(drop=True)}
        report["leakage/dropped_from_train"] = int(mask.sum())
        log.warning("leakage between splits: %s; dropped %d train record(s) (data.leakage=drop_from_train)",
                    text, int(mask.sum()))
        if report.get("leakage/test_in_valid"):
            log.warning("valid and test still share sequences: only train records are dropped")
        if frames["train"].empty:
            raise DataError("data.leakage=drop_from_train left no train record: every train sequence is also in "
                            "valid or test.")
    else:
        log.warning("leakage between splits: %s. Test scores may be optimistic; set data.leakage=drop_from_train "
                    "to drop them from train, or data.leakage=error to stop", text)
    return frames, report
