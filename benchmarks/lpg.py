"""LPG meta-training throughput and memory, beside the published GROOVE code (the peer).

Prints, for one stated configuration (defaults: the grid-world ``all`` distribution, tabular
agents, 64 envs x 20 steps per rollout, K = 5 inner updates, the published 256-unit objective
GRU; ``--population`` agents):

* meta-steps/s and agent updates/s (``population * K`` per meta-step) of the compiled meta-step,
  best of ``--repeats`` timed chunks of ``--steps`` meta-steps after compiling, on 1 device and
  on 2 (a child process with ``--xla_force_host_platform_device_count=2``: the population is
  split over the devices);
* the compiled meta-step's memory (XLA's ``memory_analysis``: arguments, outputs and
  temporaries) for K = 1, 5, 10, with and without rematerialisation of the inner updates;
* the peer at the same configuration (``benchmarks/groove_peer.py`` runs it in its own
  virtualenv with the JAX it needs) and the ratio of meta-step throughputs.

    python benchmarks/lpg.py [--population 32] [--steps 3] [--no-peer] [--json out.json]
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

HERE = Path(__file__).resolve().parent


def configuration(args: argparse.Namespace, inner_updates: int | None = None,
                  remat: bool = False):
    from jaxrl_suite.meta import lpg

    return lpg.Config(population_size=args.population, num_envs=args.num_envs,
                      rollout_steps=args.rollout_steps,
                      inner_updates=args.inner_updates if inner_updates is None else inner_updates,
                      lifetime=args.lifetime, gru_width=args.gru_width, remat=remat,
                      meta_steps=args.steps, eval_steps=50)


def measure_throughput(args: argparse.Namespace) -> dict:
    """Compile and time ``args.steps`` meta-steps in one scan, best of ``args.repeats``."""
    import jax

    import jaxrl_suite
    from jaxrl_suite.meta import lpg

    env, env_params = jaxrl_suite.make(args.env)
    config = configuration(args)
    train = lpg.make_train(config, env, env_params)
    state = jax.jit(train.init)(jax.random.key(0), train.default_hparams)
    run = jax.jit(lambda s: train.run_updates(s, args.steps))
    start = time.perf_counter()
    compiled = run.lower(state).compile()
    compile_seconds = time.perf_counter() - start
    best = float("inf")
    for _ in range(args.repeats):
        start = time.perf_counter()
        state, metrics = compiled(state)
        jax.block_until_ready(metrics)
        best = min(best, time.perf_counter() - start)
    meta_steps_per_second = args.steps / best
    return {"devices": jax.device_count(), "compile_s": compile_seconds,
            "meta_steps_per_s": meta_steps_per_second,
            "agent_updates_per_s": meta_steps_per_second * config.population_size
            * config.inner_updates,
            "meta_loss_last": float(metrics["meta_loss"][-1])}


def measure_memory(args: argparse.Namespace) -> list[dict]:
    """XLA's memory estimate of one compiled meta-step for K = 1, 5, 10, with and without
    remat."""
    import jax

    import jaxrl_suite
    from jaxrl_suite.meta import lpg

    env, env_params = jaxrl_suite.make(args.env)
    rows = []
    for inner_updates in (1, 5, 10):
        for remat in (False, True):
            config = dataclasses.replace(configuration(args, inner_updates, remat),
                                         lifetime=max(args.lifetime, inner_updates))
            train = lpg.make_train(config, env, env_params)
            state = jax.eval_shape(train.init, jax.random.key(0), train.default_hparams)
            analysis = jax.jit(train.update).lower(state).compile().memory_analysis()
            temporaries = int(getattr(analysis, "temp_size_in_bytes", 0))
            arguments = int(getattr(analysis, "argument_size_in_bytes", 0))
            outputs = int(getattr(analysis, "output_size_in_bytes", 0))
            rows.append({"inner_updates": inner_updates, "remat": remat,
                         "temporaries_mb": temporaries / 2**20,
                         "state_mb": arguments / 2**20,
                         "peak_estimate_mb": (temporaries + arguments + outputs) / 2**20})
    return rows


def child_throughput(args: argparse.Namespace, devices: int) -> dict:
    """``measure_throughput`` in a child process with ``devices`` host devices."""
    env = dict(os.environ)
    env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") +
                        f" --xla_force_host_platform_device_count={devices}").strip()
    command = [sys.executable, __file__, "--child-throughput", *sys.argv[1:]]
    output = subprocess.run(command, env=env, check=True, capture_output=True, text=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def peer_throughput(args: argparse.Namespace) -> dict | None:
    """The published GROOVE code at the same configuration, or None when it cannot run (the
    reason is printed)."""
    sys.path.insert(0, str(HERE))
    try:
        import groove_peer
    except ImportError as error:
        print(f"peer: benchmarks/groove_peer.py is missing ({error})")
        return None
    spec = {"num_agents": args.population, "num_mini_batches": 1, "env_workers": args.num_envs,
            "train_rollout_len": args.rollout_steps, "num_agent_updates": args.inner_updates,
            "lpg_gru_width": args.gru_width, "env_mode": "all_shortlife", "use_es": False,
            "meta_steps": args.steps, "repeats": args.repeats}
    try:
        out = groove_peer.run_groove(spec, nice=0)
        # The runner returns its runs (one here) beside the peer's versions.
        return {**out["results"][0], "versions": out.get("versions"),
                "peer_commit": out.get("peer_commit")}
    except Exception as error:  # the peer's failure is reported, not fatal
        print(f"peer: could not run the published code: {error}")
        return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="gridworld")
    parser.add_argument("--population", type=int, default=32)
    parser.add_argument("--num-envs", type=int, default=64)
    parser.add_argument("--rollout-steps", type=int, default=20)
    parser.add_argument("--inner-updates", type=int, default=5)
    parser.add_argument("--lifetime", type=int, default=250)
    parser.add_argument("--gru-width", type=int, default=256)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--no-peer", action="store_true")
    parser.add_argument("--no-memory", action="store_true")
    parser.add_argument("--no-ours", action="store_true", help="only the peer (a re-run)")
    parser.add_argument("--json", default=None)
    parser.add_argument("--child-throughput", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_throughput:
        print(json.dumps(measure_throughput(args)))
        return 0
    print(f"configuration: {args.env}, population {args.population}, {args.num_envs} envs x "
          f"{args.rollout_steps} steps per rollout, K = {args.inner_updates}, objective GRU "
          f"{args.gru_width}, tabular agents; {args.steps} meta-steps per timed chunk, best of "
          f"{args.repeats}", flush=True)
    results = {"args": vars(args), "ours": {}}
    for devices in () if args.no_ours else (1, 2):
        measured = child_throughput(args, devices)
        results["ours"][f"{devices}_device"] = measured
        print(f"ours, {devices} device(s): {measured['meta_steps_per_s']:.3f} meta-steps/s, "
              f"{measured['agent_updates_per_s']:,.0f} agent updates/s (compile "
              f"{measured['compile_s']:.0f} s)", flush=True)
    if not args.no_memory and not args.no_ours:
        results["memory"] = measure_memory(args)
        for row in results["memory"]:
            print(f"memory, K = {row['inner_updates']:2d}, remat {str(row['remat']):5}: peak "
                  f"estimate {row['peak_estimate_mb']:8.1f} MB (temporaries "
                  f"{row['temporaries_mb']:8.1f} MB, state {row['state_mb']:.1f} MB)",
                  flush=True)
    if not args.no_peer:
        peer = peer_throughput(args)
        results["peer"] = peer
        if peer is not None:
            print(f"peer: {peer['meta_steps_per_s']:.3f} meta-steps/s, "
                  f"{peer['agent_updates_per_s']:.1f} agent updates/s (compile "
                  f"{peer['compile_s']:.0f} s)", flush=True)
        if peer is not None and not args.no_ours:
            ours = results["ours"]["1_device"]["meta_steps_per_s"]
            print(f"peer (published GROOVE code): {peer['meta_steps_per_s']:.3f} meta-steps/s; "
                  f"ours / peer = {ours / peer['meta_steps_per_s']:.2f}x (1 device)")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
