"""Twin Delayed DDPG (Fujimoto et al., 2018), the whole run as one jitted program.

Read top to bottom: ``Config`` and presets, the networks, ``make_train`` (collect, the clipped
double-Q target with target policy smoothing, delayed policy updates), ``main``.
``make_train(config, env, env_params)`` returns a pure ``train(key, hparams=None)``::

    env, env_params = jaxrl_suite.make("gymnax/Pendulum-v1")
    train = make_train(preset_config("gymnax/Pendulum-v1"), env, env_params)
    result = jax.jit(jax.vmap(train))(jax.random.split(jax.random.key(0), 4))   # 4 seeds

Continuous (``Box``) actions only. The deterministic actor's tanh output is scaled to the action
bounds; exploration adds Gaussian noise of ``exploration_noise`` times the half-range. The twin
critics are one ``vmap``-ed ensemble (``QEnsemble``).

Multi-objective envs (reward ``(k,)``, DESIGN.md s5): each critic has ``k`` outputs and the
target runs per objective, ``r + gamma (1 - terminated) Q'_j(s', a~')``, with ``Q'_j`` the whole
vector of the member whose ``w . Q'`` is lowest; the actor maximises ``w . Q_1``. ``w`` is
``Hyperparams.preference`` (traced; default ``1 / k`` each).

One update is ``train_frequency`` steps of all envs into the replay buffer, then
``gradient_steps`` critic steps, with an actor step and a target update after every
``policy_delay``-th critic step. The schedule is static (``gradient_steps`` is a multiple of
``policy_delay``), so the delayed update costs no branch. ``learning_starts`` env steps of
uniformly random actions fill the buffer inside ``init``. A truncated step bootstraps from the
stored ``next_observation`` (``info["final_observation"]``); a terminated one does not.
"""

from __future__ import annotations

import dataclasses
import math
import sys
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

from jaxrl_suite.env import spaces
from jaxrl_suite.env.environment import Environment
from jaxrl_suite.env.wrappers import (
    auto_reset_env,
    finished_episode_metrics,
    flatten_image_observation,
)
from jaxrl_suite.learn import optim
from jaxrl_suite.learn.buffers import ReplayBuffer, Transition
from jaxrl_suite.learn.experience import (
    Experience,
    ExperienceCollector,
    validate_replay_schedule,
)
from jaxrl_suite.learn.networks import (
    DeterministicActor,
    QEnsemble,
    activation_by_name,
    flatten_observation,
    scale_to_bounds,
)
from jaxrl_suite.learn.preferences import (
    check_preference,
    default_preference,
    min_by_preference,
    num_objectives_of,
    scalarize,
)
from jaxrl_suite.run.algorithms import AlgorithmSpec
from jaxrl_suite.run.configs import (
    hyperparams_from_config,
    hyperparams_validator,
    require_box_observation,
    require_finite_numbers,
    require_hidden_sizes,
    require_in_unit_interval,
    require_non_negative,
    require_positive,
    require_positive_ints,
)
from jaxrl_suite.run.evaluation import Policy
from jaxrl_suite.run.training import Train

__all__ = ["Config", "Hyperparams", "TD3State", "PRESETS", "make_train", "preset_config",
           "td3_target", "main"]


