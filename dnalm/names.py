"""Names for runs, folders, W&B and plot legends, made from paths and hub ids the user gave.

``model.name_or_path=../shared/models/x`` or ``data.path=/data/gue/human_tf_1`` must not put slashes into run
folders, W&B names or legends: a name is the last path component, with anything but letters, digits, ``.``,
``_`` and ``-`` replaced. The ``dnalm.name`` resolver makes this available to the YAML configs.
"""

from __future__ import annotations

import re

from omegaconf import OmegaConf

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def short_name(reference: object) -> str:
    """``"../shared/models/x/"`` -> ``"x"``; ``"InstaDeepAI/nt-v2"`` -> ``"nt-v2"``; unsafe characters -> ``_``."""
    text = str(reference).replace("\\", "/").rstrip("/")
    last = text.rsplit("/", 1)[-1] if text else ""
    last = last.removesuffix(".gz")
    for suffix in (".csv", ".tsv", ".parquet", ".fa", ".fasta", ".fna"):
        last = last.removesuffix(suffix)
    cleaned = _UNSAFE.sub("_", last).strip("._")
    return cleaned or "unnamed"


def register_resolvers() -> None:
    """``${dnalm.name:<path or id>}`` in configs (idempotent)."""
    if not OmegaConf.has_resolver("dnalm.name"):
        OmegaConf.register_new_resolver("dnalm.name", short_name)
