"""``python -m dnalm.zoo``: the model configs dnalm ships, as a table (Markdown with ``--markdown``)."""

from __future__ import annotations

import argparse
from typing import Any

from omegaconf import OmegaConf

from dnalm.configs import config_dir

COLUMNS = ("name", "hub id", "family", "loader", "params", "layers", "hidden", "context (tokens / bp)",
           "tokenizer", "LoRA targets", "batch", "lr")


def zoo_entries() -> list[dict[str, Any]]:
    """One row per model config that carries ``zoo`` metadata, sorted by family then name."""
    folder = config_dir() / "model"
    rows = []
    for item in folder.iterdir():
        if not item.name.endswith(".yaml"):
            continue
        cfg = OmegaConf.create(item.read_text())
        meta = cfg.get("zoo")
        if meta is None:
            continue
        rows.append({
            "name": cfg.name, "hub id": cfg.name_or_path, "family": meta.family, "loader": meta.loader,
            "params": meta.params, "layers": meta.layers, "hidden": meta.hidden_size,
            "context (tokens / bp)": f"{meta.context_tokens:,} / {meta.context_bp:,}", "tokenizer": meta.tokenizer,
            "LoRA targets": ",".join(cfg.lora_target_modules or []), "batch": meta.batch_size, "lr": cfg.lr,
        })
    return sorted(rows, key=lambda r: (r["family"], r["name"]))


def render(rows: list[dict[str, Any]], markdown: bool) -> str:
    """A plain aligned table or a Markdown table."""
    cells = [[str(r[c]) for c in COLUMNS] for r in rows]
    if markdown:
        lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
        lines += ["| " + " | ".join(row) + " |" for row in cells]
        return "\n".join(lines)
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(COLUMNS)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(COLUMNS, widths))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)) for row in cells]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Print the zoo."""
    parser = argparse.ArgumentParser(prog="python -m dnalm.zoo", description=__doc__)
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    args = parser.parse_args(argv)
    print(render(zoo_entries(), args.markdown))


if __name__ == "__main__":
    main()
