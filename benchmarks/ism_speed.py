"""In-silico mutagenesis throughput: dnalm's batched ISM against one forward per mutant (HF pipeline).

    python benchmarks/ism_speed.py                      # tf0 classifier, 2 GUE human_tf_0 positives (606 mutants)
    python benchmarks/ism_speed.py --sequences 4 --batch-size 128

Both sides score every single-base substitution of the same sequences with the same model on the same machine,
one run each, in this process:

* **dnalm**: ``dnalm.apps.explain.ism.ism`` through the explain config (``head=native model.name_or_path=...``):
  mutants built as DNA, re-tokenized, packed into length-sorted batches of ``--batch-size``.
* **naive**: ``transformers.pipeline("text-classification")`` called once per mutant string (the loop of the
  notebooks), probability of class 1.

Asserts that both give the same probability changes (atol 1e-4), then prints mutants/s of each and the ratio.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHARED = ROOT.parent / "shared"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(SHARED / "models" / "mistral_dna_1m_hg38_tf0"))
    parser.add_argument("--data", default=str(SHARED / "data" / "gue" / "human_tf_0" / "test.csv.gz"))
    parser.add_argument("--sequences", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    from hydra import compose, initialize_config_dir
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline

    from dnalm.apps.explain.ism import ism, mutants
    from dnalm.apps.explain.scoring import Scorer
    from dnalm.configs import CONFIG_DIR
    from dnalm.inference import Runner

    with gzip.open(args.data, "rt") as fh:
        frame = pd.read_csv(fh)
    sequences = frame[frame.label == 1].sequence.head(args.sequences).tolist()

    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(config_name="explain", overrides=["head=native", f"model.name_or_path={args.model}",
                                                        f"batch_size={args.batch_size}", "device=cpu",
                                                        "output_dir=.", "paths.output_dir=."])
    runner, task = Runner.from_cfg(cfg)
    scorer = Scorer(runner, task, 1, "prob")
    windows = [(0, len(s)) for s in sequences]
    scorer(sequences[:1])  # warm-up, as the pipeline's first call below
    start = time.perf_counter()
    results = list(ism(scorer, sequences, windows))
    batched_seconds = time.perf_counter() - start

    classify = pipeline("text-classification", model=AutoModelForSequenceClassification.from_pretrained(args.model),
                        tokenizer=AutoTokenizer.from_pretrained(args.model), device=-1, top_k=None)

    def prob(seq: str) -> float:
        scores = classify(seq)
        scores = scores[0] if scores and isinstance(scores[0], list) else scores  # one input: one list or nested
        return next(s["score"] for s in scores if s["label"].endswith("1"))

    prob(sequences[0])
    count, worst = 0, 0.0
    start = time.perf_counter()
    naive_deltas = []
    for seq, (a, b) in zip(sequences, windows):
        reference = prob(seq)
        strings, positions, columns = mutants(seq, a, b)
        naive_deltas.append((positions, columns, np.array([prob(s) for s in strings]) - reference))
        count += len(strings)
    naive_seconds = time.perf_counter() - start
    for result, (positions, columns, delta) in zip(results, naive_deltas):
        worst = max(worst, float(np.abs(result.delta[positions, columns] - delta).max()))
    assert worst < 1e-4, f"batched and naive ISM disagree by {worst}"
    report = {"model": Path(args.model).name, "sequences": len(sequences), "length": len(sequences[0]),
              "mutants": count, "batch_size": args.batch_size, "threads": torch.get_num_threads(),
              "batched_mutants_per_s": round(count / batched_seconds, 1),
              "naive_mutants_per_s": round(count / naive_seconds, 1),
              "speedup": round(naive_seconds / batched_seconds, 2), "max_abs_diff": worst}
    print(json.dumps(report))


if __name__ == "__main__":
    main()
