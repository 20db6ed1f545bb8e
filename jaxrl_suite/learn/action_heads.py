"""Action heads: what a policy network's output means for a ``Discrete`` or ``Box`` action space.

One place for the choice every policy-gradient learner makes from the action space: the actor
module, the distribution its output defines, how actions are sampled (from pre-drawn noise, so a
rollout draws all its randomness in one batched call), the greedy action for evaluation, and the
clip into the space's bounds::

    head = ActionHead.for_space(env.action_space(env_params))
    actor = head.actor((64, 64), "tanh")
    distribution = head.distribution(actor.apply(actor_params, observation))
    action = head.sample_from_noise(distribution, head.sampling_noise(key, (num_envs,)))
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import distrax
import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxrl_suite.env import spaces
from jaxrl_suite.learn.networks import MLP, GaussianActor

__all__ = ["ActionHead"]


@dataclasses.dataclass(frozen=True)
class ActionHead:
    """The policy's output layer and distribution for one action space.

    Discrete: the actor outputs ``(..., n)`` logits of a categorical distribution; actions are
    integer indices ``(...)``.
    Box: the actor outputs ``(mean, log_std)``, each ``(..., action_dim)``, of a diagonal
    Gaussian. Samples are unbounded and log-probabilities are of the unbounded sample;
    ``clip`` puts an action into ``[low, high]`` for the env.
    """

    discrete: bool
    action_dim: int  # the number of actions (Discrete) or the flat action size (Box)
    low: Any = None  # (action_dim,) bounds of a Box space; None for Discrete
    high: Any = None

    @classmethod
    def for_space(cls, space: Any, dtype: Any = jnp.float32) -> ActionHead:
        """The head of a ``Discrete`` or ``Box`` space (bounds as ``dtype``)."""
        if isinstance(space, spaces.Discrete):
            return cls(True, space.n)
        if isinstance(space, spaces.Box):
            return cls(False, math.prod(space.shape), jnp.asarray(space.low, dtype),
                       jnp.asarray(space.high, dtype))
        raise ValueError(f"An action head needs a Discrete or Box action space; got {space}.")

    def actor(self, hidden_sizes: tuple[int, ...], activation: str,
              initial_log_std: float = 0.0) -> nn.Module:
        """The actor network: logits (final layer scaled 0.01, so the initial policy is near
        uniform) or a Gaussian's mean and state-independent log std."""
        if self.discrete:
            return MLP(hidden_sizes, self.action_dim, activation, 0.01)
        return GaussianActor(hidden_sizes, self.action_dim, activation, initial_log_std)

    def distribution(self, actor_output: Any) -> distrax.Distribution:
        """The action distribution of the actor's output."""
        if self.discrete:
            return distrax.Categorical(logits=actor_output)
        mean, log_std = actor_output
        return distrax.MultivariateNormalDiag(mean, jnp.exp(log_std))

    def sampling_noise(self, key: jax.Array, batch_shape: tuple[int, ...]) -> jax.Array:
        """Noise for ``sample_from_noise``: Gumbel ``(*batch_shape, n)`` for a categorical
        policy, standard normal ``(*batch_shape, action_dim)`` for a Gaussian one."""
        shape = (*batch_shape, self.action_dim)
        return (jax.random.gumbel if self.discrete else jax.random.normal)(key, shape)

    def sample_from_noise(self, distribution: distrax.Distribution, noise: jax.Array
                          ) -> jax.Array:
        """A sample of ``distribution`` made from pre-drawn noise (Gumbel-max, or mean + std *
        noise): distributed as ``distribution.sample``."""
        if self.discrete:
            return jnp.argmax(distribution.logits + noise, axis=-1)
        return distribution.loc + distribution.scale_diag * noise

    def greedy(self, distribution: distrax.Distribution) -> jax.Array:
        """The most likely action: the mode (Discrete) or the mean (Box)."""
        return distribution.mode() if self.discrete else distribution.mean()

    def clip(self, action: jax.Array) -> jax.Array:
        """The action inside the space's bounds (Discrete actions are returned as they are)."""
        if self.discrete:
            return action
        return jnp.clip(action, self.low, self.high)