# --- configuration ------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Config:
    """TD3 settings. Defaults follow the paper's (and CleanRL's) MuJoCo settings.

    Shapes and counts are static; the floats marked *traceable* are also fields of
    ``Hyperparams`` and can be swept under ``vmap``. Noise scales are fractions of the action
    half-range ``(high - low) / 2``.
    """

    total_steps: int = 1_000_000
    """Env steps in the whole run over all parallel envs, learning_starts included."""
    num_envs: int = 1
    """Parallel envs (vmapped)."""
    buffer_size: int = 1_000_000
    """Replay capacity in transitions."""
    learning_starts: int = 25_000
    """Env steps of uniformly random actions that fill the buffer before learning."""
    batch_size: int = 256
    """Transitions per gradient step."""
    train_frequency: int = 2
    """Vectorised env steps per update (each is num_envs transitions)."""
    gradient_steps: int = 2
    """Critic steps per update, a multiple of policy_delay."""
    policy_delay: int = 2
    """Critic steps per actor step (and per target update)."""
    actor_learning_rate: float = 3e-4
    """Adam step size of the actor (traceable)."""
    critic_learning_rate: float = 3e-4
    """Adam step size of the critics (traceable)."""
    adam_eps_root: float = 0.0
    """Added to Adam's second moment inside the square root. Set it positive (1e-8) when
    differentiating through training (hypergradients, meta-gradients): with 0 the outer
    gradient is NaN where a second moment is zero."""
    gamma: float = 0.99
    """Discount (traceable)."""
    tau: float = 0.005
    """Polyak rate of the target actor and critics (traceable)."""
    exploration_noise: float = 0.1
    """Std of the Gaussian noise added to actions while collecting (traceable)."""
    target_noise: float = 0.2
    """Std of the target policy smoothing noise (traceable)."""
    target_noise_clip: float = 0.5
    """Clip of the target policy smoothing noise (traceable)."""
    num_critics: int = 2
    """Q-networks in the ensemble; the target uses their minimum."""
    hidden_sizes: tuple[int, ...] = (256, 256)
    """Hidden layer widths of the actor and of each critic."""
    activation: str = "relu"
    """relu, tanh, gelu, silu or elu."""


@struct.dataclass
class Hyperparams:
    """The continuous hyperparameters, traceable: pass a batch of them to ``vmap(train)``.

    ``preference``: the preference weights ``(num_objectives,)`` of a multi-objective env
    (default equal weights ``1 / k``; None for a scalar reward), traced, so a ``vmap`` over
    them trains a set of preferences in one program.
    """

    actor_learning_rate: jax.Array
    critic_learning_rate: jax.Array
    gamma: jax.Array
    tau: jax.Array
    exploration_noise: jax.Array
    target_noise: jax.Array
    target_noise_clip: jax.Array
    preference: Any = None
    meta: Any = None
    """Meta-parameters, any pytree of arrays, traced: handed to the optimiser factory (e.g. a
    learned optimiser's params); None by default."""

    @classmethod
    def from_config(cls, config: Config) -> Hyperparams:
        return hyperparams_from_config(cls, config)


# Tuned settings per env over the defaults. Pendulum is tested to reach -200 within 1e4 env
# steps (tests/test_offpolicy.py); tau 0.01 instead of 0.005 took its 4-seed greedy mean from
# -350 to -138.
PRESETS: dict[str, dict[str, Any]] = {
    "pendulum": dict(
        total_steps=10_000, num_envs=1, buffer_size=10_000, learning_starts=1_000,
        batch_size=256, train_frequency=2, gradient_steps=2, policy_delay=2,
        actor_learning_rate=1e-3, critic_learning_rate=1e-3, gamma=0.99, tau=0.01,
        exploration_noise=0.1, target_noise=0.2, target_noise_clip=0.5, hidden_sizes=(64, 64),
    ),
    "brax-locomotion": dict(
        total_steps=5_000_000, num_envs=64, buffer_size=1_000_000, learning_starts=8_192,
        batch_size=256, train_frequency=1, gradient_steps=8, policy_delay=2,
        actor_learning_rate=3e-4, critic_learning_rate=3e-4, hidden_sizes=(256, 256),
    ),
}
_PRESET_BY_ENV = {
    "gymnax/Pendulum-v1": "pendulum",
    "gymnax/MountainCarContinuous-v0": "pendulum",
    **{f"{backend}/{name}": "brax-locomotion"
       for backend in ("brax", "mjx")
       for name in ("ant", "halfcheetah", "hopper", "humanoid", "walker2d")},
}


