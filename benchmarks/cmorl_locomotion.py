"""C-MORL on MO-Brax locomotion (MO-Hopper-2d, MO-HalfCheetah) at a CPU-sized budget.

Each env is one run through the harness (a run folder under ``--out`` with ``front.json``,
``front.csv``, ``front.png`` and metrics.csv); prints the archive front's hypervolume at the
env's reference point, expected utility over 100 equally spaced weights, sparsity and
cardinality, with the budget and wall time, and writes ``cmorl_locomotion.json`` and a copy of
each ``front.png`` into ``--out``. C-MORL's published runs (MO-Gymnasium's MuJoCo v4 envs,
500-step episodes) take 1.5M env steps per env: the default here is the same total (6 policies
x 250k), on Brax's physics instead of MuJoCo's, so the numbers are comparable in budget but not
in simulator.

    python benchmarks/cmorl_locomotion.py [--envs mo/brax-hopper-2obj mo/brax-halfcheetah]
        [--init-steps 150000] [--extension-steps 50000] [--rounds 2] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path


def run(env_id: str, args: argparse.Namespace) -> dict:
    from jaxrl_suite.algos.morl import cmorl
    from jaxrl_suite.run.harness import RunOptions, run_training

    config = cmorl.preset_config(
        "locomotion", num_preferences=args.preferences, init_steps=args.init_steps,
        extension_rounds=args.rounds, extension_steps=args.extension_steps,
        num_envs=args.num_envs, num_steps=args.num_steps, front_episodes=args.eval_episodes)
    run_dir = args.out / env_id.replace("/", "_")
    options = RunOptions(env=env_id, run_dir=str(run_dir), eval_episodes=0, console=True,
                         seed=args.seed, tensorboard=False)
    start = time.perf_counter()
    # C-MORL's episodes are 500 steps (Brax's default is 1000): the run is built on the env's
    # params with that limit (training and the stage evaluations both use them).
    result, run_dir = run_training(
        cmorl, config, options,
        train=lambda env, params: cmorl.make_train(
            config, env, params.replace(max_steps_in_episode=args.episode_length)))
    wall = time.perf_counter() - start
    front = json.loads((run_dir / "front.json").read_text())
    metrics = front["metadata"]["metrics"]
    total_steps = int(result.metrics["env_steps"][-1, 0])
    shutil.copy(run_dir / "front.png", args.out / f"{env_id.replace('/', '_')}_front.png")
    return {"env": env_id, "env_steps": total_steps, "wall_time_s": round(wall, 1),
            "reference_point": front["metadata"]["reference_point"], "metrics": metrics,
            "front": front["points"], "config": {k: getattr(config, k) for k in (
                "num_preferences", "init_steps", "extension_rounds", "extension_steps",
                "num_envs", "num_steps", "beta", "barrier_t")},
            "episode_length": args.episode_length}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envs", nargs="+",
                        default=["mo/brax-hopper-2obj", "mo/brax-halfcheetah"])
    parser.add_argument("--preferences", type=int, default=6)
    parser.add_argument("--init-steps", type=int, default=150_000)
    parser.add_argument("--extension-steps", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--num-envs", type=int, default=64)
    parser.add_argument("--num-steps", type=int, default=64)
    parser.add_argument("--eval-episodes", type=int, default=2)
    parser.add_argument("--episode-length", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("runs/cmorl_locomotion"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    results = []
    for env_id in args.envs:
        out = run(env_id, args)
        results.append(out)
        m = out["metrics"]
        print(f"{env_id}: {out['env_steps']:,} env steps in {out['wall_time_s']:.0f} s; "
              f"hypervolume {m['hypervolume']:.4g} at {out['reference_point']}, expected "
              f"utility {m['expected_utility']:.4g}, sparsity {m['sparsity']:.4g}, "
              f"{m['cardinality']} policies on the front", flush=True)
    (args.out / "cmorl_locomotion.json").write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
