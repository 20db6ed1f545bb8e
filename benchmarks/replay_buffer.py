"""Replay buffer: ours (``jaxrl_suite.learn.buffers``) against flashbax's flat buffer, same machine.

    python benchmarks/replay_buffer.py          # flashbax compared when importable
    pip install flashbax                         # (not a project dependency)

What an off-policy update does to its buffer, timed alone: add one vectorised step of
``num_envs`` transitions (Pendulum-sized: 3-float observations, 1-float actions), then draw a
minibatch of 256, ``steps`` times in one jitted ``lax.scan``; for 1 buffer and for 8 buffers
under ``vmap`` (seeds). Prints the run times, updates per second and the
ratio ours / flashbax of the run times (below 1: ours is faster). ``updates/s`` counts one add
and one minibatch draw, summed over the vmapped buffers.
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp

from jaxrl_suite.learn.buffers import ReplayBuffer, Transition

BATCH = 256


def example(num_envs: int) -> Transition:
    return Transition(
        observation=jnp.zeros((num_envs, 3)), action=jnp.zeros((num_envs, 1)),
        reward=jnp.zeros(num_envs), next_observation=jnp.zeros((num_envs, 3)),
        terminated=jnp.zeros(num_envs, bool), truncated=jnp.zeros(num_envs, bool),
    )


def items_at(step: jax.Array, num_envs: int) -> Transition:
    value = step.astype(jnp.float32)
    return jax.tree.map(lambda x: (x + value).astype(x.dtype), example(num_envs))


def ours_program(capacity: int, num_envs: int, steps: int):
    buffer = ReplayBuffer(capacity, num_envs)

    def run(key):
        state = buffer.init(jax.tree.map(lambda x: x[0], example(num_envs)))

        def body(state, inputs):
            step, step_key = inputs
            state = buffer.add(state, items_at(step, num_envs))
            batch = buffer.sample(state, step_key, BATCH)
            return state, batch.reward.sum()

        state, sums = jax.lax.scan(body, state, (jnp.arange(steps), jax.random.split(key, steps)))
        return sums.sum()

    return run


def flashbax_program(capacity: int, num_envs: int, steps: int):
    import flashbax

    buffer = flashbax.make_flat_buffer(
        max_length=capacity, min_length=1, sample_batch_size=BATCH, add_sequences=False,
        add_batch_size=num_envs,
    )

    def run(key):
        state = buffer.init(jax.tree.map(lambda x: x[0], example(num_envs)))

        def body(state, inputs):
            step, step_key = inputs
            state = buffer.add(state, items_at(step, num_envs))
            batch = buffer.sample(state, step_key)
            return state, batch.experience.first.reward.sum()

        state, sums = jax.lax.scan(body, state, (jnp.arange(steps), jax.random.split(key, steps)))
        return sums.sum()

    return run


def timed(program, seeds: int, repeats: int) -> tuple[float, float]:
    keys = jax.random.split(jax.random.key(0), seeds)
    function = jax.jit(jax.vmap(program)) if seeds > 1 else jax.jit(program)
    argument = keys if seeds > 1 else keys[0]
    start = time.perf_counter()
    compiled = function.lower(argument).compile()
    compile_s = time.perf_counter() - start
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(compiled(argument))
        best = min(best, time.perf_counter() - start)
    return compile_s, best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--capacity", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    try:
        from importlib.metadata import version as package_version

        import flashbax

        del flashbax
        version, have_flashbax = package_version("flashbax"), True
    except ImportError:
        have_flashbax, version = False, None
    print(f"Replay buffer add + sample({BATCH}), {args.steps} steps in one jit, capacity "
          f"{args.capacity}, best of {args.repeats}; jax {jax.__version__}, flashbax "
          f"{version or 'not installed (pip install flashbax to compare)'}")
    print(f"{'num_envs':>8} {'seeds':>5} {'ours s':>8} {'flashbax s':>10} {'ratio':>6} "
          f"{'ours updates/s':>15}")
    for num_envs in (1, 8):
        for seeds in (1, 8):
            _, ours = timed(ours_program(args.capacity, num_envs, args.steps), seeds,
                            args.repeats)
            theirs = None
            if have_flashbax:
                _, theirs = timed(flashbax_program(args.capacity, num_envs, args.steps), seeds,
                                  args.repeats)
            rate = seeds * args.steps / ours
            print(f"{num_envs:>8} {seeds:>5} {ours:>8.3f} "
                  f"{(f'{theirs:.3f}' if theirs else '-'):>10} "
                  f"{(f'{ours / theirs:.2f}' if theirs else '-'):>6} {rate:>15,.0f}")


if __name__ == "__main__":
    main()
