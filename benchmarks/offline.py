"""Offline RL: training speed of every algorithm, and final normalised scores on the Pendulum
dataset family.

    python benchmarks/offline.py                      # both parts
    python benchmarks/offline.py --part speed         # updates/s only
    python benchmarks/offline.py --part scores --jobs 2

**Speed.** Gradient steps per second of BC, IQL, TD3+BC, CQL and ReBRAC at batch 256 with
3 x 256 hidden layers (every network), for 1 and 8 seeds under ``vmap``, measured on the
compiled run (compilation reported apart), with the in-run evaluation (10 episodes after the
timed 2,000 steps) included. For scale: the published JAX single-file implementations (e.g.
JAX-CORL) report 1M IQL or TD3+BC updates in about 9 minutes on a 2017 desktop GPU, about 1,850
updates/s; no such GPU is on this machine, so that figure is quoted, not rerun.

**Scores.** Each algorithm's Pendulum preset (its published hyperparameters, a shorter run) on
each dataset of the family (``jaxrl collect --algo sac --env gymnax/Pendulum-v1 --kind all``);
the score is the normalised score averaged over the last three evaluations, mean and std over
seeds, beside the dataset's behaviour score. Writes ``docs/offline_results.md`` and
``docs/offline_results.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ALGORITHMS = ("bc", "iql", "td3_bc", "cql", "rebrac")
KINDS = ("random", "medium", "medium-replay", "medium-expert", "expert")
ENV_ID = "gymnax/Pendulum-v1"
ROOT = Path(__file__).resolve().parents[1]


def ensure_datasets(folder: Path, num_transitions: int, seed: int) -> Path:
    """The Pendulum family in ``folder``, collected first if any kind is missing."""
    if all((folder / f"pendulum-{kind}-v0").exists() for kind in KINDS):
        return folder
    from jaxrl_suite.data.collect import collect_datasets

    start = time.perf_counter()
    collect_datasets("sac", ENV_ID, KINDS, num_transitions=num_transitions, seed=seed,
                     out_dir=folder)
    print(f"collected the Pendulum family ({num_transitions:,} transitions each) in "
          f"{time.perf_counter() - start:.0f} s -> {folder}", flush=True)
    return folder


def measure_speed(algorithm: str, seeds: int, dataset_path: Path, steps: int) -> dict:
    """Compile time and gradient steps/s of ``algorithm``: one logged update of ``steps``
    gradient steps and its evaluation, timed on its second call (same compiled program)."""
    import jax

    from jaxrl_suite import make
    from jaxrl_suite.run.algorithms import load_algorithm
    from jaxrl_suite.run.harness import make_chunk_runner

    module = load_algorithm(algorithm)
    config = module.preset_config(ENV_ID, dataset=str(dataset_path), batch_size=256,
                                  hidden_sizes=(256, 256, 256), eval_interval=steps,
                                  evaluation_episodes=10, total_updates=2 * steps)
    env, env_params = make(ENV_ID)
    train = module.make_train(config, env, env_params)
    states = train.initial_states(jax.random.split(jax.random.key(0), seeds))
    run_chunk = make_chunk_runner(train, progress_every=1)
    start = time.perf_counter()
    states, _ = jax.block_until_ready(run_chunk(states, 0, 1))
    first_call = time.perf_counter() - start
    start = time.perf_counter()
    states, _ = jax.block_until_ready(run_chunk(states, 1, 1))
    seconds = time.perf_counter() - start
    return {"algorithm": algorithm, "seeds": seeds, "batch_size": 256,
            "hidden_sizes": [256, 256, 256], "gradient_steps": steps, "seconds": seconds,
            "updates_per_second": steps / seconds,
            "seed_updates_per_second": seeds * steps / seconds,
            # The first call compiles and runs one update: compile = first call - one update.
            "compile_seconds": max(first_call - seconds, 0.0)}


def run_scores(algorithm: str, kind: str, seeds: int, folder: Path,
               total_updates: int | None, hidden_sizes: list[int] | None = None,
               settings: list[str] | None = None) -> dict:
    """Train ``algorithm``'s Pendulum preset on one dataset; the final score is the mean of
    the last three evaluations (each ``evaluation_episodes`` episodes), per seed."""
    import jax
    import numpy as np

    from jaxrl_suite import make
    from jaxrl_suite.data.datasets import behaviour_score, load_dataset
    from jaxrl_suite.run.algorithms import load_algorithm

    module = load_algorithm(algorithm)
    dataset_path = folder / f"pendulum-{kind}-v0"
    overrides = {"dataset": str(dataset_path)}
    if total_updates is not None:
        overrides["total_updates"] = total_updates
    if hidden_sizes:
        overrides["hidden_sizes"] = tuple(hidden_sizes)
    for setting in settings or ():
        name, _, value = setting.partition("=")
        if hasattr(module.Config, name):  # settings of other algorithms are skipped
            overrides[name] = json.loads(value)
    config = module.preset_config(ENV_ID, **overrides)
    env, env_params = make(ENV_ID)
    train = module.make_train(config, env, env_params)
    start = time.perf_counter()
    result = jax.block_until_ready(jax.jit(jax.vmap(train))(
        jax.random.split(jax.random.key(0), seeds)))
    seconds = time.perf_counter() - start
    scores = np.asarray(result.metrics["normalized_score"])  # (seeds, updates)
    dataset = load_dataset(dataset_path)
    behaviour = behaviour_score(dataset)
    return {"algorithm": algorithm, "kind": kind, "seeds": seeds,
            "gradient_steps": config.total_updates,
            "final_score_mean": float(scores[:, -3:].mean()),
            "final_score_std": float(scores[:, -3:].mean(axis=1).std()),
            "best_score_mean": float(scores.max(axis=1).mean()),
            "behaviour_score": behaviour, "seconds": seconds,
            "curve": scores.mean(axis=0).tolist(),
            "config": json.loads(json.dumps(dataclasses.asdict(config), default=list))}


def _child(args: argparse.Namespace) -> int:
    """One measurement in this process; prints one JSON line."""
    folder = Path(args.datasets)
    if args.child == "speed":
        out = measure_speed(args.algorithm, args.seeds_one, folder / "pendulum-medium-v0",
                            args.speed_steps)
    else:
        out = run_scores(args.algorithm, args.kind, args.seeds, folder, args.total_updates,
                         args.hidden_sizes, args.set)
    print("RESULT " + json.dumps(out), flush=True)
    return 0


def _spawn(args: argparse.Namespace, extra: list[str]) -> subprocess.Popen:
    command = [sys.executable, __file__, "--datasets", args.datasets, "--seeds",
               str(args.seeds), "--speed-steps", str(args.speed_steps), *extra]
    if args.total_updates is not None:
        command += ["--total-updates", str(args.total_updates)]
    if args.hidden_sizes:
        command += ["--hidden-sizes", *map(str, args.hidden_sizes)]
    for setting in args.set or ():
        command += ["--set", setting]
    return subprocess.Popen(command, stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})


def _collect_results(jobs: list[list[str]], args: argparse.Namespace, parallel: int) -> list:
    """Run each job in its own process (a fresh compile cache, as a user's run has), at most
    ``parallel`` at once."""
    results, running, queue = [], [], list(jobs)
    while queue or running:
        while queue and len(running) < parallel:
            running.append(_spawn(args, queue.pop(0)))
        process = running.pop(0)
        output, _ = process.communicate()
        lines = [line for line in output.splitlines() if line.startswith("RESULT ")]
        if process.returncode != 0 or not lines:
            print(output)
            raise SystemExit(f"a benchmark process failed: {process.args}")
        result = json.loads(lines[-1][len("RESULT "):])
        results.append(result)
        print("  " + _one_line(result), flush=True)
    return results


def _one_line(result: dict) -> str:
    if "updates_per_second" in result:
        return (f"{result['algorithm']:7s} {result['seeds']} seed(s): "
                f"{result['updates_per_second']:,.0f} updates/s "
                f"({result['seed_updates_per_second']:,.0f} seed-updates/s), compile "
                f"{result['compile_seconds']:.1f} s")
    return (f"{result['algorithm']:7s} {result['kind']:14s} score {result['final_score_mean']:6.1f}"
            f" ± {result['final_score_std']:4.1f} (behaviour {result['behaviour_score']:.1f}), "
            f"{result['gradient_steps']:,} steps, {result['seconds']:.0f} s")


def write_report(speed: list, scores: list, path: Path, args: argparse.Namespace) -> None:
    import jax

    lines = ["# Offline RL on the Pendulum dataset family", "",
             f"Machine: {os.cpu_count()} CPU cores, JAX {jax.__version__} on "
             f"{jax.devices()[0].platform}. Command: `python benchmarks/offline.py "
             f"{' '.join(sys.argv[1:])}`.", ""]
    if speed:
        lines += ["## Training speed (batch 256, 3 x 256 hidden layers, evaluation included)",
                  "", "| algorithm | seeds | updates/s | seed-updates/s | compile (s) |",
                  "|---|---:|---:|---:|---:|"]
        for r in speed:
            lines.append(f"| {r['algorithm']} | {r['seeds']} | {r['updates_per_second']:,.0f} | "
                         f"{r['seed_updates_per_second']:,.0f} | {r['compile_seconds']:.1f} |")
        lines += ["", "Published JAX single-file implementations: 1M IQL or TD3+BC updates in "
                  "about 9 minutes on a 2017 desktop GPU (about 1,850 updates/s); quoted, not "
                  "rerun here.", ""]
    if scores:
        seeds = scores[0]["seeds"]
        lines += ["## Final normalised score (mean of the last three evaluations; mean ± std "
                  f"over {seeds} seeds)", "",
                  "| algorithm | " + " | ".join(KINDS) + " |",
                  "|---|" + "---:|" * len(KINDS)]
        by = {(r["algorithm"], r["kind"]): r for r in scores}
        behaviour = {r["kind"]: r["behaviour_score"] for r in scores}
        lines.append("| behaviour (dataset) | " + " | ".join(
            f"{behaviour[k]:.1f}" if k in behaviour else "" for k in KINDS) + " |")
        for algorithm in ALGORITHMS:
            cells = []
            for kind in KINDS:
                r = by.get((algorithm, kind))
                cells.append(f"{r['final_score_mean']:.1f} ± {r['final_score_std']:.1f}"
                             if r else "")
            if any(cells):
                lines.append(f"| {algorithm} | " + " | ".join(cells) + " |")
        runs = sorted({(r["algorithm"], r["gradient_steps"],
                        "x".join(map(str, r["config"]["hidden_sizes"])),
                        r["config"]["batch_size"]) for r in scores})
        lines += ["", "Runs: " + "; ".join(f"{a} {s:,} gradient steps, hidden {h}, batch {b}"
                                          for a, s, h, b in runs) + ".", ""]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    path.with_suffix(".json").write_text(json.dumps({"speed": speed, "scores": scores},
                                                    indent=2))
    print(f"wrote {path} and {path.with_suffix('.json')}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--part", choices=("speed", "scores", "both"), default="both")
    parser.add_argument("--algorithms", nargs="+", default=list(ALGORITHMS))
    parser.add_argument("--kinds", nargs="+", default=list(KINDS))
    parser.add_argument("--seeds", type=int, default=3, help="seeds per score run")
    parser.add_argument("--speed-seeds", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--speed-steps", type=int, default=2_000,
                        help="gradient steps timed per speed measurement (one logged update)")
    parser.add_argument("--total-updates", type=int, default=None,
                        help="gradient steps per score run (default: each preset's)")
    parser.add_argument("--hidden-sizes", type=int, nargs="+", default=None,
                        help="network widths of score runs (default: each preset's)")
    parser.add_argument("--set", action="append", default=None, metavar="NAME=JSON",
                        help="a Config value for score runs, e.g. --set bc_steps=1000 (only "
                             "algorithms with that field take it)")
    parser.add_argument("--transitions", type=int, default=100_000,
                        help="transitions per collected dataset")
    parser.add_argument("--datasets", default=str(ROOT / "build" / "offline_datasets"))
    parser.add_argument("--jobs", type=int, default=1, help="processes at once")
    parser.add_argument("--out", default=str(ROOT / "docs" / "offline_results.md"))
    # internal: one measurement per process
    parser.add_argument("--child", choices=("speed", "scores"), help=argparse.SUPPRESS)
    parser.add_argument("--algorithm", help=argparse.SUPPRESS)
    parser.add_argument("--kind", help=argparse.SUPPRESS)
    parser.add_argument("--seeds-one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return _child(args)
    ensure_datasets(Path(args.datasets), args.transitions, 0)
    speed, scores = [], []
    if args.part in ("speed", "both"):
        print("speed: gradient steps/s at batch 256, 3 x 256 networks (one process at a time)")
        jobs = [["--child", "speed", "--algorithm", a, "--seeds-one", str(s)]
                for a in args.algorithms for s in args.speed_seeds]
        speed = _collect_results(jobs, args, 1)  # timings: never two processes at once
    if args.part in ("scores", "both"):
        print(f"scores: {len(args.algorithms)} algorithms x {len(args.kinds)} datasets, "
              f"{args.seeds} seeds, {args.jobs} process(es) at once")
        jobs = [["--child", "scores", "--algorithm", a, "--kind", k]
                for a in args.algorithms for k in args.kinds]
        scores = _collect_results(jobs, args, args.jobs)
    write_report(speed, scores, Path(args.out), args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
