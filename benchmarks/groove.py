"""GROOVE's experiment: LPG meta-trained on random levels against LPG with PLR and algorithmic
regret, both meta-tested on held-out levels and MinAtar beside A2C.

The published result to look for (Jackson et al. 2023): GROOVE (``plr`` + ``alg_regret``)
generalises better than LPG trained on random levels (``random``). Each meta-run goes through
the harness (a run folder under ``--out``); the meta-test is ``jaxrl meta eval``'s
``evaluate_run``. Prints a table of final returns and writes ``groove_results.json`` and
``groove_heldout.png`` (the two objectives and A2C per target) into ``--out``.

    python benchmarks/groove.py [--meta-steps 300] [--population 16] [--seeds 4] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def meta_train(curriculum: str, score: str, args: argparse.Namespace) -> Path:
    from jaxrl_suite.meta import lpg
    from jaxrl_suite.run.harness import RunOptions, run_training

    config = lpg.preset_config(
        "cpu", curriculum=curriculum, score=score, meta_steps=args.meta_steps,
        population_size=args.population, num_envs=args.num_envs, lifetime=args.lifetime,
        eval_steps=args.eval_steps)
    options = RunOptions(env=args.env, run_dir=str(args.out / f"lpg-{curriculum}-{score}"),
                         checkpoint_every=max(1, args.meta_steps // 4), eval_episodes=0,
                         console=True, seed=args.seed)
    start = time.perf_counter()
    _, run_dir = run_training(lpg, config, options)
    print(f"{curriculum}/{score}: {args.meta_steps} meta-steps in "
          f"{time.perf_counter() - start:.0f} s -> {run_dir}", flush=True)
    return run_dir


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="gridworld")
    parser.add_argument("--meta-steps", type=int, default=300)
    parser.add_argument("--population", type=int, default=16)
    parser.add_argument("--num-envs", type=int, default=16)
    parser.add_argument("--lifetime", type=int, default=100)
    parser.add_argument("--eval-steps", type=int, default=200)
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--levels", type=int, default=16)
    parser.add_argument("--minatar-updates", type=int, default=300)
    parser.add_argument("--named-updates", type=int, default=100,
                        help="cap on the named levels' lifetimes (theirs: 2,500 and 25,000)")
    parser.add_argument("--targets", nargs="+", default=["heldout", "named", "minatar"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("runs/groove"))
    args = parser.parse_args()
    from jaxrl_suite.meta.evaluate import evaluate_run

    args.out.mkdir(parents=True, exist_ok=True)
    results = {"args": {k: str(v) for k, v in vars(args).items()}, "runs": {}}
    for label, curriculum, score in (("LPG (random levels)", "random", "alg_regret"),
                                     ("GROOVE (PLR + algorithmic regret)", "plr",
                                      "alg_regret")):
        run_dir = meta_train(curriculum, score, args)
        tested = evaluate_run(run_dir, args.targets, args.seeds, args.levels,
                              args.minatar_updates, args.seed, args.named_updates)
        results["runs"][label] = {"run_dir": str(run_dir), "meta_test": tested["targets"]}
    (args.out / "groove_results.json").write_text(json.dumps(results, indent=2))
    labels = list(results["runs"])
    targets = list(results["runs"][labels[0]]["meta_test"])
    print("\n| target | " + " | ".join(labels) + " | A2C |")
    print("|---|" + "---|" * (len(labels) + 1))
    for target in targets:
        cells = []
        for label in labels:
            entry = results["runs"][label]["meta_test"][target]["lpg"]
            cells.append(f"{entry['mean']:.3f} ± {entry['std_over_seeds']:.3f}")
        a2c = results["runs"][labels[0]]["meta_test"][target]["a2c"]
        print(f"| {target} | " + " | ".join(cells)
              + f" | {a2c['mean']:.3f} ± {a2c['std_over_seeds']:.3f} |")
    plot(results, args.out / "groove_heldout.png")
    return 0


def plot(results: dict, path: Path) -> None:
    from matplotlib.figure import Figure

    labels = list(results["runs"])
    targets = list(results["runs"][labels[0]]["meta_test"])
    figure = Figure(figsize=(max(6, 1.2 * len(targets)), 3.8))
    axis = figure.subplots()
    width = 0.8 / (len(labels) + 1)
    for i, label in enumerate([*labels, "A2C"]):
        means, errors = [], []
        for target in targets:
            source = results["runs"][labels[0] if label == "A2C" else label]["meta_test"][target]
            entry = source["a2c" if label == "A2C" else "lpg"]
            means.append(entry["mean"])
            errors.append(entry["std_over_seeds"])
        axis.bar([t + i * width for t in range(len(targets))], means, width, yerr=errors,
                 label=label, capsize=2)
    axis.set_xticks([t + width * len(labels) / 2 for t in range(len(targets))])
    axis.set_xticklabels(targets, rotation=30, ha="right", fontsize=7)
    axis.set_ylabel("final return of fresh agents")
    axis.legend(fontsize=7)
    axis.grid(alpha=0.3, axis="y")
    figure.tight_layout()
    figure.savefig(path, dpi=100)


if __name__ == "__main__":
    sys.exit(main())
