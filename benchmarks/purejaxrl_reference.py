"""Peer for the PPO benchmark: PureJaxRL's single-file PPO, re-implemented for timing.

This module is an independent re-implementation of ``purejaxrl/ppo.py`` (and the two wrappers it
uses from ``purejaxrl/wrappers.py``) from PureJaxRL by Chris Lu, MIT licensed:
https://github.com/luchris429/purejaxrl . No code was copied; it was written from a reading of
that script so that our own PPO can be timed and its returns compared against it in the same
process. It deliberately keeps PureJaxRL's algorithm, computation structure, network, wrapper
semantics and CartPole configuration, including its choices we do not share (for instance GAE
treats a time-limit truncation like a termination).

The one adaptation is to gymnax 1.0, whose ``env.step`` returns the 6-tuple
``(obs, state, reward, terminated, truncated, info)``: the log wrapper folds it back into
PureJaxRL's 5-tuple with ``done = terminated | truncated``, which is exactly what ``done`` meant
in the gymnax versions PureJaxRL was written against (CartPole's old ``is_terminal`` included the
time limit). The environment's ``info`` dict is passed through untouched, as PureJaxRL does, so
on gymnax 1.0 the metrics also carry gymnax's ``terminated``/``truncated``/``final_observation``.
Checked with jax 0.10.2 against PureJaxRL's script (given that same adaptation): both lower to
the same StableHLO, and a given key gives bitwise-identical outputs.

    python benchmarks/purejaxrl_reference.py [--seed 30] [--num-seeds 16]
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, NamedTuple

import distrax
import flax.linen as nn
import gymnax
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct
from flax.linen.initializers import constant, orthogonal
from flax.training.train_state import TrainState
from gymnax.environments import spaces

# PureJaxRL's CartPole-v1 configuration (its ``__main__``), without ``DEBUG``: the per-episode
# print callback would dominate any timing. Set ``"DEBUG": True`` in a copy to get it back.
CONFIG: dict = {
    "LR": 2.5e-4,
    "NUM_ENVS": 4,
    "NUM_STEPS": 128,
    "TOTAL_TIMESTEPS": 5e5,
    "UPDATE_EPOCHS": 4,
    "NUM_MINIBATCHES": 4,
    "GAMMA": 0.99,
    "GAE_LAMBDA": 0.95,
    "CLIP_EPS": 0.2,
    "ENT_COEF": 0.01,
    "VF_COEF": 0.5,
    "MAX_GRAD_NORM": 0.5,
    "ACTIVATION": "tanh",
    "ENV_NAME": "CartPole-v1",
    "ANNEAL_LR": True,
}


# --------------------------------------------------------------------------------------------
# Wrappers (same semantics as PureJaxRL's FlattenObservationWrapper and LogWrapper).
# --------------------------------------------------------------------------------------------


class _Wrapper:
    """Forwards every attribute it does not define to the wrapped environment."""

    def __init__(self, env):
        self._env = env

    def __getattr__(self, name: str):
        return getattr(self._env, name)


class FlattenObservationWrapper(_Wrapper):
    """Reshapes Box observations to one dimension (a no-op for CartPole, kept for parity)."""

    def observation_space(self, params) -> spaces.Box:
        inner = self._env.observation_space(params)
        assert isinstance(inner, spaces.Box), "only Box observation spaces are supported"
        return spaces.Box(
            low=inner.low, high=inner.high, shape=(int(np.prod(inner.shape)),), dtype=inner.dtype
        )

    @partial(jax.jit, static_argnums=(0,))
    def reset(self, key, params=None):
        obs, state = self._env.reset(key, params)
        return jnp.reshape(obs, (-1,)), state

    @partial(jax.jit, static_argnums=(0,))
    def step(self, key, state, action, params=None):
        obs, state, reward, terminated, truncated, info = self._env.step(key, state, action, params)
        return jnp.reshape(obs, (-1,)), state, reward, terminated, truncated, info


@struct.dataclass
class LogEnvState:
    env_state: Any
    episode_returns: float
    episode_lengths: int
    returned_episode_returns: float
    returned_episode_lengths: int
    timestep: int


class LogWrapper(_Wrapper):
    """Tracks episode return and length; reports the last finished episode's in ``info``.

    Returns PureJaxRL's 5-tuple ``(obs, state, reward, done, info)`` with
    ``done = terminated | truncated`` from gymnax 1.0's auto-resetting step.
    """

    @partial(jax.jit, static_argnums=(0,))
    def reset(self, key, params=None):
        obs, env_state = self._env.reset(key, params)
        return obs, LogEnvState(env_state, 0, 0, 0, 0, 0)

    @partial(jax.jit, static_argnums=(0,))
    def step(self, key, state, action, params=None):
        obs, env_state, reward, terminated, truncated, info = self._env.step(
            key, state.env_state, action, params
        )
        done = jnp.logical_or(terminated, truncated)
        episode_return = state.episode_returns + reward
        episode_length = state.episode_lengths + 1
        state = LogEnvState(
            env_state=env_state,
            episode_returns=episode_return * (1 - done),
            episode_lengths=episode_length * (1 - done),
            returned_episode_returns=state.returned_episode_returns * (1 - done)
            + episode_return * done,
            returned_episode_lengths=state.returned_episode_lengths * (1 - done)
            + episode_length * done,
            timestep=state.timestep + 1,
        )
        info["returned_episode_returns"] = state.returned_episode_returns
        info["returned_episode_lengths"] = state.returned_episode_lengths
        info["timestep"] = state.timestep
        info["returned_episode"] = done
        return obs, state, reward, done, info


# --------------------------------------------------------------------------------------------
# Network and rollout record.
# --------------------------------------------------------------------------------------------


class ActorCritic(nn.Module):
    """Separate 64-64 actor and critic MLPs; categorical policy over logits."""

    action_dim: Sequence[int]
    activation: str = "tanh"

    @nn.compact
    def __call__(self, x):
        act = nn.relu if self.activation == "relu" else nn.tanh

        def dense(features: int, scale: float) -> nn.Dense:
            return nn.Dense(features, kernel_init=orthogonal(scale), bias_init=constant(0.0))

        logits = act(dense(64, np.sqrt(2))(x))
        logits = act(dense(64, np.sqrt(2))(logits))
        logits = dense(self.action_dim, 0.01)(logits)
        pi = distrax.Categorical(logits=logits)

        value = act(dense(64, np.sqrt(2))(x))
        value = act(dense(64, np.sqrt(2))(value))
        value = dense(1, 1.0)(value)
        return pi, jnp.squeeze(value, axis=-1)


class Transition(NamedTuple):
    done: jnp.ndarray
    action: jnp.ndarray
    value: jnp.ndarray
    reward: jnp.ndarray
    log_prob: jnp.ndarray
    obs: jnp.ndarray
    info: jnp.ndarray


# --------------------------------------------------------------------------------------------
# Training.
# --------------------------------------------------------------------------------------------


def make_train(config: dict) -> Callable[[jax.Array], dict]:
    """PureJaxRL's ``make_train``: a pure ``train(rng) -> {"runner_state", "metrics"}``.

    Unlike PureJaxRL this works on a copy of ``config`` (it adds ``NUM_UPDATES`` and
    ``MINIBATCH_SIZE``), so the module-level ``CONFIG`` is never mutated.
    """
    config = dict(config)
    config["NUM_UPDATES"] = config["TOTAL_TIMESTEPS"] // config["NUM_STEPS"] // config["NUM_ENVS"]
    config["MINIBATCH_SIZE"] = config["NUM_ENVS"] * config["NUM_STEPS"] // config["NUM_MINIBATCHES"]
    env, env_params = gymnax.make(config["ENV_NAME"])
    env = LogWrapper(FlattenObservationWrapper(env))

    def linear_schedule(count):
        # ``count`` is the optimizer step, one per minibatch; the rate drops once per update.
        updates_done = count // (config["NUM_MINIBATCHES"] * config["UPDATE_EPOCHS"])
        return config["LR"] * (1.0 - updates_done / config["NUM_UPDATES"])

    def train(rng):
        network = ActorCritic(env.action_space(env_params).n, activation=config["ACTIVATION"])
        rng, init_rng = jax.random.split(rng)
        network_params = network.init(init_rng, jnp.zeros(env.observation_space(env_params).shape))
        learning_rate = linear_schedule if config["ANNEAL_LR"] else config["LR"]
        tx = optax.chain(
            optax.clip_by_global_norm(config["MAX_GRAD_NORM"]),
            optax.adam(learning_rate=learning_rate, eps=1e-5),
        )
        train_state = TrainState.create(apply_fn=network.apply, params=network_params, tx=tx)

        rng, reset_rng = jax.random.split(rng)
        reset_keys = jax.random.split(reset_rng, config["NUM_ENVS"])
        obsv, env_state = jax.vmap(env.reset, in_axes=(0, None))(reset_keys, env_params)

        def _update_step(runner_state, unused):
            # ---- collect NUM_STEPS transitions from NUM_ENVS envs
            def _env_step(runner_state, unused):
                train_state, env_state, last_obs, rng = runner_state
                rng, action_rng = jax.random.split(rng)
                pi, value = network.apply(train_state.params, last_obs)
                action = pi.sample(seed=action_rng)
                log_prob = pi.log_prob(action)

                rng, step_rng = jax.random.split(rng)
                step_keys = jax.random.split(step_rng, config["NUM_ENVS"])
                obsv, env_state, reward, done, info = jax.vmap(env.step, in_axes=(0, 0, 0, None))(
                    step_keys, env_state, action, env_params
                )
                transition = Transition(done, action, value, reward, log_prob, last_obs, info)
                return (train_state, env_state, obsv, rng), transition

            runner_state, traj_batch = jax.lax.scan(
                _env_step, runner_state, None, config["NUM_STEPS"]
            )

            # ---- generalised advantage estimation (``done`` cuts both bootstrap and trace)
            train_state, env_state, last_obs, rng = runner_state
            _, last_val = network.apply(train_state.params, last_obs)

            def _calculate_gae(traj_batch, last_val):
                def _backward(carry, transition):
                    gae, next_value = carry
                    done, value, reward = transition.done, transition.value, transition.reward
                    # ``(1 - done)`` written out twice, as in PureJaxRL, so the traced program
                    # is the same op for op.
                    delta = reward + config["GAMMA"] * next_value * (1 - done) - value
                    gae = delta + config["GAMMA"] * config["GAE_LAMBDA"] * (1 - done) * gae
                    return (gae, value), gae

                _, advantages = jax.lax.scan(
                    _backward,
                    (jnp.zeros_like(last_val), last_val),
                    traj_batch,
                    reverse=True,
                    unroll=16,
                )
                return advantages, advantages + traj_batch.value

            advantages, targets = _calculate_gae(traj_batch, last_val)

            # ---- UPDATE_EPOCHS passes of NUM_MINIBATCHES shuffled minibatches
            def _update_epoch(update_state, unused):
                def _update_minbatch(train_state, batch_info):
                    traj_batch, advantages, targets = batch_info

                    def _loss_fn(params, traj_batch, gae, targets):
                        pi, value = network.apply(params, traj_batch.obs)
                        log_prob = pi.log_prob(traj_batch.action)

                        # clipped value loss
                        clip = config["CLIP_EPS"]
                        value_clipped = traj_batch.value + (value - traj_batch.value).clip(
                            -clip, clip
                        )
                        value_loss = (
                            0.5
                            * jnp.maximum(
                                jnp.square(value - targets), jnp.square(value_clipped - targets)
                            ).mean()
                        )

                        # clipped surrogate, advantages normalised per minibatch
                        ratio = jnp.exp(log_prob - traj_batch.log_prob)
                        gae = (gae - gae.mean()) / (gae.std() + 1e-8)
                        surrogate = ratio * gae
                        surrogate_clipped = jnp.clip(ratio, 1.0 - clip, 1.0 + clip) * gae
                        loss_actor = -jnp.minimum(surrogate, surrogate_clipped)
                        loss_actor = loss_actor.mean()
                        entropy = pi.entropy().mean()

                        total_loss = (
                            loss_actor
                            + config["VF_COEF"] * value_loss
                            - config["ENT_COEF"] * entropy
                        )
                        return total_loss, (value_loss, loss_actor, entropy)

                    grad_fn = jax.value_and_grad(_loss_fn, has_aux=True)
                    total_loss, grads = grad_fn(train_state.params, traj_batch, advantages, targets)
                    train_state = train_state.apply_gradients(grads=grads)
                    return train_state, total_loss

                train_state, traj_batch, advantages, targets, rng = update_state
                rng, perm_rng = jax.random.split(rng)
                batch_size = config["MINIBATCH_SIZE"] * config["NUM_MINIBATCHES"]
                assert batch_size == config["NUM_STEPS"] * config["NUM_ENVS"], (
                    "batch size must be equal to number of steps * number of envs"
                )
                permutation = jax.random.permutation(perm_rng, batch_size)
                batch = (traj_batch, advantages, targets)
                batch = jax.tree_util.tree_map(
                    lambda x: x.reshape((batch_size,) + x.shape[2:]), batch
                )
                shuffled = jax.tree_util.tree_map(lambda x: jnp.take(x, permutation, axis=0), batch)
                minibatches = jax.tree_util.tree_map(
                    lambda x: jnp.reshape(x, [config["NUM_MINIBATCHES"], -1] + list(x.shape[1:])),
                    shuffled,
                )
                train_state, total_loss = jax.lax.scan(_update_minbatch, train_state, minibatches)
                return (train_state, traj_batch, advantages, targets, rng), total_loss

            update_state = (train_state, traj_batch, advantages, targets, rng)
            update_state, loss_info = jax.lax.scan(
                _update_epoch, update_state, None, config["UPDATE_EPOCHS"]
            )
            train_state = update_state[0]
            metric = traj_batch.info
            rng = update_state[-1]
            if config.get("DEBUG"):

                def _print_episodes(info):
                    finished = info["returned_episode"]
                    returns = info["returned_episode_returns"][finished]
                    steps = info["timestep"][finished] * config["NUM_ENVS"]
                    for step, ret in zip(steps, returns):
                        print(f"global step={step}, episodic return={ret}")

                jax.debug.callback(_print_episodes, metric)

            return (train_state, env_state, last_obs, rng), metric

        rng, loop_rng = jax.random.split(rng)
        runner_state = (train_state, env_state, obsv, loop_rng)
        runner_state, metric = jax.lax.scan(_update_step, runner_state, None, config["NUM_UPDATES"])
        return {"runner_state": runner_state, "metrics": metric}

    return train


def final_return(metrics) -> float:
    """Mean return of the episodes finished in the last 10% of updates, over all seeds.

    ``metrics`` is ``train(rng)["metrics"]`` (leaves shaped ``(..., NUM_UPDATES, NUM_STEPS,
    NUM_ENVS)``, any number of leading seed axes). NaN if no episode finished in that window.
    """
    finished = np.asarray(metrics["returned_episode"])
    returns = np.asarray(metrics["returned_episode_returns"])
    num_updates = finished.shape[-3]
    window = max(1, math.ceil(num_updates / 10))
    finished = finished[..., num_updates - window :, :, :]
    returns = returns[..., num_updates - window :, :, :]
    if not finished.any():
        return float("nan")
    return float(returns[finished].mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=30, help="PureJaxRL's __main__ uses 30")
    parser.add_argument("--num-seeds", type=int, default=16)
    args = parser.parse_args()

    config = dict(CONFIG)
    train = make_train(config)
    rng = jax.random.PRNGKey(args.seed)
    total_steps = int(config["TOTAL_TIMESTEPS"]) // config["NUM_STEPS"] // config["NUM_ENVS"]
    total_steps *= config["NUM_STEPS"] * config["NUM_ENVS"]
    print(f"PureJaxRL reference PPO, {config['ENV_NAME']}, {total_steps} env steps per seed")
    print(f"jax {jax.__version__} on {jax.devices()[0].platform}")

    start = time.perf_counter()
    compiled = jax.jit(train).lower(rng).compile()
    compile_s = time.perf_counter() - start
    print(f"compile (1 seed):            {compile_s:8.2f} s")

    start = time.perf_counter()
    out = jax.block_until_ready(compiled(rng))
    run_s = time.perf_counter() - start
    print(f"run (1 seed):                {run_s:8.2f} s   ({total_steps / run_s:,.0f} env steps/s)")
    print(f"final return (1 seed):       {final_return(out['metrics']):8.1f}")
    del out

    keys = jax.random.split(rng, args.num_seeds)
    start = time.perf_counter()
    outs = jax.block_until_ready(jax.jit(jax.vmap(train))(keys))
    vmap_s = time.perf_counter() - start
    print(f"compile+run ({args.num_seeds} seeds, vmap): {vmap_s:8.2f} s")
    per_seed = [
        final_return(jax.tree_util.tree_map(lambda x, i=i: x[i], outs["metrics"]))
        for i in range(args.num_seeds)
    ]
    print(
        f"final return ({args.num_seeds} seeds):      {final_return(outs['metrics']):8.1f}"
        f"   (per seed min {np.nanmin(per_seed):.1f}, max {np.nanmax(per_seed):.1f})"
    )


if __name__ == "__main__":
    main()
