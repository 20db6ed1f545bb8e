"""MinAtar Breakout: the PPO and DQN ``minatar`` presets (the MinAtar paper's network) trained
at a given budget; prints each run's final return and wall time.

The preset's settings are kept except ``total_steps`` (``--ppo-steps``, ``--dqn-steps``); DQN's
epsilon decay is a fraction of ``total_steps``, so it shrinks with the budget. The return is the
mean training return of episodes finished in the last 10% of updates, per seed (as the tests
measure), and the greedy evaluation of each seed's final policy over ``--eval-episodes``.
Compilation is timed apart from training. The run is compiled as chunks of ``--chunk``
updates, so progress is printed as it goes and ``--max-minutes`` can stop it early (then the
figures are of the updates done, and the line says so; so are they when the updates are not a
whole number of chunks). One algorithm at a time, seeds as one ``vmap``::

    python benchmarks/minatar_breakout.py --algos ppo --ppo-steps 1e6 --seeds 2
    python benchmarks/minatar_breakout.py --algos dqn --dqn-steps 5e5 --seeds 1

For comparison (issue 16): PPO's preset with an MLP on the flattened image reached 6.45 at 1e6
steps; PureJaxRL's PPO 6.44-6.93 with the same settings.
"""

from __future__ import annotations

import argparse
import time

import jax
import numpy as np

import jaxrl_suite
from jaxrl_suite.algos import dqn, ppo
from jaxrl_suite.run.evaluation import evaluate

ENV_ID = "gymnax/Breakout-MinAtar"
MODULES = {"ppo": ppo, "dqn": dqn}


def final_training_return(episode_return: np.ndarray, last_fraction: float = 0.1) -> np.ndarray:
    """Mean return of episodes finished in the last ``last_fraction`` of updates, per seed:
    ``episode_return`` ``(seeds, num_updates)`` (NaN where no episode ended) -> ``(seeds,)``."""
    count = max(1, int(episode_return.shape[-1] * last_fraction))
    return np.nanmean(episode_return[..., -count:], axis=-1)


def run(name: str, total_steps: int, seeds: int, eval_episodes: int, chunk: int,
        max_minutes: float) -> dict[str, object]:
    module = MODULES[name]
    env, env_params = jaxrl_suite.make(ENV_ID)
    config = module.preset_config(ENV_ID, total_steps=total_steps)
    train = module.make_train(config, env, env_params)
    keys = jax.random.split(jax.random.key(0), seeds)
    init = jax.jit(jax.vmap(lambda key: train.init(key, train.default_hparams)))

    def updates(state, count):
        return jax.lax.scan(lambda s, _: train.update(s), state, None, length=count)

    start = time.perf_counter()
    state = jax.block_until_ready(init(keys))
    chunk = min(chunk, train.num_updates)
    run_chunk = jax.jit(jax.vmap(lambda s: updates(s, chunk))).lower(state).compile()
    compile_seconds = time.perf_counter() - start
    start = time.perf_counter()
    chunks, done = [], 0
    while done + chunk <= train.num_updates:
        state, metrics = jax.block_until_ready(run_chunk(state))
        chunks.append(jax.tree.map(np.asarray, metrics))
        done += chunk
        recent = np.nanmean(chunks[-1]["episode_return"])
        print(f"  {name}: {done}/{train.num_updates} updates, {np.max(metrics['env_steps']):,} "
              f"env steps, recent return {recent:.2f}, {time.perf_counter() - start:.0f} s",
              flush=True)
        if time.perf_counter() - start > 60 * max_minutes:
            break
    train_seconds = time.perf_counter() - start
    episode_return = np.concatenate([c["episode_return"] for c in chunks], axis=1)
    env_steps = int(np.max(chunks[-1]["env_steps"]))
    returns = final_training_return(episode_return)
    result_state = state
    eval_env, _ = jaxrl_suite.make(ENV_ID, wrappers=False)  # evaluate steps without auto-reset
    greedy = []
    for seed in range(seeds):
        state = jax.tree.map(lambda x, s=seed: x[s], result_state)
        evaluation = evaluate(train.make_policy(state), eval_env, env_params,
                              jax.random.key(100 + seed), eval_episodes, deterministic=True)
        greedy.append(float(np.mean(np.asarray(evaluation["episode_return"]))))
    return {
        "algo": name, "env_steps": env_steps, "updates": done,
        "planned_env_steps": int(train.num_updates * train.env_steps_per_update
                                 + train.env_steps_before_updates),
        "seeds": seeds, "final_return": returns, "greedy_return": np.asarray(greedy),
        "compile_s": compile_seconds, "train_s": train_seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--algos", nargs="+", default=["ppo", "dqn"], choices=sorted(MODULES))
    parser.add_argument("--ppo-steps", type=float, default=1e6)
    parser.add_argument("--dqn-steps", type=float, default=5e5)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--eval-episodes", type=int, default=16)
    parser.add_argument("--chunk", type=int, default=10, help="updates per compiled chunk")
    parser.add_argument("--max-minutes", type=float, default=float("inf"),
                        help="stop after the chunk that passes this much training time")
    args = parser.parse_args()
    budgets = {"ppo": int(args.ppo_steps), "dqn": int(args.dqn_steps)}
    for name in args.algos:
        row = run(name, budgets[name], args.seeds, args.eval_episodes, args.chunk,
                  args.max_minutes)
        final, greedy = row["final_return"], row["greedy_return"]
        stopped = ("" if row["env_steps"] == row["planned_env_steps"] else
                   f" (stopped early, of {row['planned_env_steps']:,} planned)")
        print(f"{name} {ENV_ID} {row['env_steps']:,} env steps{stopped} x {row['seeds']} "
              f"seed(s), {time.strftime('%Y-%m-%d')}: "
              f"final training return {final.mean():.2f} (per seed {np.round(final, 2)}), "
              f"greedy {greedy.mean():.2f} (per seed {np.round(greedy, 2)}); "
              f"init (DQN: the random prefill) and compile {row['compile_s']:.1f} s, train "
              f"{row['train_s']:.1f} s", flush=True)


if __name__ == "__main__":
    main()
