"""``python -m dnalm.export ckpt_path=<best.ckpt> output=<folder> [merge=true|false] [push_to_hub=true repo_id=...]``.

Writes a fine-tuned model as a Hugging Face folder a colleague can load, with its tokenizer, label names and
a model card (``README.md``). Two layouts, chosen by the head the run trained:

* ``head=native`` (the family's own ``*ForSequenceClassification`` head): a transformers classifier folder.
  ``AutoModelForSequenceClassification.from_pretrained(folder)`` gives the same probabilities as
  ``dnalm.predict``. ``merge=true`` folds LoRA into the weights (PEFT ``merge_and_unload``); ``merge=false``
  writes the PEFT adapter (with the trained head in ``modules_to_save``) over its named base model.
* dnalm's pooling + linear/MLP head: no transformers head computes the same function (BERT/ESM heads add a
  dense+tanh layer, decoder ``score`` layers have no bias), so the folder holds the backbone (LoRA merged) as a
  plain transformers model plus ``dnalm_head.safetensors`` and ``dnalm_head.json``. dnalm loads it with
  ``model.name_or_path=<folder> head=native``; plain transformers loads only the backbone.

For NT v2 and GENA-LM classifiers (``head=native``, merged) the first layout is written as their authors publish
it instead (``published_layout=auto``, the default; see :mod:`dnalm.apps.published_layout`): ``model_type``
``esm`` / ``bert``, ``auto_map`` to the authors' remote code, the published key set. dnalm loads it with
``head=native``, the authors' ``*ForSequenceClassification`` with ``trust_remote_code``.
``published_layout=false`` writes dnalm's own ``model_type`` instead (loads with transformers after
``import dnalm.models.families``, no remote code).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import hydra
import torch
from omegaconf import DictConfig, OmegaConf
from safetensors.torch import save_file

import dnalm
from dnalm.apps.published_layout import layout_for, write_published
from dnalm.checkpoints import read_checkpoint
from dnalm.configs import CONFIG_DIR
from dnalm.errors import ConfigError, DNALMError
from dnalm.inference import load_module
from dnalm.models.module import DNALMModule
from dnalm.tasks import Task
from dnalm.utils.cli import run_task

log = logging.getLogger("dnalm.export")

HEAD_CONFIG = "dnalm_head.json"
HEAD_WEIGHTS = "dnalm_head.safetensors"
class HubError(DNALMError):
    """The Hugging Face hub refused or could not be reached."""


def _label_config(model: Any, task: Task) -> None:
    """Label names and problem type on the config, so transformers and the hub widget show real class names."""
    names = list(task.label_names)
    model.config.id2label = dict(enumerate(names))
    model.config.label2id = {name: i for i, name in enumerate(names)}
    model.config.problem_type = task.problem_type


def _unwrap(model: Any, merge: bool) -> Any:
    """The backbone with LoRA merged (``merge``) or still wrapped as a PEFT model."""
    from peft import PeftModel

    if isinstance(model, PeftModel) and merge:
        return model.merge_and_unload()
    return model


def _want_published(module: DNALMModule, model: Any, merged: bool, choice: str | bool) -> bool:
    """Whether to write the authors' published layout (``auto``: for NT v2 / GENA-LM merged native heads)."""
    possible = module.native_head and merged and layout_for(model) is not None
    if str(choice).lower() == "auto":
        return possible
    if str(choice).lower() in ("true", "false"):
        wanted = str(choice).lower() == "true"
    else:
        raise ConfigError(f"published_layout={choice!r}; choose auto, true or false.")
    if wanted and not possible:
        family = getattr(getattr(model, "config", None), "model_type", "?")
        raise ConfigError(f"published_layout=true is for NT v2 and GENA-LM runs trained with head=native and "
                          f"exported with merge=true; this run is {family!r} with "
                          f"{'head=native' if module.native_head else 'a dnalm pooling + head'} and "
                          f"merge={str(merged).lower()}; use published_layout=auto.")
    return wanted


