"""LPO meta-training throughput: a generation's time, and the inner PPO runs under a population
vmap beside PureJaxRL's PPO under the same vmap, in the same process.

    python benchmarks/lpo.py [--population 16] [--inner-steps 131072] [--repeats 2]
        [--json runs/lpo_benchmark.json]

* **Generation** (``meta/lpo.py``): one ``LPOTrain.update`` (``population`` + 2 whole inner PPO
  runs of ``--inner-steps`` env steps on CartPole at PureJaxRL's configuration, 4 envs x 128
  steps, 4 epochs x 4 minibatches; their evaluations; the ES step), on 1 and on 2 devices (a
  child process with ``--xla_force_host_platform_device_count``, the population split).
  Printed: compile time, seconds per generation (best of ``--repeats``), inner env steps/s.
* **Inner PPO under the population vmap**: ``jax.vmap`` over ``population`` members of our PPO
  with the LPO objective (each member its own drift network, as in a generation) and with
  PPO's own clipped objective, against ``jax.vmap`` over as many keys of PureJaxRL's PPO
  (``benchmarks/purejaxrl_reference.py``, CartPole), same configuration and steps; ratios
  ours / peer of env steps/s.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

PUREJAXRL_CARTPOLE = {
    "LR": 2.5e-4, "NUM_ENVS": 4, "NUM_STEPS": 128, "UPDATE_EPOCHS": 4, "NUM_MINIBATCHES": 4,
    "GAMMA": 0.99, "GAE_LAMBDA": 0.95, "CLIP_EPS": 0.2, "ENT_COEF": 0.01, "VF_COEF": 0.5,
    "MAX_GRAD_NORM": 0.5, "ACTIVATION": "tanh", "ENV_NAME": "CartPole-v1", "ANNEAL_LR": True,
    "DEBUG": False,
}


def _ppo_config(objective: str, steps: int):
    from jaxrl_suite.algos import ppo

    # PPO's defaults are PureJaxRL's CartPole configuration (benchmarks/ppo_cartpole.py).
    return ppo.Config(objective=objective, total_steps=steps)


def _best(function, args, repeats):
    import jax

    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(function(*args))
        times.append(time.perf_counter() - start)
    return min(times)


def _compiled(function, *args):
    import jax

    start = time.perf_counter()
    compiled = jax.jit(function).lower(*args).compile()
    return compiled, time.perf_counter() - start


def measure_generation(args: argparse.Namespace) -> dict:
    import jax

    import jaxrl_suite
    from jaxrl_suite.meta import lpo

    env, env_params = jaxrl_suite.make("gymnax/CartPole-v1")
    config = lpo.Config(population_size=args.population, generations=args.repeats + 1,
                        ppo_preset="none", inner_total_steps=args.inner_steps,
                        fitness_episodes=args.fitness_episodes, hidden_size=args.hidden_size)
    train = lpo.make_train(config, env, env_params)
    state = jax.block_until_ready(jax.jit(train.init)(jax.random.key(0), train.default_hparams))
    update, compile_s = _compiled(train.update, state)
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        state, metrics = jax.block_until_ready(update(state))
        times.append(time.perf_counter() - start)
    seconds = min(times)
    inner_steps = (args.population + 2) * train.inner.num_updates * train.inner.env_steps_per_update
    return {"devices": jax.local_device_count(), "compile_s": compile_s,
            "generation_s": seconds, "inner_env_steps_per_generation": inner_steps,
            "inner_env_steps_per_s": inner_steps / seconds,
            "fitness_mean": float(metrics["fitness_mean"])}


def child_generation(args: argparse.Namespace, devices: int) -> dict:
    env = dict(os.environ)
    env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") +
                        f" --xla_force_host_platform_device_count={devices}").strip()
    command = [sys.executable, __file__, "--child-generation", *sys.argv[1:]]
    output = subprocess.run(command, env=env, check=True, capture_output=True, text=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def measure_population_vmap(args: argparse.Namespace) -> dict:
    import jax

    import jaxrl_suite
    from jaxrl_suite.algos import ppo
    from jaxrl_suite.learn import objectives

    sys.path.insert(0, str(HERE))
    import purejaxrl_reference as peer

    env, env_params = jaxrl_suite.make("gymnax/CartPole-v1")
    keys = jax.random.split(jax.random.key(1), args.population)
    steps = args.population * args.inner_steps
    rows = {}
    for objective in ("lpo", "clipped_surrogate"):
        train = ppo.make_train(_ppo_config(objective, args.inner_steps), env, env_params)
        hparams = train.default_hparams
        if objective == "lpo":
            drifts = jax.vmap(lambda k: objectives.init_drift_params(k, False, args.hidden_size))(
                keys)
            # Members differ as in a generation: perturbed output layers (not PPO's zeros).
            drifts = jax.tree.map(lambda x: x + 0.03 * jax.random.normal(
                jax.random.key(2), x.shape), drifts)

            def run(keys, drifts=drifts, train=train, hparams=hparams):
                return jax.vmap(lambda k, d: train(k, hparams.replace(
                    meta={"objective": d})).metrics["episode_return"])(keys, drifts)
        else:
            def run(keys, train=train):
                return jax.vmap(lambda k: train(k).metrics["episode_return"])(keys)
        compiled, compile_s = _compiled(run, keys)
        seconds = _best(compiled, (keys,), args.repeats)
        rows[f"ours_{objective}"] = {"compile_s": compile_s, "run_s": seconds,
                                     "env_steps_per_s": steps / seconds}
    rows.update(measure_peer(args, keys, steps, peer))
    return rows


def measure_peer(args: argparse.Namespace, keys, steps: int, peer) -> dict:
    """PureJaxRL's PPO over the same keys: under ``jax.vmap`` in a child process (on JAX 0.10.2's
    CPU backend its vmapped run deadlocked here: 0 % CPU, waiting in ``block_until_ready``, for
    4 keys as for 16, while one run works), and as a loop of single jitted runs, the fallback
    figure when the vmapped one does not come back within ``--peer-timeout`` seconds."""

    rows = {}
    command = [sys.executable, __file__, "--child-peer-vmap", *sys.argv[1:]]
    try:
        output = subprocess.run(command, check=True, capture_output=True, text=True,
                                timeout=args.peer_timeout).stdout
        rows["purejaxrl"] = json.loads(output.strip().splitlines()[-1])
    except subprocess.TimeoutExpired:
        print(f"PureJaxRL under jax.vmap: no result within {args.peer_timeout} s (it hangs on "
              f"this JAX's CPU backend); its single runs in a loop instead", flush=True)
    peer_train = peer.make_train({**PUREJAXRL_CARTPOLE, "TOTAL_TIMESTEPS": args.inner_steps})
    single, compile_s = _compiled(lambda k: peer_train(k)["metrics"]["returned_episode_returns"],
                                  keys[0])

    def loop(keys):
        return [single(k) for k in keys]

    seconds = _best(loop, (keys,), args.repeats)
    rows["purejaxrl_loop"] = {"compile_s": compile_s, "run_s": seconds,
                              "env_steps_per_s": steps / seconds}
    return rows


def child_peer_vmap(args: argparse.Namespace) -> dict:
    import jax

    sys.path.insert(0, str(HERE))
    import purejaxrl_reference as peer

    keys = jax.random.split(jax.random.key(1), args.population)
    peer_train = peer.make_train({**PUREJAXRL_CARTPOLE, "TOTAL_TIMESTEPS": args.inner_steps})

    def run_peer(keys):
        return jax.vmap(lambda k: peer_train(k)["metrics"]["returned_episode_returns"])(keys)

    compiled, compile_s = _compiled(run_peer, keys)
    seconds = _best(compiled, (keys,), args.repeats)
    return {"compile_s": compile_s, "run_s": seconds,
            "env_steps_per_s": args.population * args.inner_steps / seconds}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--population", type=int, default=16)
    parser.add_argument("--inner-steps", type=int, default=131_072)
    parser.add_argument("--fitness-episodes", type=int, default=8)
    parser.add_argument("--hidden-size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--json", default=None)
    parser.add_argument("--peer-timeout", type=int, default=240)
    parser.add_argument("--child-generation", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--child-peer-vmap", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_generation:
        print(json.dumps(measure_generation(args)))
        return 0
    if args.child_peer_vmap:
        print(json.dumps(child_peer_vmap(args)))
        return 0
    print(f"configuration: CartPole, PureJaxRL's PPO settings (4 envs x 128 steps, 4 x 4 "
          f"minibatches), {args.inner_steps:,} env steps per inner run, population "
          f"{args.population} (+2 reference runs per generation), drift network "
          f"{args.hidden_size} units; best of {args.repeats}", flush=True)
    results = {"args": vars(args), "generation": {}}
    for devices in (1, 2):
        row = child_generation(args, devices)
        results["generation"][f"{devices}_device"] = row
        print(f"generation, {devices} device(s): {row['generation_s']:.2f} s "
              f"({row['inner_env_steps_per_s']:,.0f} inner env steps/s; compile "
              f"{row['compile_s']:.0f} s)", flush=True)
    one, two = (results["generation"][f"{d}_device"]["generation_s"] for d in (1, 2))
    print(f"  2 devices / 1 device: {one / two:.2f}x generations/s")
    vmap_rows = measure_population_vmap(args)
    results["population_vmap"] = vmap_rows
    peer = "purejaxrl" if "purejaxrl" in vmap_rows else "purejaxrl_loop"
    peer_rate = vmap_rows[peer]["env_steps_per_s"]
    for name, row in vmap_rows.items():
        print(f"population vmap, {name}: {row['run_s']:.2f} s, {row['env_steps_per_s']:,.0f} "
              f"env steps/s (compile {row['compile_s']:.0f} s); / {peer} "
              f"{row['env_steps_per_s'] / peer_rate:.2f}x", flush=True)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