def validate(config: Config, env: Environment, env_params: Any) -> None:
    """Raise a ``ValueError`` naming the bad setting, before anything compiles."""
    if not isinstance(config, Config):
        raise TypeError(f"config must be a td3.Config; got {type(config).__name__}.")
    require_finite_numbers(config)
    require_positive_ints(config, "total_steps", "num_envs", "buffer_size", "batch_size",
                          "train_frequency", "gradient_steps", "policy_delay", "num_critics")
    if config.gradient_steps % config.policy_delay:
        raise ValueError(
            f"gradient_steps ({config.gradient_steps}) must be a multiple of policy_delay "
            f"({config.policy_delay}): each update runs whole delay cycles."
        )
    validate_replay_schedule(config)
    require_in_unit_interval(config, "gamma")
    if not 0.0 < config.tau <= 1.0:
        raise ValueError(f"tau must be in (0, 1]; got {config.tau!r}.")
    require_positive(config, "actor_learning_rate", "critic_learning_rate")
    require_non_negative(config, "exploration_noise", "target_noise", "target_noise_clip",
                         "adam_eps_root")
    require_hidden_sizes(config.hidden_sizes)
    activation_by_name(config.activation)
    action_space = env.action_space(env_params)
    if not isinstance(action_space, spaces.Box):
        raise ValueError(f"TD3 handles Box (continuous) action spaces; {env.name} has "
                         f"{action_space}. Use DQN or SAC for discrete actions.")
    if not (np.all(np.isfinite(action_space.low)) and np.all(np.isfinite(action_space.high))):
        raise ValueError(f"TD3 scales its tanh actor to the action bounds, so they must be "
                         f"finite; {env.name} has {action_space}.")
    require_box_observation("TD3", env, env_params)
    num_objectives_of(env, env_params, "TD3")


# --- training state -----------------------------------------------------------------------------
@struct.dataclass
class TD3State:
    """Everything a run needs to continue: what a checkpoint saves."""

    actor_params: Any
    critic_params: Any  # leaves with a leading num_critics axis
    target_actor_params: Any
    target_critic_params: Any
    actor_opt_state: Any
    critic_opt_state: Any
    experience: Experience
    key: jax.Array
    update_step: jax.Array  # int32
    hparams: Hyperparams


def td3_target(
    reward: jax.Array,
    terminated: jax.Array,
    next_q_values: jax.Array,
    gamma: jax.Array,
    preference: jax.Array | None = None,
) -> jax.Array:
    """Clipped double-Q target ``r + gamma (1 - terminated) min_i Q'_i(s', a~')``.

    ``next_q_values`` ``(num_critics, batch)`` at the smoothed target action; the rest
    ``(batch,)``. A truncated step is not terminated, so it bootstraps. Vector rewards:
    ``reward`` ``(batch, k)``, ``next_q_values`` ``(num_critics, batch, k)``, ``preference``
    ``(k,)``; the minimum is the member with the lowest ``w . Q'`` (its whole vector), and the
    target is ``(batch, k)``.
    """
    not_done = 1.0 - terminated.astype(reward.dtype)
    if preference is None:
        return reward + gamma * not_done * next_q_values.min(axis=0)
    return reward + gamma * not_done[..., None] * min_by_preference(next_q_values, preference)


