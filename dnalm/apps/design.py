"""``python -m dnalm.design ckpt_path=<classifier.ckpt> start=<DNA|fasta> [goal=max|min] ...``.

A genetic algorithm over same-length sequences: tournament selection, uniform crossover, point mutations,
elitism. Constraints: GC content in [``gc_min``, ``gc_max``], none of ``forbidden`` motifs (on either strand),
at most ``max_edits`` substitutions from the start sequence (children over the limit are repaired by reverting
random edits). The fitness is the fine-tuned classifier's probability of ``target_class`` (maximised or
minimised). Every distinct sequence is scored once; ``budget`` caps scorer calls. ``baseline=true`` also runs
random mutation of the start sequence with the same budget and constraints, for comparison.
Writes ``<prefix>.tsv`` (best sequences, score, edits, GC), ``<prefix>.png`` (trajectory), ``<prefix>.json``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import hydra
import numpy as np
import pandas as pd
from omegaconf import DictConfig

from dnalm.apps.inputs import gc_content, read_sequences
from dnalm.configs import CONFIG_DIR
from dnalm.data.normalise import SequencePolicy, normalise
from dnalm.errors import ConfigError
from dnalm.inference import Runner, class_index
from dnalm.tokenizers.strand import reverse_complement_batch
from dnalm.utils.cli import run_task
from dnalm.utils.progress import Progress

log = logging.getLogger("dnalm.design")
BASES = np.array(list("ACGT"))


@dataclass
class Constraints:
    """What a designed sequence must satisfy."""

    start: str
    gc_min: float = 0.0
    gc_max: float = 1.0
    forbidden: tuple[str, ...] = ()
    max_edits: int | None = None

    def __post_init__(self) -> None:
        motifs = [m.upper() for m in self.forbidden]
        self.forbidden = tuple(sorted(set(motifs + reverse_complement_batch(motifs))))

    def edits(self, seq: str) -> int:
        """Substitutions from the start sequence."""
        return sum(a != b for a, b in zip(seq, self.start))

    def ok(self, seq: str) -> bool:
        """GC range and forbidden motifs (edits are repaired, not rejected)."""
        gc = gc_content(seq)
        return self.gc_min <= gc <= self.gc_max and not any(m in seq for m in self.forbidden)


@dataclass
class Scorer:
    """Memoised fitness: each distinct sequence costs one call; ``sign`` is +1 to maximise, -1 to minimise."""

    score_many: Callable[[list[str]], np.ndarray]
    budget: int
    sign: float = 1.0
    cache: dict[str, float] = field(default_factory=dict)

    @property
    def calls(self) -> int:
        """Distinct sequences scored."""
        return len(self.cache)

    def __call__(self, seqs: Sequence[str]) -> np.ndarray | None:
        """Fitness of ``seqs`` (higher is better), or None when scoring the new ones would exceed the budget."""
        new = [s for s in dict.fromkeys(seqs) if s not in self.cache]
        if self.calls + len(new) > self.budget:
            return None
        if new:
            self.cache.update(zip(new, (float(v) for v in self.score_many(new))))
        return np.array([self.sign * self.cache[s] for s in seqs])


def mutate(seq: str, rate: float, rng: np.random.Generator) -> str:
    """Substitute each position with probability ``rate`` (at least one) by another base."""
    arr = np.array(list(seq))
    hits = np.flatnonzero(rng.random(len(arr)) < rate)
    if len(hits) == 0:
        hits = rng.integers(0, len(arr), size=1)
    for i in hits:
        arr[i] = rng.choice(BASES[BASES != arr[i]])
    return "".join(arr)


def repair(seq: str, cons: Constraints, rng: np.random.Generator) -> str:
    """Revert random edits until at most ``max_edits`` remain."""
    if cons.max_edits is None:
        return seq
    diff = [i for i, (a, b) in enumerate(zip(seq, cons.start)) if a != b]
    if len(diff) <= cons.max_edits:
        return seq
    arr = list(seq)
    for i in rng.choice(diff, size=len(diff) - cons.max_edits, replace=False):
        arr[i] = cons.start[i]
    return "".join(arr)


def _feasible_child(make: Callable[[], str], cons: Constraints, rng: np.random.Generator, tries: int = 50) -> str | None:
    for _ in range(tries):
        child = repair(make(), cons, rng)
        if cons.ok(child):
            return child
    return None


def _pick(pop: list[str], fit: np.ndarray, tournament: int, rng: np.random.Generator) -> str:
    """Tournament selection."""
    idx = rng.choice(len(pop), size=min(tournament, len(pop)), replace=False)
    return pop[idx[np.argmax(fit[idx])]]


def _breed(pop: list[str], fit: np.ndarray, rate: float, tournament: int, rng: np.random.Generator) -> str:
    """Uniform crossover of two tournament winners, then point mutations."""
    a, b = _pick(pop, fit, tournament, rng), _pick(pop, fit, tournament, rng)
    mask = rng.random(len(a)) < 0.5
    return mutate("".join(x if m else y for x, y, m in zip(a, b, mask)), rate, rng)


def evolve(scorer: Scorer, cons: Constraints, population: int, rate: float, seed: int, elite: int = 2,
           tournament: int = 3) -> tuple[list[tuple[str, float]], list[dict[str, float]]]:
    """Run generations until the budget is spent; return all scored (sequence, fitness) and the trajectory."""
    rng = np.random.default_rng(seed)
    pop = [cons.start] if cons.ok(cons.start) else []
    while len(pop) < population:
        child = _feasible_child(lambda: mutate(cons.start, rate, rng), cons, rng)
        if child is None:
            raise ConfigError("cannot find sequences near the start that satisfy the constraints (GC range, "
                              "forbidden motifs); relax them.")
        pop.append(child)
    fit = scorer(pop)
    if fit is None:
        raise ConfigError(f"budget={scorer.budget} is smaller than the population ({population}).")
    trajectory: list[dict[str, float]] = []
    while True:
        trajectory.append({"generation": len(trajectory), "calls": scorer.calls, "best": float(fit.max()),
                           "mean": float(fit.mean())})

        order = np.argsort(-fit)
        children = [pop[i] for i in order[:elite]]
        while len(children) < population:
            child = _feasible_child(partial(_breed, pop, fit, rate, tournament, rng), cons, rng)
            children.append(child if child is not None else _pick(pop, fit, tournament, rng))
        new_fit = scorer(children)
        if new_fit is None:
            break
        pop, fit = children, new_fit
    return list(scorer.cache.items()), trajectory


def random_mutation(scorer: Scorer, cons: Constraints, rate: float, seed: int) -> list[tuple[str, float]]:
    """Baseline: independent random mutants of the start sequence (same constraints) until the budget is spent."""
    rng = np.random.default_rng(seed)
    while scorer.calls < scorer.budget:
        child = _feasible_child(lambda: mutate(cons.start, rate, rng), cons, rng)
        if child is None or scorer([child]) is None:
            break
    return list(scorer.cache.items())


def plot_trajectory(path: Path, trajectory: list[dict[str, float]], baseline_best: float | None, label: str) -> None:
    """Best and mean score per generation against scorer calls."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    calls = [t["calls"] for t in trajectory]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(calls, [t["best"] for t in trajectory], marker="o", label="best")
    ax.plot(calls, [t["mean"] for t in trajectory], linestyle="--", label="population mean")
    if baseline_best is not None:
        ax.axhline(baseline_best, color="grey", linestyle=":", label="random mutation (same budget)")
    ax.set_xlabel("scorer calls")
    ax.set_ylabel(label)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _start_sequence(value: str) -> str:
    if Path(value).is_file():
        return str(read_sequences(value)["sequence"].iloc[0])
    seq = normalise(value, "start", SequencePolicy())
    if not seq or set(seq) - set("ACGT"):
        raise ConfigError("start must be an ACGT sequence or a FASTA/table file with one.")
    return seq


