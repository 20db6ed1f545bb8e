"""Maze throughput against JaxUED's maze: random-action rollouts with auto-replay.

    python benchmarks/maze_throughput.py [--batch-sizes 1,64,1024,8192] [--repeats 5]

Both mazes run the same program shape on the same machine in the same process: ``n`` envs
reset to the same ``n`` levels (25 random walls on 13 x 13, drawn once by our generator and
converted to JaxUED's ``Level``), then a ``lax.scan`` of random actions (drawn up front, the same
actions for both) through each library's auto-replay wrapper, vmapped over the envs. Two modes:

* ``read``: every observation is read (a uint8 checksum of the image), as a policy would read it;
  this is the figure that matters for training.
* ``unused``: only rewards and episode ends are read, so XLA drops the observation of the step
  (what is left is the transition and the replay reset).

Each figure is the best of ``--repeats`` timed runs (the machine is shared and noisy), ours and
JaxUED's interleaved; the script prints env steps/s, the ratio ours / JaxUED, compile times, and
checks that both mazes paid the same rewards on every step (same task, same dynamics).

JaxUED 0.0.1 (PyPI ``jaxued``) still calls ``jax.tree_map``, which JAX removed; the script aliases
it to ``jax.tree.map`` before importing. If ``jaxued`` is not importable it is installed once,
without dependencies (it needs nothing the project lacks), into ``benchmarks/.jaxued``.
"""

from __future__ import annotations

import argparse
import importlib
import os
import subprocess
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from jaxrl_suite.env.levels import AutoReplay
from jaxrl_suite.envs.maze import Maze

JAXUED_DIR = Path(__file__).resolve().parent / ".jaxued"
GRID, VIEW, NUM_WALLS = 13, 5, 25


def import_jaxued():
    """JaxUED's maze, level and auto-replay wrapper, installing the package if needed."""
    if not hasattr(jax, "tree_map"):  # JaxUED 0.0.1 calls the removed jax.tree_map
        jax.tree_map = jax.tree.map
    if JAXUED_DIR.exists():
        sys.path.insert(0, str(JAXUED_DIR))
    try:
        importlib.import_module("jaxued")
    except ImportError:
        print(f"installing jaxued (no dependencies) into {JAXUED_DIR} ...", flush=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target",
             str(JAXUED_DIR), "jaxued==0.0.1"],
            check=True,
        )
        sys.path.insert(0, str(JAXUED_DIR))
    from jaxued.environments.maze import Level as JaxUEDLevel
    from jaxued.environments.maze import Maze as JaxUEDMaze
    from jaxued.wrappers import AutoReplayWrapper

    return JaxUEDMaze, JaxUEDLevel, AutoReplayWrapper


def checksum(image: jax.Array) -> jax.Array:
    """Reads every byte of a batch of uint8 images (wrapping sum, no widening conversion)."""
    return jnp.sum(image, dtype=jnp.uint8).astype(jnp.float32)


def make_rollout(env, num_envs: int, num_steps: int, read_observations: bool, image_of, done_of):
    """jitted ``rollout(key, levels, actions) -> (total, rewards per step)`` of one library's
    auto-replaying env: ``image_of(obs)`` is the observation's image and ``done_of(step_output)``
    the episode ends, since the two libraries' observations and step outputs differ."""
    params = env.default_params

    def rollout(key, levels, actions):
        reset_keys = jax.random.split(key, num_envs)
        _, state = jax.vmap(env.reset_to_level, in_axes=(0, 0, None))(reset_keys, levels, params)

        def one_step(carry, inputs):
            state, total = carry
            step_key, action = inputs
            output = jax.vmap(env.step, in_axes=(None, 0, 0, None))(
                step_key, state, action, params
            )
            obs, state, reward = output[:3]
            total = total + reward.sum() + done_of(output).sum()
            if read_observations:
                total = total + checksum(image_of(obs))
            return (state, total), reward

        step_keys = jax.random.split(key, num_steps)
        (_, total), rewards = jax.lax.scan(one_step, (state, 0.0), (step_keys, actions))
        return total, rewards.sum(axis=1)

    return jax.jit(rollout)