def export_folder(module: DNALMModule, tokenizer: Any, task: Task, output: Path, merge: bool,
                  run_config: dict[str, Any], published_layout: str | bool = "auto") -> str:
    """Write ``module`` into ``output``; returns the layout written (``published``, ``transformers``, ``peft``
    or ``dnalm``)."""
    from peft import PeftModel

    output.mkdir(parents=True, exist_ok=True)
    model = module.backbone
    is_peft = isinstance(model, PeftModel)
    if not merge and not is_peft:
        raise ConfigError("merge=false writes a LoRA adapter, but this checkpoint was not trained with one; "
                          "use merge=true.")
    if not merge and not module.native_head:
        raise ConfigError("merge=false is for runs trained with head=native (the adapter then carries the "
                          "family's own head); a pooling + dnalm head needs merge=true.")
    if not merge and not run_config.get("model", {}).get("name_or_path"):
        raise ConfigError("merge=false writes an adapter over a named base model, but this run built its "
                          "backbone from a config (model.from_config); use merge=true.")
    model = _unwrap(model, merge)
    if _want_published(module, model, merge or not is_peft, published_layout):
        _label_config(model, task)
        write_published(model, layout_for(model), output, run_config.get("model", {}).get("name_or_path"))
        layout = "published"
    elif module.native_head:
        base = model.get_base_model() if is_peft and not merge else model
        _label_config(base, task)
        model.save_pretrained(output)  # PEFT writes adapter_config.json + adapter_model.safetensors
        layout = "peft" if is_peft and not merge else "transformers"
    else:
        model.save_pretrained(output)
        assert module.head is not None and module.pooling is not None
        state = {f"head.{k}": v for k, v in module.head.state_dict().items()}
        state |= {f"pooling.{k}": v for k, v in module.pooling.state_dict().items()}
        save_file({k: v.detach().to(torch.float32).contiguous() for k, v in state.items()}, output / HEAD_WEIGHTS)
        head_cfg = OmegaConf.to_container(module.head_cfg, resolve=True)
        (output / HEAD_CONFIG).write_text(json.dumps({
            "head": head_cfg, "pooling": type(module.pooling).__name__, "layer": module.strategy.layer,
            "task": task.to_dict(), "dnalm_version": dnalm.__version__}, indent=2) + "\n")
        layout = "dnalm"
    tokenizer.save_pretrained(output)
    return layout


def _run_metrics(ckpt_path: Path) -> dict[str, Any]:
    """The run's metrics.json (beside ``checkpoints/``), if there is one."""
    for folder in (ckpt_path.parent, ckpt_path.parent.parent):
        path = folder / "metrics.json"
        if path.is_file():
            return json.loads(path.read_text())
    return {}