def design(cfg: DictConfig) -> dict[str, Any]:
    """Optimise, write the outputs, and return a summary."""
    if not cfg.get("start"):
        raise ConfigError("give start=<ACGT sequence or FASTA file>.")
    if cfg.goal not in ("max", "min"):
        raise ConfigError(f"goal={cfg.goal!r}; choose max or min.")
    runner, task = Runner.from_cfg(cfg)
    if task is None:
        raise ConfigError("design needs a fine-tuned classifier: give ckpt_path=<file.ckpt>.")
    column = class_index(task, cfg.get("target_class"))
    cons = Constraints(_start_sequence(str(cfg.start)), float(cfg.gc_min), float(cfg.gc_max),
                       tuple(cfg.get("forbidden") or ()), cfg.get("max_edits"))
    sign = 1.0 if cfg.goal == "max" else -1.0

    budget, rate, seed = int(cfg.budget), float(cfg.mutation_rate), int(cfg.seed)
    with Progress("designing", total=budget * (2 if cfg.get("baseline") else 1), unit="sequences") as progress:

        def score_many(seqs: list[str]) -> np.ndarray:
            progress.advance(len(seqs))
            return runner.probabilities(seqs, task)[:, column]

        scored, trajectory = evolve(Scorer(score_many, budget, sign), cons, int(cfg.population), rate, seed)
        baseline_best = None
        if cfg.get("baseline"):
            base = random_mutation(Scorer(score_many, budget, sign), cons, rate, seed)
            baseline_best = max(f for _, f in base)
    ranked = sorted(scored, key=lambda x: -x[1])[:int(cfg.top)]
    frame = pd.DataFrame({"sequence": [s for s, _ in ranked],
                          f"prob_{task.label_names[column]}": [sign * f for _, f in ranked],
                          "edits": [cons.edits(s) for s, _ in ranked], "gc": [gc_content(s) for s, _ in ranked]})
    out_dir = Path(str(cfg.output_dir))
    out_dir.mkdir(parents=True, exist_ok=True)
    prefix = out_dir / str(cfg.prefix)
    frame.to_csv(f"{prefix}.tsv", sep="\t", index=False, float_format="%.6g")
    label = f"{'' if sign > 0 else '-'}P({task.label_names[column]})"
    plot_trajectory(Path(f"{prefix}.png"), trajectory, baseline_best, label)
    start_score = float(score_many([cons.start])[0])
    summary = {"start_score": start_score, "best_score": sign * ranked[0][1],
               "baseline_best_score": None if baseline_best is None else sign * baseline_best,
               "scorer_calls": len(scored), "generations": len(trajectory), "goal": cfg.goal,
               "target_class": task.label_names[column], "best_edits": int(frame.edits.iloc[0]),
               "tsv": f"{prefix}.tsv", "png": f"{prefix}.png"}
    Path(f"{prefix}.json").write_text(json.dumps({**summary, "trajectory": trajectory}, indent=2))
    print(json.dumps(summary))
    return summary


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="design")
def main(cfg: DictConfig) -> None:
    """Command-line entry point."""
    run_task(design, cfg)


if __name__ == "__main__":
    main()
