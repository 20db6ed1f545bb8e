"""Learning curves of the DQN, SAC and TD3 presets: the README's off-policy results figure.

    python benchmarks/offpolicy_learning.py [--seeds 4] [--out docs/offpolicy_curves.png]

Trains each preset (DQN and discrete SAC on CartPole, SAC and TD3 on Pendulum) for its
tested budget with ``--seeds`` seeds in one vmapped call, prints the wall time and the greedy
return of every seed's final policy (16 episodes each), and plots the return of the episodes
finished during training (mean and std over seeds, in bins of env steps).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import jax
import matplotlib
import numpy as np

matplotlib.use("Agg")
from matplotlib.figure import Figure  # noqa: E402

import jaxrl_suite  # noqa: E402
from jaxrl_suite.algos import dqn, sac, td3  # noqa: E402
from jaxrl_suite.run.evaluation import evaluate  # noqa: E402

RUNS = [
    ("DQN", dqn, "gymnax/CartPole-v1"),
    ("SAC (discrete)", sac, "gymnax/CartPole-v1"),
    ("SAC", sac, "gymnax/Pendulum-v1"),
    ("TD3", td3, "gymnax/Pendulum-v1"),
]


def binned_returns(metrics: dict, bins: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean over seeds of the per-seed mean return of episodes finished in each env-step bin."""
    steps = np.asarray(metrics["env_steps"][0])
    returns = np.asarray(metrics["episode_return"])  # (seeds, updates), NaN without an episode
    edges = np.linspace(steps[0], steps[-1], bins + 1)
    index = np.clip(np.searchsorted(edges, steps, side="right") - 1, 0, bins - 1)
    per_seed = np.full((returns.shape[0], bins), np.nan)
    for b in range(bins):
        chunk = returns[:, index == b]
        has = np.isfinite(chunk).any(axis=1)
        per_seed[has, b] = np.nanmean(chunk[has], axis=1)
    centres = (edges[:-1] + edges[1:]) / 2
    return centres, np.nanmean(per_seed, axis=0), np.nanstd(per_seed, axis=0)


def greedy_returns(train, env, params, states, keys) -> np.ndarray:
    """Mean return of 16 greedy episodes of each seed's final policy, ``(seeds,)``."""

    def one_seed(state, key):
        return evaluate(train.make_policy(state), env, params, key, 16)["episode_return"].mean()

    return np.asarray(jax.jit(jax.vmap(one_seed))(states, keys))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="docs/offpolicy_curves.png")
    args = parser.parse_args()
    figure = Figure(figsize=(4 * len(RUNS), 3.2))
    axes = figure.subplots(1, len(RUNS))
    for axis, (label, module, env_id) in zip(axes, RUNS):
        env, params = jaxrl_suite.make(env_id)
        raw_env, _ = jaxrl_suite.make(env_id, wrappers=False)
        train = module.make_train(module.preset_config(env_id), env, params)
        keys = jax.random.split(jax.random.key(args.seed), args.seeds)
        start = time.perf_counter()
        result = jax.block_until_ready(jax.jit(jax.vmap(train))(keys))
        seconds = time.perf_counter() - start
        greedy = greedy_returns(train, raw_env, params, result.state, keys)
        total = int(result.metrics["env_steps"][0, -1])
        print(f"{label:15s} {env_id:20s} {total:>7,} env steps, {args.seeds} seeds: "
              f"{seconds:5.1f} s incl. compile; greedy return {greedy.mean():7.1f} "
              f"(per seed {', '.join(f'{g:.1f}' for g in greedy)})")
        centres, mean, std = binned_returns(result.metrics, 25)
        axis.plot(centres, mean, color="tab:blue")
        axis.fill_between(centres, mean - std, mean + std, alpha=0.25, color="tab:blue")
        axis.set_title(f"{label}, {env_id.split('/')[1]}")
        axis.set_xlabel("env steps")
        axis.grid(alpha=0.3)
    axes[0].set_ylabel(f"training episode return ({args.seeds} seeds)")
    figure.tight_layout()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
