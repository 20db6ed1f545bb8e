"""Env throughput: random-action rollouts under jit(vmap(scan)), ours against gymnax's own env.

For each number of parallel envs it times, in the same process:

* ``gymnax``      gymnax's ``CartPole-v1`` ``env.step`` (auto-resets, as gymnax does);
* ``ours``        ``jaxrl_suite.make("gymnax/CartPole-v1")``: adapter + AutoReset + EpisodeStats;
* ``ours-cached`` adapter + CachedAutoReset + EpisodeStats (reset computed once per env);
* ``ours-raw``    the adapter without wrappers (no auto-reset at all: the floor).

Each measurement is the best of ``--repeats`` runs after one compile run (compile time is
printed separately). The target (issue "Foundation"): ``ours`` within 10% of ``gymnax`` at
1024 envs, i.e. ratio ours/gymnax steps/s >= 0.90.

    python benchmarks/env_throughput.py [--num-envs 1 64 1024 8192] [--repeats 5]
"""

from __future__ import annotations

import argparse
import time

import gymnax
import jax

import jaxrl_suite
from jaxrl_suite.env.rollouts import random_rollout
from jaxrl_suite.env.wrappers import CachedAutoReset, EpisodeStats

ENV_ID = "CartPole-v1"
STEPS_PER_BENCH = {1: 20_000, 64: 4_000, 1024: 1_000, 8192: 250}


def measure(env, params, num_envs: int, repeats: int) -> tuple[float, float]:
    """(compile-and-first-run seconds, best steps per second)."""
    num_steps = STEPS_PER_BENCH.get(num_envs, max(1, 1_000_000 // num_envs))
    rollout = random_rollout(env, params, num_envs, num_steps)
    start = time.perf_counter()
    rollout(jax.random.key(0)).block_until_ready()
    compile_seconds = time.perf_counter() - start
    best = float("inf")
    for repeat in range(repeats):
        start = time.perf_counter()
        rollout(jax.random.key(repeat + 1)).block_until_ready()
        best = min(best, time.perf_counter() - start)
    return compile_seconds, num_envs * num_steps / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--num-envs", type=int, nargs="+", default=[1, 64, 1024, 8192])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    gymnax_env, gymnax_params = gymnax.make(ENV_ID)
    ours, params = jaxrl_suite.make("gymnax/" + ENV_ID)
    raw, _ = jaxrl_suite.make("gymnax/" + ENV_ID, wrappers=False)
    variants = {
        "gymnax": (gymnax_env, gymnax_params),
        "ours": (ours, params),
        "ours-cached": (EpisodeStats(CachedAutoReset(raw)), params),
        "ours-raw": (raw, params),
    }
    print(f"jax {jax.__version__} on {jax.devices()[0].platform}, "
          f"{jax.device_count()} device(s); {ENV_ID}; best of {args.repeats}")
    header = f"{'envs':>6} " + " ".join(f"{name + ' steps/s':>20}" for name in variants)
    print(header + f" {'ours/gymnax':>12} {'cached/gymnax':>14} {'raw/gymnax':>11}")
    for num_envs in args.num_envs:
        results = {name: measure(env, p, num_envs, args.repeats) for name, (env, p) in
                   variants.items()}
        rates = {name: r[1] for name, r in results.items()}
        row = f"{num_envs:>6} " + " ".join(f"{rates[name]:>20,.0f}" for name in variants)
        ratios = [rates[name] / rates["gymnax"] for name in ("ours", "ours-cached", "ours-raw")]
        print(row + f" {ratios[0]:>12.3f} {ratios[1]:>14.3f} {ratios[2]:>11.3f}", flush=True)
        compiles = ", ".join(f"{name} {r[0]:.2f}s" for name, r in results.items())
        print(f"{'':>6} compile+first run: {compiles}", flush=True)


if __name__ == "__main__":
    main()