# --- make_train ---------------------------------------------------------------------------------
def make_train(config: Config, env: Environment, env_params: Any, optimizer: Any = None) -> Train:
    """Build TD3's pure training run for ``env`` (checked first; see ``Config``).

    ``optimizer`` follows ``jaxrl_suite.learn.optim``: for both networks, or a dict by network
    (``{"actor": ..., "critic": ...}``, either left out keeps its default), None for Adam at
    ``actor_learning_rate`` and ``critic_learning_rate``, an optax optimiser used as it is (with
    its own rate: the config's rates then do not apply), or a factory ``hparams ->
    optimiser`` of the traced ``Hyperparams``. The actor's optimiser steps once per
    ``policy_delay`` critic steps (a schedule in it counts actor steps).
    """
    validate(config, env, env_params)
    # The networks are MLPs: an image observation (H, W, C) is trained on as H * W * C features
    # (the policy flattens what it is given in evaluation the same way).
    observation_ndim = len(env.observation_space(env_params).shape)
    env = flatten_image_observation(auto_reset_env(env), env_params)
    action_space = env.action_space(env_params)
    action_dim = math.prod(action_space.shape)
    low = jnp.asarray(action_space.low, jnp.float32)
    high = jnp.asarray(action_space.high, jnp.float32)
    half_range = (high - low) / 2.0
    actor = DeterministicActor(config.hidden_sizes, action_dim, config.activation)
    num_objectives = num_objectives_of(env, env_params, "TD3")
    critic = QEnsemble(config.hidden_sizes, config.num_critics, config.activation,
                       num_objectives or None)  # (num_critics, batch[, k])
    buffer = ReplayBuffer(config.buffer_size, config.num_envs)
    collector = ExperienceCollector(env, env_params, buffer)
    default_hparams = Hyperparams.from_config(config).replace(
        preference=default_preference(num_objectives))
    optimizers = optim.resolve_optimizers(optimizer, {
        "actor": optim.default_adam(config, "actor_learning_rate"),
        "critic": optim.default_adam(config, "critic_learning_rate"),
    }, default_hparams, "TD3")
    prefill_steps = -(-config.learning_starts // config.num_envs)
    steps_per_update = config.num_envs * config.train_frequency
    num_updates = (config.total_steps - prefill_steps * config.num_envs) // steps_per_update
    cycles_per_update = config.gradient_steps // config.policy_delay

    def policy(actor_params, observation):
        return scale_to_bounds(actor.apply(actor_params, observation), low, high)

    def init(key: jax.Array, hparams: Hyperparams) -> TD3State:
        check_preference(hparams.preference, num_objectives, "TD3")
        actor_key, critic_key, env_key, prefill_key, key = jax.random.split(key, 5)
        experience = collector.init(env_key)
        experience = collector.prefill(experience, prefill_key, prefill_steps)
        observation = experience.observation[0]
        actor_params = actor.init(actor_key, observation)
        critic_params = critic.init(critic_key, observation, jnp.zeros(action_dim, jnp.float32))
        return TD3State(
            actor_params=actor_params,
            critic_params=critic_params,
            target_actor_params=actor_params,
            target_critic_params=critic_params,
            actor_opt_state=optimizers["actor"](hparams).init(actor_params),
            critic_opt_state=optimizers["critic"](hparams).init(critic_params),
            experience=experience,
            key=key,
            update_step=jnp.int32(0),
            hparams=hparams,
        )

    # --- losses (batch leaves are (batch_size, ...))
    def critic_loss(critic_params, state: TD3State, batch: Transition, noise: jax.Array):
        hparams = state.hparams
        # Target policy smoothing: clipped noise on the target actor's action.
        smoothing = jnp.clip(noise * hparams.target_noise, -hparams.target_noise_clip,
                             hparams.target_noise_clip) * half_range
        next_action = jnp.clip(
            policy(state.target_actor_params, batch.next_observation) + smoothing, low, high
        )
        next_q = critic.apply(state.target_critic_params, batch.next_observation, next_action)
        target = jax.lax.stop_gradient(
            td3_target(batch.reward, batch.terminated, next_q, hparams.gamma, hparams.preference)
        )
        q = critic.apply(critic_params, batch.observation, batch.action)
        return 0.5 * jnp.square(q - target).mean(axis=1).sum(), q.mean()

    def actor_loss(actor_params, critic_params, observation, preference):
        action = policy(actor_params, observation)
        # The first critic only, as in the paper (scalarised by w for a vector reward).
        return -scalarize(critic.apply(critic_params, observation, action)[0], preference).mean()

    def critic_step(state: TD3State, key: jax.Array):
        sample_key, noise_key = jax.random.split(key)
        batch = buffer.sample(state.experience.buffer, sample_key, config.batch_size)
        noise = jax.random.normal(noise_key, (config.batch_size, action_dim))
        (loss, q_mean), grads = jax.value_and_grad(critic_loss, has_aux=True)(
            state.critic_params, state, batch, noise
        )
        critic_params, critic_opt_state = optim.apply_gradient(
            optimizers["critic"](state.hparams), state.critic_params, state.critic_opt_state,
            grads,
        )
        state = state.replace(critic_params=critic_params, critic_opt_state=critic_opt_state)
        return state, (loss, q_mean, batch.observation)

    def delay_cycle(state: TD3State, key: jax.Array):
        """``policy_delay`` critic steps, then one actor step and the target updates."""
        state, (critic_losses, q_means, observations) = jax.lax.scan(
            critic_step, state, jax.random.split(key, config.policy_delay)
        )
        hparams = state.hparams
        loss, grads = jax.value_and_grad(actor_loss)(
            state.actor_params, state.critic_params, observations[-1], hparams.preference
        )
        actor_params, actor_opt_state = optim.apply_gradient(
            optimizers["actor"](hparams), state.actor_params, state.actor_opt_state, grads
        )
        state = state.replace(
            actor_params=actor_params,
            actor_opt_state=actor_opt_state,
            target_actor_params=optax.incremental_update(
                actor_params, state.target_actor_params, hparams.tau),
            target_critic_params=optax.incremental_update(
                state.critic_params, state.target_critic_params, hparams.tau),
        )
        return state, {"critic_loss": critic_losses.mean(), "q_value": q_means.mean(),
                       "actor_loss": loss}

    def update(state: TD3State) -> tuple[TD3State, dict[str, jax.Array]]:
        key, collect_key, learn_key = jax.random.split(state.key, 3)
        hparams = state.hparams

        def collect(experience, step_key):
            noise_key, env_key = jax.random.split(step_key)
            noise = jax.random.normal(noise_key, (config.num_envs, action_dim))
            action = jnp.clip(
                policy(state.actor_params, experience.observation)
                + hparams.exploration_noise * half_range * noise, low, high,
            )
            return collector.step(experience, env_key, action)

        experience, episode_info = jax.lax.scan(
            collect, state.experience, jax.random.split(collect_key, config.train_frequency)
        )
        state = state.replace(experience=experience)
        state, losses = jax.lax.scan(
            delay_cycle, state, jax.random.split(learn_key, cycles_per_update)
        )
        metrics = {
            "env_steps": prefill_steps * config.num_envs
            + (state.update_step + 1) * steps_per_update,
            **finished_episode_metrics(episode_info),
            **jax.tree.map(jnp.mean, losses),
        }
        return state.replace(key=key, update_step=state.update_step + 1), metrics

    # --- the trained policy, for evaluation (deterministic or with the exploration noise)
    def act(policy_params, key, observation, carry, episode_start, deterministic):
        actor_params, exploration_noise = policy_params
        observation = flatten_observation(jnp.asarray(observation, jnp.float32), observation_ndim)
        action = policy(actor_params, observation)
        if not deterministic:
            noise = jax.random.normal(key, action.shape)
            action = jnp.clip(action + exploration_noise * half_range * noise, low, high)
        return action, carry

    def make_policy(state: TD3State) -> Policy:
        return Policy(act, (state.actor_params, state.hparams.exploration_noise), None)

    return Train(
        init=init,
        update=update,
        num_updates=num_updates,
        env_steps_per_update=steps_per_update,
        default_hparams=default_hparams,
        make_policy=make_policy,
        config=config,
        check_hparams=hyperparams_validator(config, lambda c: validate(c, env, env_params)),
        env_steps_before_updates=prefill_steps * config.num_envs,
    )


# --- the algorithm's description: presets and the command line come from it -------------------
ALGORITHM = AlgorithmSpec(
    name="td3", display_name="TD3", config=Config, hyperparams=Hyperparams,
    make_train=make_train, presets=PRESETS, preset_by_env=_PRESET_BY_ENV,
    default_env="gymnax/Pendulum-v1",
    description=__doc__.strip().splitlines()[0],
    measured_presets={"pendulum": "tests/test_offpolicy.py"},
)
preset_config = ALGORITHM.preset_config  # (env_id_or_preset, **overrides) -> Config
main = ALGORITHM.main  # `python algos/td3.py --env gymnax/Pendulum-v1 --seeds 4`


if __name__ == "__main__":
    sys.exit(main())
