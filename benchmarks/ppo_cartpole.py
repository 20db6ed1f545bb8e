"""PPO on CartPole: ours against PureJaxRL's ppo.py, same config, same machine, same process.

    python benchmarks/ppo_cartpole.py [--repeats 3] [--seeds 16]

The peer is ``benchmarks/purejaxrl_reference.py``, an independent re-implementation of
PureJaxRL's single-file PPO with its CartPole configuration (4 envs x 128 steps, 5e5 steps,
4 epochs x 4 minibatches, lr 2.5e-4 annealed, tanh 64x64). Ours runs ``ppo.Config()``, which
is the same configuration. Printed: compile time, run time for 1 seed and for N vmapped seeds
(best of ``--repeats``, compile excluded), env steps/s, final returns, the ratios ours/peer, the
cost of live progress (on vs off, through the harness), and where an update's time goes.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import jax
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

import purejaxrl_reference as peer  # noqa: E402

import jaxrl_suite  # noqa: E402
from jaxrl_suite.algos import ppo  # noqa: E402
from jaxrl_suite.run import sinks  # noqa: E402
from jaxrl_suite.run.harness import _Reporter, make_chunk_runner  # noqa: E402


def timed_compile(function, *args):
    start = time.perf_counter()
    compiled = jax.jit(function).lower(*args).compile()
    return compiled, time.perf_counter() - start


def best_run(compiled, args, repeats):
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = jax.block_until_ready(compiled(*args))
        times.append(time.perf_counter() - start)
    return min(times), out


def measure(name, train, final_return, seeds, repeats):
    key = jax.random.key(30)
    keys = jax.random.split(key, seeds)
    compiled_one, compile_one = timed_compile(train, key)
    run_one, out_one = best_run(compiled_one, (key,), repeats)
    compiled_many, compile_many = timed_compile(jax.vmap(train), keys)
    run_many, out_many = best_run(compiled_many, (keys,), repeats)
    return {
        "name": name,
        "compile_1": compile_one,
        "run_1": run_one,
        "compile_n": compile_many,
        "run_n": run_many,
        "return_1": float(np.mean(final_return(out_one))),
        "return_n": float(np.mean(final_return(out_many))),
    }


def progress_cost(train, seeds, repeats):
    """Run time of the harness' chunk runner with live progress (to CSV, every ~2% of the run)
    and without, compile excluded."""
    states = train.initial_states(jax.random.split(jax.random.key(0), seeds))
    out = {}
    with tempfile.TemporaryDirectory() as directory:
        reporter = _Reporter([sinks.CSVSink(Path(directory) / "progress.csv")], train)
        for label, chunk_reporter in (("off", None), ("on", reporter)):
            runner = make_chunk_runner(train, max(1, train.num_updates // 50), chunk_reporter)
            jax.block_until_ready(runner(states, np.int32(0), train.num_updates))  # compile
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                jax.block_until_ready(runner(states, np.int32(0), train.num_updates))
                jax.effects_barrier()
                times.append(time.perf_counter() - start)
            out[label] = min(times)
        reporter.close()
    return out


def update_breakdown(env, params, repeats):
    """Time per update with 1 and 4 epochs: the difference is 3 epochs of minibatch steps, the
    rest is rollout + GAE."""
    per_update = {}
    for epochs in (1, 4):
        train = ppo.make_train(ppo.Config(update_epochs=epochs), env, params)
        compiled, _ = timed_compile(train, jax.random.key(0))
        seconds, _ = best_run(compiled, (jax.random.key(0),), repeats)
        per_update[epochs] = seconds / train.num_updates
    epoch = (per_update[4] - per_update[1]) / 3
    rollout = per_update[1] - epoch
    return per_update[4], rollout, 4 * epoch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seeds", type=int, default=16)
    args = parser.parse_args()

    env, params = jaxrl_suite.make("gymnax/CartPole-v1")
    ours_train = ppo.make_train(ppo.Config(), env, params)
    steps = ours_train.num_updates * ours_train.env_steps_per_update
    print(f"PPO CartPole-v1, PureJaxRL config, {steps:,} env steps per seed, "
          f"{jax.devices()[0].platform}, jax {jax.__version__}")

    peer_result = measure("PureJaxRL", peer.make_train(peer.CONFIG),
                          lambda out: peer.final_return(out["metrics"]),
                          args.seeds, args.repeats)
    ours_result = measure("jaxrl-suite", ours_train,
                          lambda result: ppo.final_return(result), args.seeds, args.repeats)

    header = (f"{'':12s} {'compile 1':>10s} {'run 1 seed':>11s} {'steps/s':>11s} "
              f"{'compile N':>10s} {f'run {args.seeds} seeds':>13s} {'steps/s':>11s} "
              f"{'return 1':>9s} {f'return {args.seeds}':>10s}")
    print(header)
    for r in (peer_result, ours_result):
        print(f"{r['name']:12s} {r['compile_1']:9.2f}s {r['run_1']:10.2f}s "
              f"{steps / r['run_1']:11,.0f} {r['compile_n']:9.2f}s {r['run_n']:12.2f}s "
              f"{steps * args.seeds / r['run_n']:11,.0f} {r['return_1']:9.1f} "
              f"{r['return_n']:10.1f}")
    print("ratios ours / PureJaxRL (lower is faster): "
          f"run 1 seed {ours_result['run_1'] / peer_result['run_1']:.2f}, "
          f"run {args.seeds} seeds {ours_result['run_n'] / peer_result['run_n']:.2f}, "
          f"compile 1 seed {ours_result['compile_1'] / peer_result['compile_1']:.2f}, "
          f"compile {args.seeds} seeds {ours_result['compile_n'] / peer_result['compile_n']:.2f}")

    for seeds in (1, args.seeds):
        cost = progress_cost(ours_train, seeds, args.repeats)
        print(f"live progress, {seeds} seed(s): off {cost['off']:.2f}s, on {cost['on']:.2f}s "
              f"({100 * (cost['on'] / cost['off'] - 1):+.1f}%)")

    total, rollout, learning = update_breakdown(env, params, args.repeats)
    print(f"one update (1 seed): {1e3 * total:.2f} ms = rollout+GAE {1e3 * rollout:.2f} ms "
          f"({100 * rollout / total:.0f}%) + 4 epochs x 4 minibatch steps "
          f"{1e3 * learning:.2f} ms ({100 * learning / total:.0f}%)")


if __name__ == "__main__":
    main()
