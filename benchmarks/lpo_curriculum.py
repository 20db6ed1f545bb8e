"""LPO meta-trained over a PLR curriculum: ``ParamLevels`` CartPole (pole length and mass drawn
per level), each member's inner run a PLR run whose student learns with the member's drift.

    python benchmarks/lpo_curriculum.py [--generations 30] [--population 16]
        [--inner-steps 32768] [--curriculum plr] [--test-seeds 16]
        [--json docs/meta/lpo_curriculum.json]

Prints one line per generation (the population's mean and best fitness, the search mean's and
PPO's return on the first pair's keys, seconds), then the meta-test: ``--test-seeds`` fresh
students per objective, trained over the same curriculum on keys the meta-run never used (the
same keys for each objective), each final policy's return on ``fitness_episodes`` fresh levels
of the distribution; PPO's clipped objective (the drift network at its initialisation) beside
the discovered drift (the search mean), at 1x and 4x the inner budget. Every figure printed is
measured in this run.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import jaxrl_suite
from jaxrl_suite.env.levels import ParamLevels
from jaxrl_suite.learn import objectives
from jaxrl_suite.meta import lpo

RANGES = {"length": (0.25, 1.0), "masspole": (0.05, 0.5)}  # CartPole's defaults: 0.5, 0.1


def meta_test(config: lpo.Config, env, params, drifts, keys) -> np.ndarray:
    """``(len(drifts), len(keys))`` final returns of fresh students over the curriculum."""
    train = lpo.make_train(dataclasses.replace(config, generations=1), env, params)
    returns = jax.jit(jax.vmap(jax.vmap(train.member_return, in_axes=(None, None, 0)),
                               in_axes=(0, None, None)))
    return np.asarray(returns(drifts, train.default_hparams.ppo, keys))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generations", type=int, default=30)
    parser.add_argument("--population", type=int, default=16)
    parser.add_argument("--inner-steps", type=int, default=32_768)
    parser.add_argument("--curriculum", default="plr")
    parser.add_argument("--test-seeds", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default="")
    args = parser.parse_args()

    cartpole, params = jaxrl_suite.make("gymnax/CartPole-v1", wrappers=False)
    env = ParamLevels(cartpole, RANGES)
    # The `cpu` preset's inner runs (CartPole, PPO's CartPole preset at 32k steps, 8 envs) over
    # the curriculum.
    config = lpo.preset_config("cpu", curriculum=args.curriculum,
                               population_size=args.population, generations=args.generations,
                               inner_total_steps=args.inner_steps)
    train = lpo.make_train(config, env, params)
    print(f"LPO over {args.curriculum} on ParamLevels CartPole {RANGES}: population "
          f"{config.population_size}, {config.generations} generations, inner runs of "
          f"{train.inner.config.total_steps:,} steps ({train.inner.config.num_envs} envs x "
          f"{train.inner.config.num_steps}), fitness {config.fitness_episodes} episodes on "
          f"fresh levels", flush=True)
    state = train.initial_state(jax.random.key(args.seed))
    update = jax.jit(train.update)
    start = time.perf_counter()
    compiled = update.lower(state).compile()
    print(f"compiled in {time.perf_counter() - start:.1f} s", flush=True)
    history = []
    for generation in range(config.generations):
        start = time.perf_counter()
        state, report = compiled(state)
        report = {name: float(value) for name, value in jax.device_get(report).items()}
        seconds = time.perf_counter() - start
        history.append({**report, "seconds": seconds})
        print(f"generation {generation + 1:3d}: fitness mean {report['fitness_mean']:7.2f} "
              f"max {report['fitness_max']:7.2f} | search mean {report['mean_return']:7.2f} | "
              f"PPO {report['ppo_return']:7.2f} | {seconds:5.1f} s", flush=True)

    template = objectives.init_drift_params(jax.random.key(0), config.time_aware,
                                            config.hidden_size)
    drifts = jax.tree.map(lambda a, b: jnp.stack([a, b]), template, state.mean)
    keys = jax.random.split(jax.random.key(args.seed + 10007), args.test_seeds)
    tests = {}
    for horizon in (1, 4):
        returns = meta_test(dataclasses.replace(
            config, inner_total_steps=horizon * args.inner_steps), env, params, drifts, keys)
        tests[f"{horizon}x"] = {"ppo": returns[0].tolist(), "lpo": returns[1].tolist()}
        wins = float(np.mean(returns[1] > returns[0]))
        print(f"meta-test {horizon}x ({horizon * args.inner_steps:,} steps, {args.test_seeds} "
              f"seeds): PPO {returns[0].mean():.1f} ± {returns[0].std():.1f}, LPO "
              f"{returns[1].mean():.1f} ± {returns[1].std():.1f}; LPO better on "
              f"{wins:.0%} of seeds", flush=True)
    if args.json:
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({
            "env": f"ParamLevels(gymnax/CartPole-v1, {RANGES})", "curriculum": args.curriculum,
            "config": dataclasses.asdict(config), "history": history, "meta_test": tests,
            "test_seeds": args.test_seeds}, indent=2, default=list))
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
