"""What DQN, SAC and TD3 share: stepping the parallel envs into a replay buffer.

An off-policy run carries an ``Experience``: the envs' state, the observation to act on and the
replay buffer. ``ExperienceCollector.step`` takes the actions the algorithm chose, steps every
env once and writes the transitions (with ``next_observation = info["final_observation"]``, so a
truncated step can bootstrap); ``prefill`` fills the buffer with uniformly random actions before
learning starts. The learning itself (losses, target networks, the update step) stays in each
algorithm's file.

Multi-objective envs (``reward_shape(env) == (k,)``): the buffer stores a ``(k,)`` reward per
transition; the preference helpers are in ``jaxrl_suite.learn.preferences``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from jaxrl_suite.env import spaces
from jaxrl_suite.env.environment import Environment
from jaxrl_suite.env.wrappers import reward_shape
from jaxrl_suite.learn.buffers import ReplayBuffer, ReplayBufferState, Transition

__all__ = ["Experience", "ExperienceCollector", "validate_replay_schedule"]


@struct.dataclass
class Experience:
    """``env_state`` and ``observation`` ``(num_envs, ...)`` of the parallel envs; ``buffer``."""

    env_state: Any
    observation: jax.Array
    buffer: ReplayBufferState


@dataclasses.dataclass(frozen=True)
class ExperienceCollector:
    """Steps ``buffer.num_envs`` copies of ``env`` into ``buffer``. ``env`` must auto-reset and
    report episode stats (``wrappers.auto_reset_env``). Observations and rewards are stored as
    float32; the reward is ``()`` per transition, or ``(k,)`` for a multi-objective env."""

    env: Environment
    env_params: Any
    buffer: ReplayBuffer

    @property
    def num_envs(self) -> int:
        return self.buffer.num_envs

    @property
    def action_space(self) -> spaces.Space:
        return self.env.action_space(self.env_params)

    def init(self, key: jax.Array) -> Experience:
        """Reset the envs; an empty buffer shaped for this env's transitions."""
        observation, env_state = jax.vmap(self.env.reset, in_axes=(0, None))(
            jax.random.split(key, self.num_envs), self.env_params
        )
        observation = observation.astype(jnp.float32)
        action = self.action_space.sample(key)
        example = Transition(
            observation=observation[0],
            action=action,
            reward=jnp.zeros(reward_shape(self.env, self.env_params), jnp.float32),
            next_observation=observation[0],
            terminated=jnp.bool_(False),
            truncated=jnp.bool_(False),
        )
        return Experience(env_state, observation, self.buffer.init(example))

    def step(
        self, experience: Experience, key: jax.Array, action: jax.Array
    ) -> tuple[Experience, dict[str, jax.Array]]:
        """Step every env with ``action`` ``(num_envs, ...)`` and store the transitions.

        Returns the new experience and the step's ``EpisodeStats`` info (``episode_return``,
        ``episode_length``, ``returned_episode``, each ``(num_envs,)``).
        """
        next_observation, env_state, reward, terminated, truncated, info = jax.vmap(
            self.env.step, in_axes=(0, 0, 0, None)
        )(jax.random.split(key, self.num_envs), experience.env_state, action, self.env_params)
        transition = Transition(
            observation=experience.observation,
            action=action,
            reward=reward.astype(jnp.float32),
            next_observation=info["final_observation"].astype(jnp.float32),
            terminated=terminated,
            truncated=truncated,
        )
        buffer = self.buffer.add(experience.buffer, transition)
        episode_info = {name: info[name] for name in
                        ("episode_return", "episode_length", "returned_episode")}
        return Experience(env_state, next_observation.astype(jnp.float32), buffer), episode_info

    def random_actions(self, key: jax.Array) -> jax.Array:
        """``(num_envs, ...)`` actions drawn uniformly from the action space."""
        return jax.vmap(self.action_space.sample)(jax.random.split(key, self.num_envs))

    def prefill(self, experience: Experience, key: jax.Array, num_steps: int) -> Experience:
        """``num_steps`` vectorised steps with uniformly random actions (before learning)."""

        def random_step(experience, step_key):
            action_key, env_key = jax.random.split(step_key)
            experience, _ = self.step(experience, env_key, self.random_actions(action_key))
            return experience, None

        experience, _ = jax.lax.scan(random_step, experience, jax.random.split(key, num_steps))
        return experience


def validate_replay_schedule(config: Any) -> None:
    """The settings DQN, SAC and TD3 share: ``learning_starts`` a non-negative integer, a
    ``buffer_size`` that holds one step of all ``num_envs`` envs, and a ``total_steps`` that
    leaves at least one update (``num_envs * train_frequency`` env steps) after the prefill."""
    if not isinstance(config.learning_starts, int) or config.learning_starts < 0:
        raise ValueError(
            f"learning_starts must be a non-negative integer; got {config.learning_starts!r}."
        )
    if config.buffer_size < config.num_envs:
        raise ValueError(f"buffer_size ({config.buffer_size}) must hold at least one step of "
                         f"all envs (num_envs = {config.num_envs}).")
    per_update = config.num_envs * config.train_frequency
    if config.total_steps - config.learning_starts < per_update:
        raise ValueError(
            f"total_steps ({config.total_steps}) leaves no update after learning_starts "
            f"({config.learning_starts}); one update takes num_envs * train_frequency = "
            f"{per_update} env steps."
        )