def make_ours(num_envs: int, num_steps: int, read_observations: bool):
    env = AutoReplay(Maze(GRID, view_size=VIEW))
    return make_rollout(
        env, num_envs, num_steps, read_observations,
        image_of=lambda obs: obs["image"],
        done_of=lambda output: output[3] | output[4],  # terminated | truncated
    )


def make_jaxued(num_envs: int, num_steps: int, read_observations: bool):
    JaxUEDMaze, _, AutoReplayWrapper = import_jaxued()
    env = AutoReplayWrapper(
        JaxUEDMaze(max_height=GRID, max_width=GRID, agent_view_size=VIEW, normalize_obs=False)
    )
    return make_rollout(
        env, num_envs, num_steps, read_observations,
        image_of=lambda obs: obs.image,
        done_of=lambda output: output[3],  # JaxUED's done
    )


def to_jaxued_levels(levels):
    """Our stacked levels as JaxUED's (its positions are (x, y) = (column, row))."""
    _, JaxUEDLevel, _ = import_jaxued()
    count = levels.wall_map.shape[0]
    return JaxUEDLevel(
        wall_map=levels.wall_map,
        goal_pos=levels.goal_position[:, ::-1].astype(jnp.uint32),
        agent_pos=levels.agent_position[:, ::-1].astype(jnp.uint32),
        agent_dir=levels.agent_direction.astype(jnp.uint8),
        width=jnp.full((count,), GRID, jnp.int32),
        height=jnp.full((count,), GRID, jnp.int32),
    )


def timed(function, *args) -> tuple[float, object]:
    start = time.perf_counter()
    result = jax.block_until_ready(function(*args))
    return time.perf_counter() - start, result


def steps_for(num_envs: int) -> int:
    """Steps per env: about 2M env steps per timed run, at least 256 and at most 20000."""
    return int(np.clip(2**21 // num_envs, 256, 20_000))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch-sizes", default="1,64,1024,8192")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--modes", default="read,unused")
    args = parser.parse_args()
    import_jaxued()
    generator = Maze(GRID)
    params = generator.default_params.replace(num_walls=NUM_WALLS)
    print(f"maze {GRID}x{GRID}, view {VIEW}x{VIEW}, {NUM_WALLS} walls, random actions, "
          f"auto-replay; jax {jax.__version__} on {jax.devices()[0].device_kind}, "
          f"{os.cpu_count()} cores; best of {args.repeats}")
    print(f"{'mode':7s} {'envs':>6s} {'steps':>6s} {'ours M/s':>9s} {'JaxUED M/s':>11s} "
          f"{'ratio':>6s} {'compile ours/JaxUED s':>22s} {'same rewards':>13s}")
    for mode in args.modes.split(","):
        for num_envs in (int(n) for n in args.batch_sizes.split(",")):
            num_steps = steps_for(num_envs)
            key = jax.random.key(num_envs)
            levels = jax.jit(jax.vmap(generator.sample_level, in_axes=(0, None)))(
                jax.random.split(key, num_envs), params
            )
            jaxued_levels = to_jaxued_levels(levels)
            actions = jax.random.randint(jax.random.fold_in(key, 1), (num_steps, num_envs), 0, 3)
            ours = make_ours(num_envs, num_steps, mode == "read")
            theirs = make_jaxued(num_envs, num_steps, mode == "read")
            compile_ours, (_, our_rewards) = timed(ours, key, levels, actions)
            compile_theirs, (_, their_rewards) = timed(theirs, key, jaxued_levels, actions)
            same = bool(np.allclose(np.asarray(our_rewards), np.asarray(their_rewards),
                                    atol=1e-4))
            best_ours = best_theirs = np.inf
            for _ in range(args.repeats):
                best_ours = min(best_ours, timed(ours, key, levels, actions)[0])
                best_theirs = min(best_theirs, timed(theirs, key, jaxued_levels, actions)[0])
            total = num_envs * num_steps
            ours_rate, theirs_rate = total / best_ours, total / best_theirs
            print(f"{mode:7s} {num_envs:6d} {num_steps:6d} {ours_rate / 1e6:9.2f} "
                  f"{theirs_rate / 1e6:11.2f} {ours_rate / theirs_rate:6.2f} "
                  f"{compile_ours:10.2f} / {compile_theirs:<9.2f} {'yes' if same else 'NO':>13s}",
                  flush=True)


if __name__ == "__main__":
    main()