def model_card(layout: str, run_config: dict[str, Any], task: Task, metrics: dict[str, Any],
               repo_id: str | None) -> str:
    """A README.md with the base model, data, strategy, metrics by split, dnalm version and how to load it."""
    model_cfg = run_config.get("model", {})
    base = model_cfg.get("name_or_path") or f"built from config ({model_cfg.get('name', 'tiny')}, random init)"
    revision = model_cfg.get("revision") or "not pinned"
    data_cfg = run_config.get("data", {})
    strategy = (run_config.get("strategy", {}).get("_target_") or "?").rsplit(".", 1)[-1]
    where = repo_id or "<this folder>"
    rows = [f"| {k.split('/', 1)[0]} | {k.split('/', 1)[1]} | {v:.4f} |" for k, v in sorted(metrics.items())
            if "/" in k and k.split("/", 1)[0] in ("test", "val") and isinstance(v, (int, float))]
    metric_table = ("| split | metric | value |\n|---|---|---|\n" + "\n".join(rows)) if rows else "No metrics recorded."
    if layout == "dnalm":
        load = (f"This folder holds the backbone in the transformers layout and dnalm's own pooling + head "
                f"(`{HEAD_CONFIG}`, `{HEAD_WEIGHTS}`). **Plain transformers cannot reproduce the classifier**: "
                f"`AutoModel.from_pretrained` loads only the backbone. With dnalm:\n\n"
                f"```bash\npython -m dnalm.predict model.name_or_path={where} head=native input=seqs.fa\n```")
    elif layout == "published":
        load = ("The folder is in the layout the model's authors publish (their `config.json` fields and "
                "`auto_map`, their weight names). With dnalm (native code, no remote code):\n\n"
                f"```bash\npython -m dnalm.predict model=hf model.name_or_path={where} head=native input=seqs.fa\n"
                "```\n\nWith the authors' code, which runs the remote files `auto_map` names (read them first; it "
                "needs the `transformers` version those files were written for):\n\n"
                f"```python\nfrom transformers import AutoModelForSequenceClassification\n"
                f"model = AutoModelForSequenceClassification.from_pretrained(\"{where}\", trust_remote_code=True)\n"
                "```\n\nPlain transformers without that code would build the wrong network (stock ESM / BERT).")
    elif layout == "peft":
        load = ("A PEFT LoRA adapter (with the trained classification head) over the base model:\n\n"
                f"```python\nfrom peft import AutoPeftModelForSequenceClassification\n"
                f"model = AutoPeftModelForSequenceClassification.from_pretrained(\"{where}\")\n```\n\n"
                f"or `python -m dnalm.predict model.name_or_path={where} head=native input=seqs.fa`.")
    else:
        load = (f"```python\nfrom transformers import AutoModelForSequenceClassification, AutoTokenizer\n"
                f"model = AutoModelForSequenceClassification.from_pretrained(\"{where}\")\n"
                f"tokenizer = AutoTokenizer.from_pretrained(\"{where}\")\n```\n\n"
                f"or `python -m dnalm.predict model.name_or_path={where} head=native input=seqs.fa`.")
    return f"""---
library_name: {"peft" if layout == "peft" else "transformers"}
tags: [dnalm, dna, genomics]
---
# Fine-tuned DNA language model ({task.kind})

Exported by dnalm {dnalm.__version__}.

- Base model: `{base}` (revision: {revision})
- Data: `{data_cfg.get("path") or data_cfg.get("name") or "?"}`
- Strategy: {strategy}
- Task: {task.kind}; labels (index: name): {", ".join(f"{i}: {n}" for i, n in enumerate(task.label_names))}
- Layout: {layout}

## Metrics

{metric_table}

## How to load

{load}
"""


def push_folder(folder: Path, repo_id: str, private: bool) -> str:
    """Upload ``folder`` to the hub repository ``repo_id`` (created if missing); returns its URL."""
    from huggingface_hub import HfApi

    api = HfApi()
    try:
        api.create_repo(repo_id, private=private, exist_ok=True)
        api.upload_folder(folder_path=str(folder), repo_id=repo_id, commit_message="Upload model exported by dnalm")
    except Exception as err:  # network, auth and offline-mode errors all become one line
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise HubError(f"could not push {folder} to the hub as {repo_id}: {reason} (check the network and "
                       "`huggingface-cli login`; the folder is written and can be uploaded later).") from err
    return f"https://huggingface.co/{repo_id}"


def export(cfg: DictConfig) -> dict[str, Any]:
    """Export ``cfg.ckpt_path`` into ``cfg.output``; push it when ``cfg.push_to_hub``; return a summary."""
    if not cfg.get("ckpt_path") or not cfg.get("output"):
        raise ConfigError("give ckpt_path=<dnalm checkpoint> and output=<folder>.")
    if cfg.get("push_to_hub") and not cfg.get("repo_id"):
        raise ConfigError("push_to_hub=true needs repo_id=<user or org>/<name>.")
    ckpt_path = Path(str(cfg.ckpt_path))
    module, backbone, task = load_module(cfg)
    run_config = read_checkpoint(ckpt_path, mmap=True)["dnalm_config"]
    output = Path(str(cfg.output))
    layout = export_folder(module, backbone.tokenizer, task, output, bool(cfg.get("merge", True)), run_config,
                           cfg.get("published_layout", "auto"))
    (output / "README.md").write_text(model_card(layout, run_config, task, _run_metrics(ckpt_path), cfg.get("repo_id")))
    summary: dict[str, Any] = {"output": str(output), "layout": layout, "labels": list(task.label_names)}
    if cfg.get("push_to_hub"):
        summary["url"] = push_folder(output, str(cfg.repo_id), bool(cfg.get("private", False)))
    print(json.dumps(summary))
    return summary


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="export")
def main(cfg: DictConfig) -> None:
    """Command-line entry point."""
    run_task(export, cfg)


if __name__ == "__main__":
    main()
