"""``dnalm <task> [overrides]``: one command for every dnalm task (``python -m dnalm.<task>`` works the same)."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

from dnalm.configs import exit_on_renamed_config

# task -> (module whose ``main`` runs it, one line for ``dnalm --help``)
TASKS: dict[str, tuple[str, str]] = {
    "train": ("dnalm.train", "fine-tune a backbone on a task, validate and test"),
    "pretrain": ("dnalm.pretrain", "pre-train or continue pre-training a DNA language model on genomes"),
    "evaluate": ("dnalm.evaluate", "score a checkpoint on a dataset's splits"),
    "predict": ("dnalm.predict", "write a checkpoint's predictions for new sequences"),
    "embed": ("dnalm.apps.embed", "embeddings of sequences from a pretrained model or checkpoint"),
    "scan": ("dnalm.apps.scan", "slide a classifier along genomes and report the regions it calls"),
    "variants": ("dnalm.apps.variants", "score VCF variants by the change they make to a model's output"),
    "generate": ("dnalm.apps.generate", "sample sequences from a causal DNA language model"),
    "design": ("dnalm.apps.design", "evolve sequences towards a classifier's target"),
    "explain": ("dnalm.apps.explain.app", "in-silico mutagenesis, attributions and motifs of a classifier"),
    "build": ("dnalm.apps.build", "build a train/valid/test table from FASTA files"),
    "export": ("dnalm.apps.export", "write a fine-tuned model as a Hugging Face folder with a model card"),
    "report": ("dnalm.apps.report", "tables and plots over finished runs and studies"),
    "zoo": ("dnalm.zoo", "the model configs dnalm ships, as a table"),
}


def usage() -> str:
    """The ``dnalm --help`` text: the tasks with one line each."""
    width = max(map(len, TASKS))
    lines = ["usage: dnalm <task> [overrides ...]   (dnalm <task> --help for a task's options)", "", "tasks:"]
    lines += [f"  {name:<{width}}  {summary}" for name, (_, summary) in TASKS.items()]
    lines += ["", "Each task is also `python -m dnalm.<task>`; overrides are Hydra's (docs/configuration.md)."]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the task named first in ``argv`` with the remaining arguments as its own command line."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(usage(), file=sys.stdout if args else sys.stderr)
        return 0 if args else 2
    name, rest = args[0], args[1:]
    if name not in TASKS:
        print(f"dnalm: error: unknown task '{name}'; choose one of: {', '.join(TASKS)} (dnalm --help).",
              file=sys.stderr)
        return 2
    exit_on_renamed_config(rest)
    module = importlib.import_module(TASKS[name][0])
    # Hydra and argparse read the command line from sys.argv.
    sys.argv = [f"dnalm {name}", *rest]
    result = module.main()
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())
